"""Cut the power after each fsync of a delivery; the store stays consistent.

:mod:`tests.test_crash_points` kills a delivery before each write: the
kernel keeps everything the process wrote, synced or not. A power failure
keeps less: POSIX promises only what ``fsync`` made durable, the data of a
file after its ``fsync`` and the entries of a directory (creations,
renames, removals) after the directory's. Anything later may survive or
not, in any combination. The store's durability design (docs/admin/store.md,
"The durability promise, and its price in fsyncs") claims that whatever
survives, the next delivery finds a consistent store and the MTA's
redelivery converges, and that once an agent has exited 0 its decision, its
records and its reply survive. This test checks those claims instead of
arguing them.

How. A delivery runs in a forked process whose ``os.fsync`` records what each
call made durable: the content of a file (read back through ``/proc``), the
entries of a directory (name, identity, mode). Before the delivery the whole
site counts as durable. For each fsync ``k``, and once more after the
delivery exited 0, a fresh copy of the site receives the same delivery; at
that point the process writes three images of what a disk may hold after the
power failure, then SIGKILLs itself:

- **synced only**: every directory as its last fsync (or the start) left it,
  every file with the content of its last fsync (a file never synced is
  empty): nothing unsynced survived;
- **entries kept, data lost**: every directory as it is now (all the renames,
  creations and removals survived), but every file's content as its last
  fsync left it (empty if never synced): the metadata went to disk, the data
  did not;
- **data kept, entries lost**: every directory as its last fsync left it,
  but every file still there with its content as it is now (what was
  written in place, or appended, reached the disk; its renames did not).

All three are outcomes a POSIX filesystem allows (the second is ext4's
``data=writeback``, the first a disk cache that lost everything since the
last flush, the third the kernel's writeback of data before a directory's
change). Besides, two **mixed** images, each drawn anew: each unsynced
rename, creation or removal kept or lost at random (those naming one file
or directory together, so that a rename, within a directory or across two,
is kept or lost whole, as a journal keeps it), and apart from them each
file's unsynced content; so one unsynced rename may survive and an earlier
one not. On each image, put back where the site was, ``check`` must first
find the store whole (it takes each user's lock, which completes a committed
transaction): the old or the new state, never a mix. Then what follows is
what an MTA does: maybe another delivery arrives first (the *rival*), then
the killed message is delivered again, as it was never acknowledged; after
the exit nothing is (the MTA forgot it), but the next agent run sends what
the outbox holds. Then :func:`tests.test_crash_points.verify` checks every
promise (no double booking, one answer a request agreeing with the store,
free/busy equal to the bookings, ``check`` clean, nothing left pending),
and each answered request must have its decision in the room's log.

:func:`test_each_fsync_is_needed` leaves out, in turn, each fsync the
store's documentation gives a reason for (all but ``.txn``'s second,
as it is emptied, which only spares a resend), and expects some power cut
to break a promise: so the test is known to see what each one prevents.

What it does not try: every mix a filesystem may leave (two are drawn a
cut, not all of them), half a rename (a name gone from one directory and
not yet in the other: no journaling filesystem leaves that), nor a file cut
in the middle of its data (the one file written in place that must survive
that, ``.txn``, is torn four ways by ``tests/stores/test_transaction.py``).
A failure names the mixed image's draw; a mixed image that drew the same
tree as an extreme one is not run again.
"""

from __future__ import annotations

import email
import hashlib
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import stat
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imip_agent import resource
from imip_agent.cli import context_from
from imiptools import agent
from imiptools.check import check_store
from imiptools.errors import ImipError
from imiptools.mail.send import DirectorySender
from tests.test_crash_points import (
    SCENARIOS,
    Delivery,
    Scenario,
    _argv,
    _prepare,
    _site_of,
    deliver,
    verify,
)

#: The images written at each power cut (see the module docstring).
IMAGES = ("synced-only", "entries-kept", "data-kept")
#: The mixed images written at each power cut besides, each drawn anew (see
#: :func:`_mixed`).
MIXED = ("mixed-1", "mixed-2")
#: What follows each cut: every extreme image with and without the rival
#: first, each mixed one with or without it (unless it drew an extreme one).
TRIED = [
    *itertools.product(IMAGES, (False, True)),
    *((name, index % 2 == 1) for index, name in enumerate(MIXED)),
]


