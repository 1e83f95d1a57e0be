"""Tests of imiptools.quota (issue 5)."""
