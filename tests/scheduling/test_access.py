"""Access scheduling functions (imiptools.scheduling.access).

``same_domain_only`` and ``access_control_list`` decide on the organiser and
attendees alone; the ACL parser validates the ``acl`` preference.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

import imiptools.scheduling
import imiptools.scheduling.access
from imiptools.i18n import translator
from imiptools.preferences import validate
from imiptools.scheduling import Answer, Decision, Request, decide, lookup
from imiptools.scheduling.access import (
    Rule,
    access_control_list,
    parse_acl,
    same_domain_only,
)

ROOM = "mailto:room@example.com"


def request(
    organiser: str = "alice@example.com",
    attendees: Sequence[str] = (),
    acl: str = "",
    resource: str = ROOM,
) -> Request:
    """A request for ``resource`` whose ``acl`` preference is ``acl``."""
    return Request(
        resource=resource,
        organiser=organiser,
        uid="uid-1",
        summary="Meeting",
        instances=(),
        busy=(),
        now=datetime(2030, 1, 1, tzinfo=UTC),
        zone=UTC,
        attendees=attendees,
        preference=lambda name: acl if name == "acl" else "",
    )


def acl(text: str, organiser: str = "alice@example.com", *attendees: str) -> Decision:
    """The decision of ``access_control_list`` on ``text`` from the preference."""
    return access_control_list(request(organiser, attendees, text), [])


# Registration.


@pytest.mark.parametrize("name", ["same_domain_only", "access_control_list"])
def test_functions_are_registered(name: str) -> None:
    assert lookup(name) is getattr(imiptools.scheduling.access, name)


def test_decide_runs_the_functions_by_name() -> None:
    lines = imiptools.scheduling.parse_function_lines("same_domain_only\naccess_control_list")
    decision = decide(request(acl="default accept"), lines)
    assert (decision.answer, decision.function) == (Answer.ACCEPTED, "access_control_list")


def test_decide_reports_a_bad_acl_argument_as_misconfigured() -> None:
    decision = decide(request(), [("access_control_list", ["permit everyone"])])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "misconfigured")


# same_domain_only.


def test_same_domain_accepts_the_resource_domain() -> None:
    decision = same_domain_only(request("bob@example.com"), [])
    assert (decision.answer, decision.code) == (Answer.ACCEPTED, "domain")
    assert decision.text() == "the organiser is from example.com"


def test_same_domain_declines_other_domains() -> None:
    decision = same_domain_only(request("eve@other.example"), [])
    assert (decision.answer, decision.code, decision.function) == (
        Answer.DECLINED,
        "domain",
        "same_domain_only",
    )
    assert decision.text() == "only organisers from example.com may book this resource"


def test_same_domain_is_exact_not_subdomains() -> None:
    assert same_domain_only(request("bob@sub.example.com"), []).answer is Answer.DECLINED


def test_same_domain_ignores_case_and_mailto() -> None:
    decision = same_domain_only(
        request("mailto:Bob@EXAMPLE.Com", resource="MAILTO:Room@Example.COM"), []
    )
    assert decision.answer is Answer.ACCEPTED


def test_same_domain_accepts_extra_domains() -> None:
    args = ["Partner.Example", "third.example"]
    assert same_domain_only(request("carol@partner.example"), args).answer is Answer.ACCEPTED
    assert same_domain_only(request("bob@example.com"), args).answer is Answer.ACCEPTED
    decision = same_domain_only(request("eve@other.example"), args)
    assert decision.answer is Answer.DECLINED
    assert decision.params["domain"] == "example.com, partner.example, third.example"


def test_same_domain_declines_an_organiser_without_domain() -> None:
    assert same_domain_only(request(""), []).answer is Answer.DECLINED
    assert same_domain_only(request("@example.com"), []).answer is Answer.DECLINED


@pytest.mark.parametrize("arg", ["*@partner.example", "a@partner.example", "", ".example"])
def test_same_domain_rejects_bad_arguments(arg: str) -> None:
    with pytest.raises(ValueError, match="not a domain"):
        same_domain_only(request(), [arg])


def test_same_domain_rejects_a_resource_without_domain() -> None:
    with pytest.raises(ValueError, match="without a domain"):
        same_domain_only(request(resource="mailto:room"), [])


def test_same_domain_reason_translates() -> None:
    decision = same_domain_only(request("eve@other.example"), [])
    assert "example.com" in decision.text(translator("de"))


# access_control_list: rule kinds.


def test_accept_organiser_exact_address() -> None:
    text = "accept organiser alice@example.com"
    decision = acl(text)
    assert (decision.answer, decision.code, decision.function) == (
        Answer.ACCEPTED,
        "acl",
        "access_control_list",
    )
    assert decision.text() == "the booking rules of this resource allow alice@example.com"
    assert acl(text, "bob@example.com").answer is Answer.DECLINED


def test_decline_organiser_domain_pattern() -> None:
    text = "decline organiser *@spam.example\ndefault accept"
    decision = acl(text, "eve@spam.example")
    assert (decision.answer, decision.code) == (Answer.DECLINED, "acl")
    assert decision.text() == "the booking rules of this resource do not allow eve@spam.example"
    assert decision.params == {"who": "eve@spam.example", "line": 1}
    assert acl(text, "eve@not-spam.example").answer is Answer.ACCEPTED


def test_organizer_spelling_is_accepted() -> None:
    assert acl("accept organizer alice@example.com").answer is Answer.ACCEPTED


def test_several_patterns_on_one_line() -> None:
    text = "accept organiser bob@example.com *@partner.example"
    assert acl(text, "bob@example.com").answer is Answer.ACCEPTED
    assert acl(text, "carol@partner.example").answer is Answer.ACCEPTED
    assert acl(text, "alice@example.com").answer is Answer.DECLINED


def test_accept_domain() -> None:
    text = "accept domain example.com partner.example"
    assert acl(text, "alice@example.com").answer is Answer.ACCEPTED
    assert acl(text, "carol@partner.example").answer is Answer.ACCEPTED
    assert acl(text, "eve@sub.example.com").answer is Answer.DECLINED


def test_attendee_rule_matches_any_attendee() -> None:
    text = "accept attendee boss@example.com"
    assert acl(text, "eve@other.example", "x@example.com", "boss@example.com").answer is (
        Answer.ACCEPTED
    )
    assert acl(text, "boss@example.com", "x@example.com").answer is Answer.DECLINED


def test_attendee_rule_with_domain_pattern() -> None:
    text = "decline attendee *@rival.example\ndefault accept"
    assert acl(text, "alice@example.com", "spy@rival.example").answer is Answer.DECLINED
    assert acl(text, "alice@example.com", "bob@example.com").answer is Answer.ACCEPTED


def test_group_matches_the_organiser() -> None:
    text = "group students *@students.example carol@example.com\ndecline group students\n"
    text += "default accept"
    assert acl(text, "dan@students.example").answer is Answer.DECLINED
    assert acl(text, "carol@example.com").answer is Answer.DECLINED
    assert acl(text, "alice@example.com").answer is Answer.ACCEPTED


def test_group_definition_is_not_a_rule() -> None:
    rules = parse_acl("group staff alice@example.com\naccept group staff")
    assert rules == [Rule(Answer.ACCEPTED, "organiser", ("alice@example.com",), 2)]


# access_control_list: order, default, comments, case.


def test_first_match_wins() -> None:
    text = "decline organiser mallory@example.com\naccept domain example.com"
    assert acl(text, "mallory@example.com").answer is Answer.DECLINED
    assert acl(text, "alice@example.com").answer is Answer.ACCEPTED
    reversed_text = "accept domain example.com\ndecline organiser mallory@example.com"
    assert acl(reversed_text, "mallory@example.com").answer is Answer.ACCEPTED


def test_default_accept() -> None:
    decision = acl("decline domain spam.example\ndefault accept", "anyone@else.example")
    assert decision.answer is Answer.ACCEPTED
    assert decision.params["line"] == 2


def test_default_decline() -> None:
    assert acl("accept domain example.com\ndefault decline", "x@y.example").answer is (
        Answer.DECLINED
    )


def test_without_default_nobody_else_is_admitted() -> None:
    decision = acl("accept domain example.com", "x@y.example")
    assert decision.answer is Answer.DECLINED
    assert decision.params == {"who": "x@y.example", "line": 0}


def test_empty_acl_declines_everybody() -> None:
    assert acl("").answer is Answer.DECLINED
    assert acl("# nothing yet\n\n").answer is Answer.DECLINED


def test_comments_and_blank_lines_are_ignored() -> None:
    text = "# who may book\n\n   \naccept organiser alice@example.com  # the owner\n#default accept"
    assert parse_acl(text) == [Rule(Answer.ACCEPTED, "organiser", ("alice@example.com",), 4)]
    assert acl(text, "bob@example.com").answer is Answer.DECLINED


def test_case_insensitive() -> None:
    text = "ACCEPT Organiser Alice@Example.COM\nDecline DOMAIN Spam.Example\nDEFAULT Accept"
    assert acl(text, "mailto:ALICE@example.com").answer is Answer.ACCEPTED
    assert acl(text, "Eve@SPAM.example").answer is Answer.DECLINED
    assert acl("accept attendee Boss@Example.com", "x@y.example", "BOSS@example.COM").answer is (
        Answer.ACCEPTED
    )


def test_arguments_replace_the_preference() -> None:
    req = request("bob@example.com", acl="default decline")
    assert access_control_list(req, ["accept domain example.com"]).answer is Answer.ACCEPTED
    assert access_control_list(req, []).answer is Answer.DECLINED
    args = ["decline organiser bob@example.com", "default accept"]
    assert access_control_list(req, args).answer is Answer.DECLINED


def test_reasons_translate() -> None:
    german = translator("de")
    for text in ("default accept", "default decline"):
        assert "alice@example.com" in acl(text).text(german)


# parse_acl errors.


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("permit organiser a@example.com", 1, "unknown word 'permit'"),
        ("# fine\n\naccept", 3, "expected: accept|decline"),
        ("accept organiser", 1, "expected: accept|decline"),
        ("accept organiser example.com", 1, "not an address"),
        ("accept organiser *@*.example.com", 1, "not a domain"),
        ("accept organiser a*@example.com", 1, "not an address"),
        ("accept organiser @example.com", 1, "not an address"),
        ("accept domain a@example.com", 1, "not a domain"),
        ("accept domain *.example.com", 1, "not a domain"),
        ("accept room a@example.com", 1, "unknown kind 'room'"),
        ("accept attendee", 1, "expected: accept|decline"),
        ("default", 1, "expected: default accept|decline"),
        ("default maybe", 1, "expected: default accept|decline"),
        ("default accept everyone", 1, "expected: default accept|decline"),
        ("default accept\naccept domain example.com", 2, "nothing may follow the default"),
        ("default accept\ndefault decline", 2, "nothing may follow the default"),
        ("accept group staff", 1, "unknown group 'staff'"),
        ("accept group staff\ngroup staff a@example.com", 1, "unknown group 'staff'"),
        ("group staff", 1, "expected: group NAME WHO"),
        ("group s a@example.com\ngroup s b@example.com", 2, "already defined"),
        ("group s a@example.com\naccept group s t", 2, "expected: accept|decline group NAME"),
        ("group s a@example.com example.com", 1, "not an address"),
    ],
)
def test_bad_lines_name_their_number(text: str, line: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"^line {line}: .*{message}"):
        parse_acl(text)


def test_bad_acl_preference_is_rejected_by_validation() -> None:
    with pytest.raises(ValueError, match="line 2"):
        validate("acl", "accept domain example.com\nallow everyone")
    assert validate("acl", "accept domain example.com") == "accept domain example.com"


def test_bad_acl_raises_from_the_function() -> None:
    with pytest.raises(ValueError, match="line 1"):
        acl("accept everyone")
