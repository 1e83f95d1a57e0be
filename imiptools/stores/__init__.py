"""Stores: the interface and its implementations."""
