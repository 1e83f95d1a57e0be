"""Store checks: find what is wrong in a user's records, repair what can be derived.

What ``imip-admin check`` verifies, per calendar user, under the user's
lock (so agents never see a half-repaired state):

* every stored file parses (objects, overridden instances, cancellations,
  counters, the request queue, offers, others' free/busy);
* every free/busy period belongs to a stored event, and every stored
  event's periods within the window are present and as the event says;
  a window that has merely not been moved forward (``make-freebusy``) is
  a *note*, not a fault; an event whose main object and instances are the
  very texts its free/busy was last derived from, at a "now" within the
  span that derivation gives, and whose stored periods hash as those it
  derived, is taken as verified without parsing it (its other texts, such
  as counter-proposals, are still parsed). What vouches so is
  make-freebusy's memo (see :mod:`imiptools.maintenance`) or the event's
  derivation record, written by whoever last derived its free/busy through
  the library (the agents: see
  :meth:`~imiptools.records.UserRecords.record_derivation`); ``full``
  (``imip-admin check --full``) believes neither and parses everything;
* the backend's own layout (:meth:`~imiptools.backends.base.Backend.record_problems`
  and the other hooks): for files, every free/busy line is named by its
  uid's index; stray temporary files (left by a write that a crash
  interrupted: harmless, the old content stands) are notes, removed by
  ``--repair``;
* every preference value is valid;
* (site) no message of the outbox is set aside (``held/``, see
  :mod:`imiptools.spool`) and every spooled file is readable: such a message
  needs an admin (``imip-admin outbox``);
* (files) no symlink below the store (including the outbox), the
  preferences or the quota journal: the agents refuse each one
  (:class:`~imiptools.errors.SymlinkRefused`) and defer the mail concerned,
  so each is a fault. A user with a symlink in their records is not checked
  further until it is gone.

Each :class:`Finding` says what is wrong in plain words and, when the
repair can be derived from the stored objects, carries it: free/busy is
regenerated (:func:`imiptools.maintenance.reset_freebusy`), stray files are
removed. Unreadable objects, invalid preferences and symlinks need an admin:
``--repair`` neither follows nor removes a symlink (it may point at data an
admin moved; what replaces it is the admin's decision).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import field
from datetime import datetime
from functools import cached_property

from icalendar import Calendar

from imiptools import maintenance
from imiptools.backends.base import Problem
from imiptools.deferred import dataclass
from imiptools.errors import InputError, StoreUnavailable, SymlinkRefused
from imiptools.itip.objects import parse_calendars
from imiptools.itip.recurrence import Limits
from imiptools.periods import Period
from imiptools.preferences import DEFINITIONS, fallback, validate
from imiptools.quota.base import QuotaLedger
from imiptools.quota.sync import recorded_quotas, sync_resource
from imiptools.records import (
    Held,
    UserRecords,
    fingerprint_of,
    periods_digest,
    read_derivation,
)
from imiptools.site import Site
from imiptools.spool import HeldMessage, Outbox
from imiptools.stores.base import ALL_TIME, EventReader, EventTexts

#: The "user" of findings about the site's configuration.
SITE = "configuration"

#: A repair, called for its effect (what it returns is ignored).
Fix = Callable[[], object]


@dataclass
class Finding:
    """One thing found: its text, and the repair when one can be derived.

    ``note``: worth saying, not a fault (the check still passes).
    """

    user: str
    text: str
    fix: Fix | None = None
    note: bool = False
    repaired: bool = False

    def line(self) -> str:
        """The finding as one line of the report."""
        status = " (repaired)" if self.repaired else ""
        kind = "note: " if self.note else ""
        who = f"{self.user}: " if self.user else ""
        return f"{who}{kind}{self.text}{status}"


@dataclass
class Report:
    """Every finding of a check, in the order found."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def faults(self) -> list[Finding]:
        """Findings that are faults (not notes)."""
        return [f for f in self.findings if not f.note]

    @property
    def remaining(self) -> list[Finding]:
        """Faults not repaired."""
        return [f for f in self.faults if not f.repaired]

    def summary(self) -> str:
        """One line: how many problems, repaired, notes."""
        faults, notes = len(self.faults), len(self.findings) - len(self.faults)
        repaired = faults - len(self.remaining)
        return f"{faults} problem(s), {repaired} repaired, {notes} note(s)"


