"""Hypothesis strategies that mutate real iMIP messages into hostile ones.

A :class:`Seed` is one message of the interop corpus with its calendar text
(when it has one) and the room it invites. :func:`messages` draws a seed and
applies a few mutations, at two levels:

- the calendar (content lines, unfolded): lines dropped, doubled, swapped or
  cut; property values replaced by hostile ones (dates, integers, text,
  addresses); RRULEs generated from their grammar with values in and out of
  range; VTIMEZONEs generated the same way and used by DTSTART; parameters
  added; sizes blown up (a line or a whole component repeated, a long
  value); line endings and folding changed;
- the message: the MIME shape around the calendar (alternative, mixed,
  nested, attached, ``application/ics``, base64 or quoted-printable, bad
  charsets, a second calendar part with another METHOD), hostile headers,
  truncation.

Absolute paths in generated values name ``@ROOT@``: the runner replaces it
with the run's directory, so that a write through such a path is caught by
its "nothing written outside the store" check.
"""

from __future__ import annotations

import base64
import quopri
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from typing import TypeVar

from hypothesis import strategies as st

ROOT_MARK = "@ROOT@"
_UNFOLD = re.compile(r"\r?\n[ \t]")


@dataclass(frozen=True)
class Seed:
    """A corpus message: raw bytes, its calendar text (None if not found),
    the MIME ``method`` of that part, the room it invites and its organiser."""

    name: str
    raw: bytes = field(repr=False)
    calendar: str | None = field(repr=False)
    method: str | None
    room: str
    organiser: str


# -- values ------------------------------------------------------------------

DIGITS = st.text("0123456789", min_size=1, max_size=12)
DATE_TEXT = st.one_of(
    st.sampled_from(
        [
            "20300108T100000Z",
            "20300108T100000",
            "20300108",
            "00010101T000000Z",
            "99991231T235959Z",
            "99991231",
            "19700101T000000Z",
            "20300230T100000Z",
            "20300108T250000Z",
            "2030-01-08T10:00:00Z",
            "foo",
            "",
            "20300108T100000Z,20300109T100000Z",
            "20300108T100000Z/PT1H",
            "20300108T100000Z/20300108T090000Z",
        ]
    ),
    st.builds(
        lambda y, m, d: f"{y:04d}{m:02d}{d:02d}T100000Z",
        st.integers(1, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
    ),
)
DURATION_TEXT = st.sampled_from(
    ["PT1H", "P1D", "-PT1H", "P999999999D", "PT0S", "P1W", "PT99999999999H", "P", "1H", "P1Y"]
)
INTEGER_TEXT = st.one_of(
    st.sampled_from(["0", "-1", "2147483647", "2147483648", "-2147483649", "9" * 30, "1e3", "x"]),
    DIGITS,
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "a\r\nBcc: victim@example.com",
            "\x00\x01\x7f",
            "\u2028\u2029",
            "..\\..\\x",
            f"../../{ROOT_MARK}/escaped",
            f"{ROOT_MARK}/escaped",
            "%2e%2e%2fx",
            "x" * 1000,
        ]
    ),
)
ADDRESS = st.sampled_from(
    [
        "mailto:alice@example.com",
        "mailto:room@example.com",
        "mailto:ROOM@EXAMPLE.COM",
        "mailto:room@example.com.",
        "mailto:-oQevil@example.com",
        "mailto:-x@example.com",
        "mailto:röom@example.com",
        "mailto:room@.",
        "mailto:x@..",
        "mailto:",
        "mailto:a@b@c",
        "mailto:<a@example.com>",
        "mailto:a@example.com\r\nBcc: b@example.com",
        "http://example.com/principal",
        "alice@example.com",
        "mailto:" + "a" * 300 + "@example.com",
        f"mailto:{ROOT_MARK}/x@example.com",
    ]
)
PARAMETER = st.sampled_from(
    [
        "PARTSTAT=ACCEPTED",
        "PARTSTAT=DECLINED",
        "PARTSTAT=X-WHATEVER",
        "RSVP=TRUE",
        'SENT-BY="mailto:mallory@evil.example"',
        'DELEGATED-FROM="mailto:x@example.com"',
        "DELEGATED-TO=mailto:y@example.com",
        "TZID=Europe/Berlin",
        "TZID=W. Europe Standard Time",
        "TZID=Fuzz",
        "TZID=" + "x" * 300,
        "VALUE=DATE",
        "VALUE=PERIOD",
        "RANGE=THISANDFUTURE",
        'CN="a;b:c"',
        "CUTYPE=RESOURCE",
        "EMAIL=room@example.com",
        "X-P=" + "v" * 100,
    ]
)
FREQ = st.sampled_from(
    ["YEARLY", "SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY", "X"]
)
WEEKDAY = st.sampled_from(
    ["MO", "TU", "WE", "TH", "FR", "SA", "SU", "1SU", "-1SU", "53MO", "0MO", "XX"]
)