#: The extended attribute that names a file or directory for the model: an
#: inode number is reused as soon as its file is gone (a bucket renamed over
#: its old version frees that one's), so it cannot name a file over a run.
IDENTITY = "user.power-cut.id"


@dataclass
class Durable:
    """What the disk is known to hold: directories' entries and files'
    content, by identity (:data:`IDENTITY`; a file renamed keeps it)."""

    #: Directory identity -> {name: (identity, mode)}.
    entries: dict[int, dict[str, tuple[int, int]]] = field(default_factory=dict)
    #: File identity -> content.
    content: dict[int, bytes] = field(default_factory=dict)

    def identity(self, target: int | str) -> int:
        """The identity of ``target`` (an open descriptor, or a path, not
        followed), given now if it has none (at random: a tree copied with
        its attributes keeps them, and must not meet them again)."""
        follow = isinstance(target, int)  # a descriptor: nothing to follow
        try:
            return int(os.getxattr(target, IDENTITY, follow_symlinks=follow))
        except OSError:
            issued = secrets.randbits(62)
            os.setxattr(target, IDENTITY, str(issued).encode(), follow_symlinks=follow)
            return issued

    def take_directory(self, descriptor: int, into: dict[int, dict[str, tuple[int, int]]]) -> None:
        """Record the entries of the directory open as ``descriptor`` ``into``."""
        found = {}
        for name in os.listdir(descriptor):
            path = f"/proc/self/fd/{descriptor}/{name}"
            info = os.stat(path, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                found[name] = (self.identity(path), info.st_mode)
        into[self.identity(descriptor)] = found

    def take_file(self, descriptor: int) -> None:
        """Record the content of the file open as ``descriptor`` (maybe
        open for writing only: read through ``/proc``)."""
        with open(f"/proc/self/fd/{descriptor}", "rb") as readable:
            self.content[self.identity(descriptor)] = readable.read()

    def take_tree(self, root: Path, into: dict[int, dict[str, tuple[int, int]]]) -> None:
        """Record every directory's entries below ``root`` ``into``, and
        with ``into`` the durable entries every file's content too (at the
        start: all durable)."""
        for directory, _, files in os.walk(root):
            descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                self.take_directory(descriptor, into)
            finally:
                os.close(descriptor)
            for name in files if into is self.entries else ():
                path = os.path.join(directory, name)
                if not os.path.islink(path):
                    self.content[self.identity(path)] = Path(path).read_bytes()


def _write_image(
    durable: Durable, now: tuple[Listing, dict[int, bytes]], root: Path, target: Path, image: str
) -> None:
    """The site as a power cut may leave it (``image``, one of
    :data:`IMAGES` or :data:`MIXED`; ``now``: its entries and contents as
    they are, :func:`_now`), at ``target``; for a mixed one, what it kept
    and lost beside it (``<target>.mix``)."""
    listing = durable.entries
    content = durable.content
    if image == "entries-kept":
        listing = now[0]
    elif image == "data-kept":
        content = {**content, **now[1]}
    elif image in MIXED:
        listing, content, choices = _mixed(durable, now, random.Random())
        target.with_suffix(".mix").write_text("\n".join(choices), encoding="utf-8")
    _build(content, listing, durable.identity(str(root)), target, 0o755)


Listing = dict[int, dict[str, tuple[int, int]]]


def _now(durable: Durable, root: Path) -> tuple[Listing, dict[int, bytes]]:
    """Every directory's entries and every file's content below ``root``
    as they are now, by identity (read once a cut)."""
    listing: Listing = {}
    durable.take_tree(root, listing)
    return listing, _current_content(durable, root)


def _mixed(
    durable: Durable, now_read: tuple[Listing, dict[int, bytes]], chance: random.Random
) -> tuple[Listing, dict[int, bytes], list[str]]:
    """A mix of what is unsynced, drawn by ``chance``: the unsynced entries
    naming each file or directory kept or lost (together: a rename, within
    a directory or across two, is kept or lost whole, as a journal keeps
    it), and each file's unsynced content kept or lost, each apart from the
    others, in no order. Also what was kept and lost, a line each."""
    now, current = now_read
    changes = [
        (d, *change)
        for d in sorted(set(now) | set(durable.entries))
        for change in _changes(durable, now, d)
    ]
    moved = {_subject(before, after) for _, _, before, after in changes}
    rewritten = {i for i, data in current.items() if durable.content.get(i) != data}
    keep_entries = {i for i in sorted(moved) if chance.random() < 0.5}
    keep_data = {i for i in sorted(rewritten) if chance.random() < 0.5}
    listing = {d: dict(entries) for d, entries in durable.entries.items()}
    choices = []
    for directory, name, before, after in changes:
        kept = _subject(before, after) in keep_entries
        choices.append(f"{'kept' if kept else 'lost'}: entry {name}")
        if kept and after is None:
            del listing[directory][name]
        elif kept and after is not None:
            listing.setdefault(directory, {})[name] = after
    choices += [f"{'kept' if i in keep_data else 'lost'}: data of {i}" for i in sorted(rewritten)]
    content = {**durable.content, **{i: current[i] for i in keep_data}}
    return listing, content, choices


def _subject(before: tuple[int, int] | None, after: tuple[int, int] | None) -> int:
    """The identity a changed entry names now, or named (if it is gone)."""
    entry = after or before
    assert entry is not None
    return entry[0]


def _changes(
    durable: Durable, now: Listing, directory: int
) -> Iterator[tuple[str, tuple[int, int] | None, tuple[int, int] | None]]:
    """Each name of ``directory`` whose entry is not what its last fsync
    made durable: (name, durable entry or None, entry now or None)."""
    before = durable.entries.get(directory, {})
    after = now.get(directory, {})
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            yield name, before.get(name), after.get(name)


def _current_content(durable: Durable, root: Path) -> dict[int, bytes]:
    """Every file's content below ``root`` as it is now, by identity."""
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                found[durable.identity(path)] = Path(path).read_bytes()
    return found


def _digest(tree: Path) -> str:
    """What ``tree`` holds (names, modes, contents), as one hash."""
    found = hashlib.sha256()
    for directory, directories, files in os.walk(tree):
        directories.sort()
        for name in sorted(files):
            path = Path(directory, name)
            found.update(f"{path.relative_to(tree)}\0{path.stat().st_mode}\0".encode())
            found.update(path.read_bytes())
        found.update(f"{Path(directory).relative_to(tree)}/\0{sorted(directories)}".encode())
    return found.hexdigest()


def _build(
    content: dict[int, bytes],
    listing: dict[int, dict[str, tuple[int, int]]],
    directory: int,
    target: Path,
    mode: int,
) -> None:
    target.mkdir(mode=stat.S_IMODE(mode))
    for name, (identity, kind) in listing.get(directory, {}).items():
        path = target / name
        if stat.S_ISDIR(kind):
            _build(content, listing, identity, path, kind)
        else:
            path.write_bytes(content.get(identity, b""))
            path.chmod(stat.S_IMODE(kind))


#: ``cut_at`` for a power cut just after the delivery exited 0 (the MTA has
#: forgotten the message: nothing delivers it again).
AFTER_EXIT = -1


@dataclass(frozen=True)
class Skipped:
    """The fsyncs left out: those of paths ``pattern`` finds, or only the
    ``occurrence``-th of them (1-based; 0: every one), in the delivery of
    scenario ``scenario`` (one that makes them)."""

    pattern: str
    occurrence: int = 0
    scenario: str = "update"


@dataclass(frozen=True)
class Cut:
    """Where the power is cut in a delivery: after fsync ``at`` (1-based;
    0: never, :data:`AFTER_EXIT`: once it exited 0), the images written into
    ``images``; ``skipped``, the fsyncs left out (not made, not durable: to
    show that each is needed), see :data:`NEEDED`."""

    at: int
    images: Path
    skipped: Skipped | None = None


def _install_cutter(site: Path, cut: Cut, trace: Path) -> Callable[[], None]:
    """Wrap ``os.fsync``: record what each call made durable (those
    :attr:`Cut.skipped` left out); after call :attr:`Cut.at` write the
    images and SIGKILL ourselves. Each fsync made is appended to ``trace``.
    Returns what writes the images (for :data:`AFTER_EXIT`)."""
    durable = Durable()
    durable.take_tree(site, durable.entries)
    real = os.fsync
    count = matched = 0
    log = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def write_images() -> None:
        now = _now(durable, site)
        extremes = set()
        for name in IMAGES:
            _write_image(durable, now, site, cut.images / name, name)
            extremes.add(_digest(cut.images / name))
        for name in MIXED:
            _write_image(durable, now, site, cut.images / name, name)
            if _digest(cut.images / name) in extremes:  # tried already, with and without the rival
                shutil.rmtree(cut.images / name)

    def fsync(descriptor: int) -> None:
        nonlocal count, matched
        path = os.readlink(f"/proc/self/fd/{descriptor}")
        if cut.skipped is not None and re.search(cut.skipped.pattern, path):
            matched += 1
            if cut.skipped.occurrence in (0, matched):
                return
        real(descriptor)
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            durable.take_directory(descriptor, durable.entries)
        elif stat.S_ISREG(mode):
            durable.take_file(descriptor)
        count += 1
        os.write(log, f"{count} {path}\n".encode())
        if count == cut.at:
            write_images()
            os.kill(os.getpid(), signal.SIGKILL)

    os.fsync = fsync
    return write_images


def deliver_cut(site: Path, delivery: Delivery, cut: Cut) -> bool:
    """Run imip-resource on ``delivery`` in a child process with the power
    cut at ``cut``; whether it was cut before it exited."""
    source = site.parent / f"{site.name}.message"
    source.write_bytes(delivery.message)
    trace = site.parent / f"{site.name}.fsyncs"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            write_images = _install_cutter(site, cut, trace)
            sys.stdin = open(source, encoding="utf-8")  # noqa: SIM115 (the child exits)
            code = int(resource.run(_argv(site, delivery)))
            if cut.at == AFTER_EXIT:
                write_images()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"exit {os.WEXITSTATUS(status)}"
    return False


def _traced_fsyncs(root: Path, prepared: Path, scenario: Scenario) -> list[str]:
    site = root / "traced"
    shutil.copytree(prepared, site, symlinks=True)
    assert not deliver_cut(site, scenario.killed, Cut(0, root))
    verify(site, scenario, [scenario.killed])
    return (root / "traced.fsyncs").read_text(encoding="utf-8").splitlines()


def _after_the_cut(image: Path, site: Path, scenario: Scenario, cut: Cut, rival: bool) -> None:
    """What the MTA does next on ``image``, put where the site was (its
    records name absolute paths), then every promise: maybe the rival,
    then the killed message again, unless the delivery had exited 0."""
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(image, site, symlinks=True)
    _old_or_new(site)
    deliveries = [scenario.killed]
    if rival:
        assert deliver(site, scenario.rival) == 0
        deliveries.append(scenario.rival)
    if cut.at != AFTER_EXIT:
        assert deliver(site, scenario.killed) == 0  # never acknowledged: delivered again
    elif not rival:
        _flush(site)
    verify(site, scenario, deliveries)
    _decisions_logged(site, deliveries)


def _decisions_logged(site: Path, deliveries: list[Delivery]) -> None:
    """Each request answered has its decision in the room's log (the
    resource's record of what it decided and why)."""
    store = _site_of(site).store
    for delivery in deliveries:
        if delivery.answered:
            message_id = str(email.message_from_bytes(delivery.message)["Message-ID"])
            lines = store.decisions(f"mailto:{delivery.room}")
            assert any(json.loads(line)["message_id"] == message_id for line in lines), (
                f"no decision logged for {message_id}"
            )


def _old_or_new(site: Path) -> None:
    """Before anything else arrives, the store is whole: ``check`` (which
    takes each user's lock, so completes a committed transaction first)
    finds nothing wrong. A crash leaves the old or the new state of each
    scheduling object, not a mix of the two."""
    opened = _site_of(site)
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    try:
        report = check_store(opened, opened.store.users(), now, repair=False)
    except ImipError as exc:  # a store that cannot even be read
        raise AssertionError(f"check: {exc}") from exc
    assert not report.faults, [f.text for f in report.faults]


def _flush(site: Path) -> None:
    """What the next agent run does first, or ``imip-admin outbox flush``:
    send what waits in the outbox. A sent message is forgotten without an
    fsync, so a power cut just after may bring it back to be sent again
    (at-least-once sending: the same message, the same Message-ID)."""
    opened = _site_of(site)
    agent.flush(context_from(opened, DirectorySender(site / "out")))


def _cuts(root: Path, fsyncs: int, skipped: Skipped | None = None) -> Iterator[Cut]:
    """A cut after each of ``fsyncs`` fsyncs, then one after the exit."""
    for at in [*range(1, fsyncs + 1), AFTER_EXIT]:
        images = root / f"images{at}"
        images.mkdir()
        yield Cut(at, images, skipped)
        shutil.rmtree(images)


def _run_cut(root: Path, prepared: Path, scenario: Scenario, cut: Cut) -> Path:
    """The killed delivery on a copy of ``prepared``, cut at ``cut``; the site."""
    site = root / f"cut{cut.at}"
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(prepared, site, symlinks=True)
    was_cut = deliver_cut(site, scenario.killed, cut)
    assert was_cut == (cut.at != AFTER_EXIT), "the fsync was not reached"
    return site


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_power_cut_after_each_fsync_leaves_a_consistent_store(
    tmp_path: Path, scenario: Scenario
) -> None:
    prepared = _prepare(tmp_path, scenario)
    fsyncs = _traced_fsyncs(tmp_path, prepared, scenario)
    assert len(fsyncs) > 5, fsyncs
    for cut in _cuts(tmp_path, len(fsyncs)):
        site = _run_cut(tmp_path, prepared, scenario, cut)
        for name, rival in TRIED:
            if not (cut.images / name).is_dir():
                continue  # a mix that drew an extreme image
            try:
                _after_the_cut(cut.images / name, site, scenario, cut, rival)
            except AssertionError as exc:
                where = "the exit" if cut.at == AFTER_EXIT else f"fsync {fsyncs[cut.at - 1]}"
                mix = cut.images / f"{name}.mix"
                drawn = f"; {mix.read_text(encoding='utf-8')!r}" if mix.exists() else ""
                raise AssertionError(
                    f"power cut after {where} ({name}, rival={rival}{drawn}): {exc}"
                ) from exc
        shutil.rmtree(site)


#: Each fsync of an accepted request that the store's documentation says is
#: needed (docs/admin/store.md, "The durability promise"): without it, some
#: power cut must break a promise. All but ``.txn``'s second one (as it is
#: emptied), which only spares a resend.
NEEDED = {
    "the staged reply": Skipped(r"/\.staged/[^/]+$"),
    ".staged/": Skipped(r"/\.staged$"),
    ".txn (the commit point)": Skipped(r"/store/mailto:room1@example\.com/\.txn$", 1),
    "decisions.log": Skipped(r"/decisions\.log$"),
    "the event's data": Skipped(r"/objects/\.[^/]+\.tmp$"),
    "the free/busy index's data": Skipped(r"/freebusy-index/\.[^/]+\.tmp$", 0, "new-booking"),
    "the monthly free/busy file's data": Skipped(r"/freebusy/\.[^/]+\.tmp$"),
    "objects/": Skipped(r"/objects$"),
    "freebusy-index/": Skipped(r"/freebusy-index$", 0, "new-booking"),
    "freebusy/": Skipped(r"/freebusy$"),
    "freebusy/ before an index forgets a bucket": Skipped(r"/freebusy$", 1, "cancel"),
    "the outbox's new/": Skipped(r"/\.outbox/new$"),
}


@pytest.mark.parametrize("skipped", NEEDED.values(), ids=NEEDED.keys())
def test_each_fsync_is_needed(tmp_path: Path, skipped: Skipped) -> None:
    """Leave out one fsync of a delivery (an update, whose room's
    directories the booking before made, so that no new directory's fsync
    covers the commit point's; a new booking for the free/busy index, which
    an update within its month leaves alone): some power cut (after an
    fsync, or after the exit), with or without the rival next, must leave a
    store that breaks a promise, so that the test above is known to see what
    each fsync prevents."""
    [scenario] = [s for s in SCENARIOS if s.name == skipped.scenario]
    prepared = _prepare(tmp_path, scenario)
    fsyncs = _traced_fsyncs(tmp_path, prepared, scenario)
    matching = [f for f in fsyncs if re.search(skipped.pattern, f)]
    assert len(matching) >= max(1, skipped.occurrence), f"no fsync matches {skipped}"
    left_out = 1 if skipped.occurrence else len(matching)
    for cut in _cuts(tmp_path, len(fsyncs) - left_out, skipped):
        site = _run_cut(tmp_path, prepared, scenario, cut)
        for name, rival in itertools.product(IMAGES, (False, True)):
            try:
                _after_the_cut(cut.images / name, site, scenario, cut, rival)
            except AssertionError:
                return
    raise AssertionError(f"no power cut shows the fsync of {skipped} is needed")
