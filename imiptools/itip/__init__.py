"""iTIP model over icalendar: objects, ordering, recurrence (RFC 5545, 5546)."""