def check_user(
    site: Site, user: str, now: datetime, repair: bool, full: bool = False
) -> list[Finding]:
    """Check ``user``'s records under the user's lock; with ``repair``,
    apply each distinct derivable repair once, still under the lock; with
    ``full``, parse every stored text (no memo or derivation record vouches).

    Symlinks in the user's directories are reported alone: the records are
    not read (nor repaired) through them.
    """
    blocking = [_finding(user, p, None) for p in site.backend.user_problems(user)]
    if blocking:
        return blocking
    with maintenance.locked_records(site, user, now) as records:
        findings = _user_findings(site, records, full)
        if repair:
            _repair(findings)
    return findings + _checked_preferences(site, user, repair)


def check_store(
    site: Site, users: Iterable[str], now: datetime, repair: bool, full: bool = False
) -> Report:
    """Check every user in ``users`` (see :func:`check_user`; a user who
    has preferences but no records yet: the preferences alone), then the
    site: its layout and the configuration's site defaults."""
    report = Report()
    users = list(users)
    stored = set(site.store.users())
    report.findings += [_finding("", p, None) for p in site.backend.site_problems(users)]
    report.findings += site_preference_findings(site.settings.preference_defaults)
    for user in users:
        if user in stored:
            report.findings += check_user(site, user, now, repair, full)
        else:
            report.findings += _preferences_only(site, user, repair)
    report.findings += quota_findings(site, [u for u in users if u in stored], now, repair)
    report.findings += outbox_findings(site.outbox)
    return report


def _preferences_only(site: Site, user: str, repair: bool) -> list[Finding]:
    """A user with preferences and no records: symlinks alone (as for
    :func:`check_user`), else the preferences."""
    blocking = [_finding(user, p, None) for p in site.backend.user_problems(user)]
    return blocking or _checked_preferences(site, user, repair)


def _checked_preferences(site: Site, user: str, repair: bool) -> list[Finding]:
    """The preferences of ``user``, repaired when asked (stray files)."""
    findings = _preference_findings(site, user)
    if repair:
        _repair(findings)
    return findings


def _finding(user: str, problem: Problem, rederive: Fix | None) -> Finding:
    """A finding for a problem a backend found: its own repair, or
    ``rederive`` (the user's free/busy regenerated) when that repairs it."""
    fix = problem.repair or (rederive if problem.rederive else None)
    return Finding(user, problem.text, fix, note=problem.note)


def outbox_findings(spool: Outbox) -> list[Finding]:
    """A finding per message set aside, and per unreadable spool file (which
    the next agent run sets aside); none is repaired here. An outbox that
    cannot be read (a symlink in it, reported on its own) is one finding."""
    try:
        held, unreadable = spool.held(), spool.scan()[1]
    except StoreUnavailable as exc:
        return [Finding("outbox", f"the outbox cannot be read: {exc}")]
    findings = [
        Finding(
            "outbox",
            f"message {entry.id} to {_recipients(entry)} set aside: {entry.reason}"
            " (imip-admin outbox list|retry|drop)",
        )
        for entry in held
    ]
    findings += [
        Finding("outbox", f"{reason} ({identifier}; set aside at the next delivery)")
        for identifier, reason in unreadable
    ]
    return findings


def _recipients(entry: HeldMessage) -> str:
    if entry.message is None:
        return "(unreadable)"
    return ", ".join(entry.message.recipients)[:200]


