"""MIME in and out: iMIP messages (RFC 6047)."""