def _numbers(low: int, high: int) -> st.SearchStrategy[str]:
    values = st.integers(low, high).map(str)
    return st.lists(values, min_size=1, max_size=4).map(",".join)


@st.composite
def rrule(draw: st.DrawFn) -> str:
    """An RRULE value from the RFC 5545 §3.3.10 grammar, values in and out of range."""
    parts = [f"FREQ={draw(FREQ)}"]
    optional: dict[str, st.SearchStrategy[str]] = {
        "INTERVAL": st.integers(-2, 1000).map(str),
        "COUNT": st.sampled_from(["-1", "0", "1", "5", "1000000", "9" * 20]),
        "UNTIL": DATE_TEXT,
        "BYSECOND": _numbers(-1, 61),
        "BYMINUTE": _numbers(-1, 60),
        "BYHOUR": _numbers(-1, 25),
        "BYDAY": st.lists(WEEKDAY, min_size=1, max_size=3).map(",".join),
        "BYMONTHDAY": _numbers(-32, 32),
        "BYYEARDAY": _numbers(-367, 367),
        "BYWEEKNO": _numbers(-54, 54),
        "BYMONTH": _numbers(0, 13),
        "BYSETPOS": _numbers(-367, 367),
        "WKST": WEEKDAY,
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        parts.append(f"{name}={draw(optional[name])}")
    return ";".join(parts)


OBSERVANCE_STARTS = st.sampled_from(
    ["19700329T020000", "16010101T000000", "00010101T000000", "99991231T000000", "19700329",
     "19700329T020000Z"]
)  # fmt: skip
OFFSETS = st.sampled_from(["+0100", "+0200", "-0500", "+0000", "+0100", "+0200", "+2400", "x"])


#: Observance rules that read well but change the zone too often, or
#: search for long: what a hostile VTIMEZONE holds (issue 11).
HOSTILE_ZONE_RULES = st.sampled_from(
    [
        "FREQ=SECONDLY",
        "FREQ=MINUTELY;BYSECOND=0,10,20,30,40,50",
        "FREQ=HOURLY",
        "FREQ=DAILY",
        "FREQ=YEARLY;BYYEARDAY=1,50,100,150,200,250,300,350",
        "FREQ=YEARLY;BYDAY=SU",
        "FREQ=YEARLY;BYHOUR=1,2,3",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1;BYSETPOS=2",
        "FREQ=YEARLY;INTERVAL=-1;BYMONTH=3;BYDAY=-1SU",
        "FREQ=YEARLY;BYHOUR=25;BYMONTH=3;BYDAY=-1SU",
        "FREQ=YEARLY;COUNT=1000000;BYMONTH=3;BYDAY=-1SU",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    ]
)


@st.composite
def vtimezone(draw: st.DrawFn, tzid: str = "Fuzz") -> list[str]:
    """A VTIMEZONE: mostly a well-formed STANDARD/DAYLIGHT pair whose
    DAYLIGHT rule is hostile, else one to three observances of any shape."""
    if draw(st.integers(0, 4)) != 4:
        return [
            "BEGIN:VTIMEZONE", f"TZID:{tzid}",
            "BEGIN:STANDARD", "DTSTART:19701025T030000", "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
            "BEGIN:DAYLIGHT", f"DTSTART:{draw(OBSERVANCE_STARTS)}", "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200", f"RRULE:{draw(HOSTILE_ZONE_RULES)}", "END:DAYLIGHT",
            "END:VTIMEZONE",
        ]  # fmt: skip
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tzid}"]
    kinds = st.sampled_from(["STANDARD", "DAYLIGHT", "X-OTHER"])
    for kind in draw(st.lists(kinds, min_size=1, max_size=3)):
        lines += [f"BEGIN:{kind}", f"DTSTART:{draw(OBSERVANCE_STARTS)}"]
        lines += [f"TZOFFSETFROM:{draw(OFFSETS)}", f"TZOFFSETTO:{draw(OFFSETS)}"]
        if draw(st.booleans()):
            lines.append(f"RRULE:{draw(st.one_of(rrule(), HOSTILE_ZONE_RULES))}")
        if draw(st.booleans()):
            lines.append(f"RDATE:{draw(DATE_TEXT)}")
        lines.append(f"END:{kind}")
    return [*lines, "END:VTIMEZONE"]


