"""Tests against real mail servers (Dovecot LMTP), installed by tools/ci-services."""
