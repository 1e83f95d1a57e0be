"""The manager's account files (imip_agent.manager.accounts) on their own:
what a password file holds and refuses, feed tokens found by their hash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from imip_agent.manager.accounts import FeedTokens, PasswordFile, digest_of
from imiptools.errors import ConfigError, InputError

WHEN = datetime(2030, 1, 1, 12, tzinfo=UTC)


def test_a_password_file_keeps_hashes_and_skips_what_is_no_entry(tmp_path: Path) -> None:
    passwords = PasswordFile(tmp_path / "manager" / "passwords")
    passwords.set("mailto:Alice@Example.com", "a good long password")
    with passwords.path.open("a") as stream:
        stream.write("# a comment\nbob@example.com:plain-text\n\n")
    assert passwords.users() == ["alice@example.com"]
    assert passwords.check("alice@example.com", "a good long password")
    assert not passwords.check("alice@example.com", "a good long passworD")
    assert not passwords.check("bob@example.com", "plain-text"), "only argon2 hashes count"
    assert not passwords.check("carol@example.com", "a good long password")
    assert not passwords.check("no address", "a good long password")
    assert not passwords.check("alice@example.com", "x" * 5000)


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_a_password_too_short_or_too_long_is_refused(tmp_path: Path, password: str) -> None:
    with pytest.raises(InputError):
        PasswordFile(tmp_path / "passwords").set("alice@example.com", password)


def test_feed_tokens_are_found_by_their_hash_only(tmp_path: Path) -> None:
    feeds = FeedTokens(tmp_path / "feeds")
    feed, token = feeds.make("alice@example.com", "events", " my\nphone ", WHEN)
    assert feed.label == "my phone" and feed.made == "20300101T120000Z"
    assert token not in feeds.path.read_text() and digest_of(token) in feeds.path.read_text()
    assert feeds.find(token) == feed
    assert feeds.find("") is None and feeds.find(token[:-1]) is None
    assert feeds.find(feed.digest) is None, "the hash is not a token"
    assert not feeds.revoke("bob@example.com", feed.id), "only its user revokes it"
    assert feeds.revoke("alice@example.com", feed.id)
    assert feeds.find(token) is None
    with pytest.raises(InputError):
        feeds.make("alice@example.com", "everything", "", WHEN)


def test_a_damaged_feed_file_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "feeds").write_text("not json")
    with pytest.raises(ConfigError):
        FeedTokens(tmp_path / "feeds").find("token")