def quota_findings(site: Site, users: Iterable[str], now: datetime, repair: bool) -> list[Finding]:
    """Every quota's files parse, and each resource's quota records match its
    bookings (see :mod:`imiptools.quota.sync`); with ``repair`` the records
    are rewritten, under the resource's lock and then the quota locks."""
    ledger = site.ledger
    findings = []
    for quota in ledger.quotas():
        try:
            ledger.snapshot(quota)
        except (ValueError, SymlinkRefused) as exc:
            findings.append(Finding("", f"quota {quota}: {exc}"))
    for user in users:
        try:
            findings += _resource_quota_findings(site, ledger, user, now, repair)
        except SymlinkRefused as exc:
            findings.append(Finding(user, f"quota records not checked: {exc}"))
    return findings


def _resource_quota_findings(
    site: Site, ledger: QuotaLedger, user: str, now: datetime, repair: bool
) -> list[Finding]:
    preference = site.preferences_of(user).get
    if not recorded_quotas(preference):
        return []
    with maintenance.locked_records(site, user, now) as records:
        try:
            texts = sync_resource(records, preference, ledger, repair)
        except ValueError as exc:
            return [Finding(user, f"quota records cannot be read: {exc}")]
    return [Finding(user, text, repaired=repair) for text in texts]


def _repair(findings: list[Finding]) -> None:
    done: dict[int, bool] = {}
    for finding in findings:
        if finding.fix is None:
            continue
        if id(finding.fix) not in done:
            finding.fix()
            done[id(finding.fix)] = True
        finding.repaired = True


#: How many events :func:`_user_findings` reads, then parses, then compares
#: at a time: the parser's code and data stay in the processor's caches
#: across a batch (issue 15: about 15 us an object less than one event at
#: a time), and the parses kept meanwhile stay few.
BATCH = 32


def _user_findings(site: Site, records: UserRecords, full: bool = False) -> list[Finding]:
    """Every finding about ``records.user``: texts that do not parse, the
    queue and offers, free/busy against the stored objects, the backend's
    own problems (in that order). Each stored text is parsed once: the
    parse check and the free/busy comparison share a memo, emptied after
    each batch of :data:`BATCH` uids so that memory does not grow with the
    store.

    An event that make-freebusy (its memo) or the last writer of its
    free/busy (its derivation record) derived from the very texts stored
    now, for a span of "now" holding this one, and whose stored periods
    hash as those derived, is verified without parsing its main object and
    instances again (see :func:`_vouched`); not with ``full``.

    The texts are read through the store's
    :meth:`~imiptools.stores.base.Store.event_reader` (the file store opens
    and lists each directory once)."""
    reset = _resetter(records)
    held = _held_freebusy(records, reset)
    derived = maintenance.read_memo(records) if isinstance(held, dict) and not full else {}
    stored = set(records.uids())
    uids = sorted(stored | set(records.store.cancelled_object_uids(records.user)))
    with records.store.event_reader(records.user) as reader:
        events = _EventChecks(records, reader, held, stored, derived, full, reset)
        for first in range(0, len(uids), BATCH):
            events.check([_StoredTexts(*reader.texts(uid)) for uid in uids[first : first + BATCH]])
    findings = events.parse_findings + _queue_findings(records)
    if isinstance(held, Finding):
        findings.append(held)
    else:
        findings += _not_stored_findings(records.user, held, stored, reset)
        findings += events.compared
    problems = site.backend.record_problems(records.user)
    findings += [_finding(records.user, problem, reset) for problem in problems]
    return findings