PROPERTIES: dict[str, st.SearchStrategy[str]] = {
    "DTSTART": DATE_TEXT,
    "DTEND": DATE_TEXT,
    "DUE": DATE_TEXT,
    "DTSTAMP": DATE_TEXT,
    "RECURRENCE-ID": DATE_TEXT,
    "EXDATE": DATE_TEXT,
    "RDATE": DATE_TEXT,
    "DURATION": DURATION_TEXT,
    "SEQUENCE": INTEGER_TEXT,
    "PRIORITY": INTEGER_TEXT,
    "UID": TEXT,
    "SUMMARY": TEXT,
    "COMMENT": TEXT,
    "STATUS": st.sampled_from(["CANCELLED", "CONFIRMED", "TENTATIVE", "X"]),
    "METHOD": st.sampled_from(
        [
            "REQUEST",
            "CANCEL",
            "REPLY",
            "ADD",
            "REFRESH",
            "COUNTER",
            "DECLINECOUNTER",
            "PUBLISH",
            "X-FOO",
            "",
        ]
    ),
    "ORGANIZER": ADDRESS,
    "ATTENDEE": ADDRESS,
    "RRULE": rrule(),
    "FREEBUSY": DATE_TEXT,
    "X-UNKNOWN": TEXT,
}


# -- calendar mutations ----------------------------------------------------------

Lines = list[str]


@dataclass(frozen=True)
class Picker:
    """Draws for one example: hostile values from strategies (``draw``),
    positions and coin tosses from a Random seeded by a drawn number (so
    they are spread evenly, not bunched at the boundaries as Hypothesis'
    own integers are, and still replayed exactly from the example)."""

    draw: st.DrawFn
    rnd: random.Random

    def index(self, items: Sequence[object]) -> int:
        return self.rnd.randrange(len(items)) if items else 0

    def chance(self, probability: float) -> bool:
        return self.rnd.random() < probability

    def one(self, options: Sequence[T]) -> T:
        return options[self.index(options)]


T = TypeVar("T")
CalendarOp = Callable[[Picker, Lines], Lines]


#: What repetitions may add to a calendar: past the agent's default limit
#: (1 MB), within what a test process handles quickly.
REPEATED_BYTES = 1_500_000


