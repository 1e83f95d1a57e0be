"""Tests of the iTIP model layer (imiptools.itip)."""