class _EventChecks:
    """The stored events of one user checked a batch at a time (see
    :func:`_user_findings`): the findings of texts that do not parse, in
    uid order, and of free/busy that is not what its event gives, in uid
    order."""

    def __init__(
        self,
        records: UserRecords,
        reader: EventReader,
        held: dict[str, list[Period]] | Finding,
        stored: set[str],
        derived: Mapping[str, Held],
        full: bool,
        reset: Fix,
    ) -> None:
        self.records, self.held, self.stored = records, held, stored
        self.derived, self.full, self.reset = derived, full, reset
        self.recorded = _recorded_derivations(records, reader)
        self.memo = _ParseMemo()
        self.parsing = records.parsing_with(self.memo.parse)
        self.limits = records.limits()
        self.parse_findings: list[Finding] = []
        self.compared: list[Finding] = []

    def _periods(self, uid: str) -> list[Period] | None:
        """The stored periods of ``uid`` (None: not a stored event, or the
        free/busy records cannot be read)."""
        held = self.held
        return held.get(uid, []) if isinstance(held, dict) and uid in self.stored else None

    def check(self, batch: list[_StoredTexts]) -> None:
        """Parse the texts of ``batch`` (those no memo or record vouches
        for), then compare the free/busy of those that parse."""
        user = self.records.user
        comparing = []
        for texts in batch:
            periods = self._periods(texts.uid)
            if periods is not None and not self.full and self._vouched(texts, periods):
                _parse_findings(user, texts.uid, texts.unvouched(), self.parse_findings, self.memo)
            elif (
                _parse_findings(user, texts.uid, texts.all(), self.parse_findings, self.memo)
                and periods is not None
            ):
                comparing.append((texts, periods))
        for texts, periods in comparing:
            finding = _compare(self.parsing, texts, periods, self.reset, self.limits)
            self.compared += [finding] if finding is not None else []
        self.memo.clear()

    def _vouched(self, texts: _StoredTexts, periods: list[Period]) -> bool:
        return _vouched_by_any(self.records, texts, periods, self.derived, self.recorded)


def _resetter(records: UserRecords) -> Fix:
    """One repair shared by every free/busy finding of the user."""
    return lambda: maintenance.reset_freebusy(records)


# -- files parse ------------------------------------------------------------------


class _ParseMemo:
    """:func:`parse_calendars` remembered by text (a failure too), until cleared."""

    def __init__(self) -> None:
        self._parsed: dict[str, list[Calendar] | InputError] = {}

    def parse(self, text: str) -> list[Calendar]:
        """:func:`parse_calendars` of ``text``, parsed at most once."""
        found = self._parsed.get(text)
        if found is None:
            try:
                found = parse_calendars(text)
            except InputError as exc:
                found = exc
            self._parsed[text] = found
        if isinstance(found, InputError):
            raise found
        return found

    def clear(self) -> None:
        self._parsed.clear()


def _parse_findings(
    user: str,
    uid: str,
    texts: Iterable[tuple[str, str | None]],
    findings: list[Finding],
    memo: _ParseMemo,
) -> bool:
    """Append a finding for each of ``uid``'s stored ``texts`` (what, text)
    that does not parse; whether all of them parse."""
    readable = True
    for what, text in texts:
        problem = _parse_problem(text, memo)
        if problem:
            readable = False
            findings.append(Finding(user, f'{what} of event "{uid}" {problem}'))
    return readable


class _StoredTexts(EventTexts):
    """Every stored text of one uid, each read once (see
    :class:`~imiptools.stores.base.EventTexts`)."""

    @classmethod
    def read(cls, records: UserRecords, uid: str) -> _StoredTexts:
        """The texts of ``uid``, read through the store's getters."""
        return cls(*EventReader(records.store, records.user).texts(uid))

    @cached_property
    def fingerprint(self) -> str:
        """:func:`~imiptools.records.fingerprint_of` these texts (once)."""
        cancelled = [rid for rid, _ in self.cancelled]
        return fingerprint_of(self.uid, self.text, self.recurrences, cancelled)

    def unvouched(self) -> list[tuple[str, str | None]]:
        """The texts the fingerprint does not cover (what, text)."""
        texts = [("the cancellation", self.cancellation)]
        texts += [(f"the cancellation of instance {rid}", t) for rid, t in self.cancelled]
        texts += [(f"the counter-proposal of {who}", t) for who, t in self.counters.items()]
        return texts

    def all(self) -> list[tuple[str, str | None]]:
        """Every text (what, text): the main object, its instances, the rest."""
        texts = [("the stored object", self.text)]
        texts += [(f"instance {rid}", text) for rid, text in self.recurrences]
        return texts + self.unvouched()


