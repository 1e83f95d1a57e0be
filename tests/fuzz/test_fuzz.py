"""The fuzz campaign: mutated corpus messages keep the programs' contract.

For every message (see :mod:`tests.fuzz.mutate`), to a resource and to a
person, in process and as real processes (and as a copy of what a person
sent, in process; and to ``imip-admin whatif``): the exit code is one the table
allows (a resource 0 or 65, a person 0; 75 is for transient trouble, which a
fresh store does not have), no traceback reaches the output or the log,
each run takes under 5 s of CPU (processes: and under 200 MB peak RSS), and
nothing is written outside the store and ``--output``. Half the resource
runs first book the unmutated seed, so that the mutation meets a stored
event (updates, cancellations, replies to what we hold).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st

from tests.fuzz.conftest import budget
from tests.fuzz.mutate import Seed, messages
from tests.fuzz.runner import (
    Outcome,
    Sandbox,
    as_process,
    failures_directory,
    in_process,
    problems,
    save,
)

SENDERS = st.sampled_from(
    [
        "<organiser>",
        "<organiser>",
        "",
        None,
        "mallory@evil.example",
        "-x@example.com",
        "röom@example.com",
    ]
)


def sender_for(choice: str | None, seed: Seed) -> str | None:
    return seed.organiser if choice == "<organiser>" else choice


#: Defects the campaign finds that are fixed on another branch of issue 11
#: (pattern in what the run printed or logged -> where). Such a run is set
#: aside (its message saved as ``pending-*.eml``), not failed: remove the
#: line once that branch is merged, and the campaign holds the fix.
#: Output patterns of known, not yet fixed defects: such runs are saved and
#: set aside instead of failing (empty: none known).
PENDING: dict[str, str] = {}


def check(kind: str, outcome: Outcome, sandbox: Sandbox, raw: bytes) -> None:
    """Fail with the broken promises and the reproducer's path."""
    found = problems(kind, outcome, sandbox)
    sandbox.remove()
    if found and any(pattern in outcome.output for pattern in PENDING):
        save(raw, failures_directory(), prefix="pending")
        assume(False)
    if found:
        path = save(raw, failures_directory())
        raise AssertionError(f"{kind}: {'; '.join(found)}; message saved as {path}")


@budget(240)
@given(data=st.data())
def test_fuzzed_messages_to_a_resource_in_process(
    data: st.DataObject, seeds: list[Seed], fuzz_root: Path
) -> None:
    seed, raw = data.draw(messages(seeds))
    sender = sender_for(data.draw(SENDERS), seed)
    sandbox = Sandbox.fresh(fuzz_root)
    if data.draw(st.booleans()):
        in_process("resource", sandbox, seed.raw, seed.room, seed.organiser)
        sandbox.before = sandbox.files()
    check("resource", in_process("resource", sandbox, raw, seed.room, sender), sandbox, raw)


@budget(120)
@given(data=st.data())
def test_fuzzed_messages_to_a_person_in_process(
    data: st.DataObject, seeds: list[Seed], fuzz_root: Path
) -> None:
    seed, raw = data.draw(messages(seeds))
    sender = sender_for(data.draw(SENDERS), seed)
    sandbox = Sandbox.fresh(fuzz_root)
    check("person", in_process("person", sandbox, raw, seed.room, sender), sandbox, raw)


@budget(60)
@given(data=st.data())
def test_fuzzed_messages_a_person_sent_in_process(
    data: st.DataObject, seeds: list[Seed], fuzz_root: Path
) -> None:
    seed, raw = data.draw(messages(seeds))  # imip-person-outgoing: the organiser sent it
    sandbox = Sandbox.fresh(fuzz_root)
    sender = seed.organiser
    check("outgoing", in_process("outgoing", sandbox, raw, sender, sender), sandbox, raw)


@budget(16, per_process=True)
@given(data=st.data())
def test_fuzzed_messages_to_a_resource_as_a_process(
    data: st.DataObject, seeds: list[Seed], fuzz_root: Path
) -> None:
    seed, raw = data.draw(messages(seeds))
    sender = sender_for(data.draw(SENDERS), seed)
    sandbox = Sandbox.fresh(fuzz_root)
    check("resource", as_process("resource", sandbox, raw, seed.room, sender), sandbox, raw)


@budget(10, per_process=True)
@given(data=st.data())
def test_fuzzed_messages_to_a_person_as_a_process(
    data: st.DataObject, seeds: list[Seed], fuzz_root: Path
) -> None:
    seed, raw = data.draw(messages(seeds))
    sender = sender_for(data.draw(SENDERS), seed)
    sandbox = Sandbox.fresh(fuzz_root)
    check("person", as_process("person", sandbox, raw, seed.room, sender), sandbox, raw)


@budget(6, per_process=True)
@given(data=st.data())
def test_fuzzed_messages_to_whatif_as_a_process(
    data: st.DataObject, seeds: list[Seed], fuzz_root: Path
) -> None:
    seed, raw = data.draw(messages(seeds))
    sandbox = Sandbox.fresh(fuzz_root)
    check("whatif", as_process("whatif", sandbox, raw, seed.room, seed.organiser), sandbox, raw)
