"""iTIP method handlers, one class per kind of calendar user."""