def _vouched(
    records: UserRecords, texts: _StoredTexts, held: list[Period], derived: Held | None
) -> bool:
    """Whether ``derived`` (make-freebusy's memo entry, or the event's
    derivation record) vouches for the event:
    derived from these very texts (so they parsed), holding at this "now"
    (so deriving now gives the same periods), and the stored periods within
    the window are exactly those it derived (their digests are equal)."""
    if derived is None or not derived.periods:
        return False
    if not derived.holds(texts.fingerprint, records.now):
        return False
    limits = records.limits()
    inside = [p for p in held if p.overlaps(limits.window_start, limits.window_end)]
    return periods_digest(inside) == derived.periods


def _vouched_by_any(
    records: UserRecords,
    texts: _StoredTexts,
    held: list[Period],
    memo: Mapping[str, Held],
    recorded: Callable[[str], Held | None],
) -> bool:
    """Whether make-freebusy's ``memo`` vouches for the event, else its
    derivation record (``recorded``, read only then; see :func:`_vouched`)."""
    if _vouched(records, texts, held, memo.get(texts.uid)):
        return True
    return _vouched(records, texts, held, recorded(texts.uid))


def _recorded_derivations(
    records: UserRecords, reader: EventReader
) -> Callable[[str], Held | None]:
    """:meth:`~imiptools.records.UserRecords.derivation`, each record read
    through ``reader`` (its context worked out once)."""
    context = records.derivation_context()

    def recorded(uid: str) -> Held | None:
        try:
            text = reader.derivation(uid)
        except StoreUnavailable:
            return None  # a record that cannot be read only saves work
        return read_derivation(context, uid, text)

    return recorded


def _parse_problem(text: str | None, memo: _ParseMemo) -> str:
    """'' if ``text`` is missing or parses, else why it does not."""
    if text is None:
        return ""
    try:
        memo.parse(text)
    except InputError as exc:
        return f"does not parse: {exc}"
    return ""


def _queue_findings(records: UserRecords) -> list[Finding]:
    """The request queue, offers and others' free/busy must be readable."""
    store, user = records.store, records.user
    reads: list[tuple[str, Callable[[], object]]] = [
        ("the request queue", lambda: store.get_requests(user)),
        ("the counter-proposal offers", lambda: store.all_offers(user)),
    ]
    for other in _others(records):
        reads.append(
            (f"the free/busy received from {other}", _other_reader(records, other)),
        )
    return [Finding(user, f"{what} cannot be read: {e}") for what, e in _failures(reads)]


def _others(records: UserRecords) -> list[str]:
    try:
        return records.store.freebusy_other_users(records.user)
    except StoreUnavailable:
        return []


def _other_reader(records: UserRecords, other: str) -> Callable[[], object]:
    return lambda: records.store.get_freebusy_other(records.user, other, *ALL_TIME)


def _failures(reads: list[tuple[str, Callable[[], object]]]) -> list[tuple[str, str]]:
    failed = []
    for what, read in reads:
        try:
            read()
        except StoreUnavailable as exc:
            failed.append((what, str(exc)))
    return failed


# -- free/busy matches the stored objects ---------------------------------------


def _held_freebusy(records: UserRecords, reset: Fix) -> dict[str, list[Period]] | Finding:
    """The user's free/busy periods by uid, or the finding that they cannot be read."""
    try:
        held = records.store.all_freebusy(records.user)
    except StoreUnavailable as exc:
        return Finding(records.user, f"the free/busy records cannot be read: {exc}", reset)
    by_uid: dict[str, list[Period]] = {}
    for period in held:
        by_uid.setdefault(period.uid, []).append(period)
    return by_uid


def _not_stored_findings(
    user: str, by_uid: dict[str, list[Period]], stored: set[str], reset: Fix
) -> list[Finding]:
    """Periods of uids that are not stored events."""
    return [
        Finding(
            user,
            f'free/busy holds {len(by_uid[uid])} period(s) of "{uid}", which is not a stored event',
            reset,
        )
        for uid in sorted(by_uid.keys() - stored)
    ]