def _fits(*lines: str) -> int:
    """How many copies of ``lines`` stay within :data:`REPEATED_BYTES` (at least 2)."""
    return max(2, REPEATED_BYTES // (sum(len(x) + 2 for x in lines) or 1))


def _insert(lines: Lines, at: int, new: Lines) -> Lines:
    return [*lines[:at], *new, *lines[at:]]


def _event_body(lines: Lines) -> int:
    """Where to insert into the first VEVENT (or before the end)."""
    for i, line in enumerate(lines):
        if line.upper().startswith("BEGIN:VEVENT"):
            return i + 1
    return max(len(lines) - 1, 0)


def drop_line(pick: Picker, lines: Lines) -> Lines:
    if not lines:
        return lines
    i = pick.index(lines)
    return lines[:i] + lines[i + 1 :]


def double_line(pick: Picker, lines: Lines) -> Lines:
    if not lines:
        return lines
    i = pick.index(lines)
    return lines[: i + 1] + lines[i:]


def swap_lines(pick: Picker, lines: Lines) -> Lines:
    if len(lines) < 2:
        return lines
    i, j = pick.index(lines), pick.index(lines)
    lines = list(lines)
    lines[i], lines[j] = lines[j], lines[i]
    return lines


def set_property(pick: Picker, lines: Lines) -> Lines:
    """Replace every line of one property with a hostile value, or add one."""
    name = pick.one(sorted(PROPERTIES))
    params = pick.draw(st.lists(PARAMETER, max_size=2))
    line = ";".join([name, *params]) + ":" + pick.draw(PROPERTIES[name])
    pattern = re.compile(rf"{re.escape(name)}[;:]", re.IGNORECASE)
    kept = [x for x in lines if not pattern.match(x)]
    if len(kept) == len(lines) or pick.chance(0.3):
        return _insert(kept, _event_body(kept), [line])
    return _insert(kept, next(i for i, x in enumerate(lines) if pattern.match(x)), [line])


def add_parameter(pick: Picker, lines: Lines) -> Lines:
    candidates = [
        i for i, x in enumerate(lines) if ":" in x and not x.upper().startswith(("BEGIN", "END"))
    ]
    if not candidates:
        return lines
    i = pick.one(candidates)
    name, _, value = lines[i].partition(":")
    return [*lines[:i], f"{name};{pick.draw(PARAMETER)}:{value}", *lines[i + 1 :]]


def use_vtimezone(pick: Picker, lines: Lines) -> Lines:
    """Add a generated VTIMEZONE and give DTSTART/DTEND its TZID."""
    zone = pick.draw(vtimezone())
    body = [re.sub(r"^(DTSTART|DTEND|RECURRENCE-ID)[;:][^:]*:", r"\1;TZID=Fuzz:", x) for x in lines]
    body = [re.sub(r"(;TZID=Fuzz:\d{8}T\d{6})Z", r"\1", x) for x in body]
    at = next((i for i, x in enumerate(body) if x.upper().startswith("BEGIN:VEVENT")), 1)
    return body[:at] + zone + body[at:]


def repeat_line(pick: Picker, lines: Lines) -> Lines:
    if not lines:
        return lines
    i = pick.index(lines)
    count = min(pick.one([2, 10, 100, 1000, 3000]), _fits(lines[i]))
    return lines[:i] + [lines[i]] * count + lines[i + 1 :]


def repeat_event(pick: Picker, lines: Lines) -> Lines:
    """Repeat the first VEVENT, with the same UID or numbered ones."""
    try:
        begin = next(i for i, x in enumerate(lines) if x.upper() == "BEGIN:VEVENT")
        end = next(i for i in range(begin, len(lines)) if lines[i].upper() == "END:VEVENT")
    except StopIteration:
        return lines
    block = lines[begin : end + 1]
    count = min(pick.one([2, 20, 60, 101, 300]), _fits(*block))
    numbered = pick.chance(0.5)
    copies = []
    for n in range(count):
        copies += [re.sub(r"^UID:", f"UID:{n}-", x) if numbered else x for x in block]
    return lines[:begin] + copies + lines[end + 1 :]


def many_instances(pick: Picker, lines: Lines) -> Lines:
    """Add overridden instances of the first VEVENT (one UID, many RECURRENCE-IDs)."""
    try:
        begin = next(i for i, x in enumerate(lines) if x.upper() == "BEGIN:VEVENT")
        end = next(i for i in range(begin, len(lines)) if lines[i].upper() == "END:VEVENT")
    except StopIteration:
        return lines
    block = [
        x for x in lines[begin + 1 : end] if not x.upper().startswith(("RRULE", "RECURRENCE-ID"))
    ]
    count = min(pick.one([10, 100, 400, 999]), _fits(*block))
    copies = []
    for n in range(count):
        day = f"2027{n // 28 % 12 + 1:02d}{n % 28 + 1:02d}"
        copies += ["BEGIN:VEVENT", f"RECURRENCE-ID:{day}T100000Z", *block, "END:VEVENT"]
    return lines[: end + 1] + copies + lines[end + 1 :]


def long_value(pick: Picker, lines: Lines) -> Lines:
    size = pick.one([1000, 100_000, 600_000, 1_100_000])
    return _insert(lines, _event_body(lines), [f"X-LONG:{'v' * size}"])


def cut(pick: Picker, lines: Lines) -> Lines:
    return lines[: pick.index(lines)]


CALENDAR_OPS: list[CalendarOp] = [
    drop_line,
    double_line,
    swap_lines,
    set_property,
    set_property,
    set_property,
    add_parameter,
    use_vtimezone,
    use_vtimezone,
    repeat_line,
    repeat_event,
    many_instances,
    long_value,
    cut,
]


def unfold(text: str) -> Lines:
    return [x for x in _UNFOLD.sub("", text).replace("\r\n", "\n").split("\n") if x]


def joined(pick: Picker, lines: Lines) -> str:
    """Content lines joined with CRLF (mostly), LF, bare CR, or folded at odd places."""
    style = pick.one(["crlf"] * 5 + ["lf", "cr", "folded", "bom"])
    if style == "folded":
        step = 1 + pick.index(range(80))
        lines = ["\r\n ".join(x[i : i + step] for i in range(0, len(x), step)) for x in lines]
    ending = {"lf": "\n", "cr": "\r"}.get(style, "\r\n")
    return ("\ufeff" if style == "bom" else "") + ending.join(lines) + ending


# -- messages ----------------------------------------------------------------------

SHAPES = ["alternative", "alternative", "single", "mixed", "attached", "twice", "nested"]
HEADERS = [
    ("Auto-Submitted", "no"),
    ("Auto-Submitted", "auto-generated"),
    ("Precedence", "bulk"),
    ("References", "<" + "r" * 5000 + "@x>"),
    ("In-Reply-To", "<a@b>"),
    ("Reply-To", "-oQevil@example.com"),
    ("X-Injected", "a\tb"),
]


def wrap(pick: Picker, seed: Seed, calendar: str) -> bytes:
    """The calendar in one of the MIME shapes clients send (and some they don't)."""
    message = EmailMessage()
    message["From"] = seed.organiser or "alice@example.com"
    message["To"] = seed.room
    message["Subject"] = pick.one(["Invitation", "Invitation", "=?utf-8?b?w7Y=?=", "x" * 2000])
    message["Message-ID"] = "<fuzz@example.com>"
    if pick.chance(0.2):
        name, value = pick.one(HEADERS)
        message[name] = value
    shape = pick.one(SHAPES)
    method = pick.one([seed.method, seed.method, "REQUEST", "CANCEL", None, "bogus method"])
    subtype = pick.one(["calendar", "calendar", "calendar", "x-vcalendar"])
    wide = pick.chance(0.1)
    data = calendar.encode("utf-16" if wide else "utf-8", "surrogatepass")
    params = {"method": method} if method else {}
    if shape == "single":
        message.set_content(data, maintype="text", subtype=subtype, params=params)
    else:
        message.set_content("An invitation.")
        if shape in ("alternative", "twice", "nested"):
            message.add_alternative(data, maintype="text", subtype=subtype, params=params)
        if shape in ("mixed", "attached", "twice"):
            message.add_attachment(
                data, maintype="application", subtype="ics", filename="invite.ics"
            )
        if shape == "nested":  # mixed[alternative[text, calendar], text]
            message.make_mixed()
            message.add_attachment("A note.", filename="note.txt")
    for number, part in enumerate(p for p in message.walk() if p.is_multipart()):
        part.set_boundary(f"==fuzz-{number}==")  # the email package would use random
    return _transfer_encoded(pick, message.as_bytes(policy=SMTP), shape == "single")


def _transfer_encoded(pick: Picker, raw: bytes, single: bool) -> bytes:
    """A single-part message's body sent as it is, base64 or quoted-printable."""
    encoding = pick.one(["as-is", "as-is", "base64", "quoted-printable"])
    if encoding == "as-is" or not single:
        return raw
    head, _, body = raw.partition(b"\r\n\r\n")
    coded = base64.encodebytes(body) if encoding == "base64" else quopri.encodestring(body)
    cte = b"Content-Transfer-Encoding: " + encoding.encode()
    return re.sub(rb"Content-Transfer-Encoding: [^\r]*", cte, head) + b"\r\n\r\n" + coded


MessageOp = Callable[[Picker, bytes], bytes]


def truncate(pick: Picker, raw: bytes) -> bytes:
    """Cut the message at a line end (as a broken connection or client would)."""
    ends = [m.end() for m in re.finditer(rb"\n", raw)]
    return raw[: pick.one(ends)] if ends else raw


def break_boundary(pick: Picker, raw: bytes) -> bytes:
    return re.sub(rb'boundary="?([^";\r\n]+)"?', b'boundary="nope"', raw, count=1)


def drop_header(pick: Picker, raw: bytes) -> bytes:
    name = pick.one([b"Content-Type", b"From", b"MIME-Version", b"Content-Transfer-Encoding"])
    return re.sub(rb"(?mi)^" + name + rb":[^\r\n]*\r?\n", b"", raw, count=1)


def garbage_header(pick: Picker, raw: bytes) -> bytes:
    junk = [
        b"X: \xff\xfe\r\n",
        b"NoColonHere\r\n",
        b"From: a@b, c@d\r\n",
        b"Content-Type: multipart/mixed\r\n",
    ]
    return pick.one(junk) + raw


MESSAGE_OPS: list[MessageOp] = [truncate, break_boundary, drop_header, garbage_header]


@st.composite
def messages(draw: st.DrawFn, seeds: Sequence[Seed]) -> tuple[Seed, bytes]:
    """A seed and a mutation of its message (see the module docstring): the
    calendar mutated (nine times in ten, one to three operations) and put in
    a MIME shape; the message itself mutated one time in six."""
    pick = Picker(draw, random.Random(draw(st.integers(0, 2**64 - 1))))
    seed = pick.one(seeds)
    if seed.calendar is not None and pick.chance(0.9):
        lines = unfold(seed.calendar)
        for _ in range(1 + pick.index(range(3))):
            lines = pick.one(CALENDAR_OPS)(pick, lines)
        raw = wrap(pick, seed, joined(pick, lines))
    else:
        raw = seed.raw
    if pick.chance(1 / 6):
        raw = pick.one(MESSAGE_OPS)(pick, raw)
    return seed, raw