def _compare(
    records: UserRecords,
    texts: _StoredTexts,
    held: list[Period],
    reset: Fix,
    limits: Limits | None = None,
) -> Finding | None:
    """A finding if the event's periods in the window differ from what its
    stored ``texts`` (read once, see :class:`_StoredTexts`) give;
    ``limits``: ``records.limits()``, if the caller has it already.

    Periods are compared as the lines the store keeps; periods that are
    equal give equal lines, so when the stored ones within the window are
    the derived ones, in order, no line is made."""
    uid = texts.uid
    limits = limits or records.limits()
    try:
        stored = records.object_of(uid, texts.text, [t for _, t in texts.recurrences])
        cancelled = [rid for rid, _ in texts.cancelled]
        wanted = (
            records.instance_periods(records.expand(stored, limits, cancelled).instances)
            if stored is not None
            else []
        )
    except InputError as exc:
        return Finding(records.user, f'event "{uid}" cannot be expanded: {exc}')
    span = (limits.window_start, limits.window_end)
    inside = [p for p in held if p.overlaps(*span)]
    if inside == wanted:
        return None
    have = {p.to_line(): p for p in inside}
    want = {p.to_line(): p for p in wanted}
    missing = [want[line] for line in want.keys() - have.keys()]
    extra = have.keys() - want.keys()
    if not missing and not extra:
        return None
    if not extra and have and min(missing).start > max(have.values()).start:
        text = f'the free/busy window of "{uid}" has not been moved forward (make-freebusy)'
        return Finding(records.user, text, lambda: records.refresh_freebusy(uid), note=True)
    text = (
        f'free/busy of "{uid}" differs from the stored event: '
        f"{len(missing)} period(s) missing, {len(extra)} not in the event"
    )
    return Finding(records.user, text, reset)


# -- preferences ------------------------------------------------------------------------


def _preference_findings(site: Site, user: str) -> list[Finding]:
    """The layout of the user's preferences (the backend's problems), then
    each value set."""
    findings = [_finding(user, p, None) for p in site.backend.preference_problems(user)]
    for name in site.preferences.names(user):
        findings += _preference_finding(site, user, name)
    return findings


def _preference_finding(site: Site, user: str, name: str) -> list[Finding]:
    if name not in DEFINITIONS:
        return [Finding(user, f"unknown preference {name} (ignored)", note=True)]
    try:
        value = site.preferences.get(user, name) or ""
    except StoreUnavailable as exc:
        return [Finding(user, f"preference {name} cannot be read: {exc}")]
    problem = value_problem(name, value, site.settings.preference_defaults)
    return [Finding(user, f"preference {name} {problem}")] if problem else []


def value_problem(name: str, value: str, site_defaults: Mapping[str, str]) -> str:
    """'' when ``value`` of preference ``name`` is valid, else what is wrong
    with it and what the agents do instead, as they do it (see
    :meth:`~imiptools.preferences.Preferences.get`): a value they cannot
    read is replaced by the site's or the built-in default; a value they
    read but cannot use has the definition's ``refused`` consequence (an
    unknown scheduling function: the resource declines as misconfigured)."""
    definition = DEFINITIONS[name]
    try:
        validate(name, value)
    except ValueError as exc:
        why = f"is invalid ({exc})"
    else:
        return ""
    try:
        definition.check(value.strip())
    except ValueError:
        origin, used = fallback(name, site_defaults)
        return f"{why}; the agents use the {origin} instead: {_shown(used)}"
    return f"{why}; {definition.refused or 'the agents cannot use it'}"


def _shown(value: str) -> str:
    """A preference value on one line, or '(none)'."""
    flat = " | ".join(line.strip() for line in value.splitlines() if line.strip())
    return repr(flat) if flat else "(none)"


def site_preference_findings(defaults: Mapping[str, str]) -> list[Finding]:
    """The configuration's ``[preferences]`` (site defaults), as the users' values."""
    findings = []
    for name, value in sorted(defaults.items()):
        where = f"[preferences] {name}"
        if name not in DEFINITIONS:
            findings.append(Finding(SITE, f"{where}: unknown preference (ignored)", note=True))
            continue
        problem = value_problem(name, value, {})
        if problem:
            findings.append(Finding(SITE, f"{where} {problem}"))
    return findings
