"""A free/busy bucket's lines as sorted arrays, and the index file beside it.

The file store keeps a user's busy periods in monthly buckets of text
lines (see :mod:`imiptools.stores.file`), sorted, each starting with two
UTC texts of fixed width. A series checked against a busy resource asks
hundreds of narrow questions ("what overlaps these ten minutes?") of a few
buckets of thousands of lines each; splitting and indexing those lines as
Python strings cost more than the rest of the delivery (issue 15).

An :class:`IndexedBucket` holds a bucket's text as bytes and, per line,
its start and end as integers (``YYYYMMDDhhmmss``: they sort as the texts
do), the running maximum of the ends (``reach``) and its length in bytes:
four ``array('q')``, no object per line. A narrow query is two bisections;
only the lines that may overlap it are cut from the text and parsed. A
booking's new lines are spliced into the text and the arrays (slices
copied in C), so that accepting a series does not rebuild what it leaves
alone.

The arrays are kept in an *index file* per bucket (``freebusy-cache/NAME``,
see :func:`to_bytes`), written after the bucket in place and without any
fsync (:func:`~imiptools.fileutil.overwrite_checked`): it is derived data,
and :func:`load` takes it only if it names the bucket's size and CRC-32,
its length is its arrays' and its own CRC-32 holds, so that an index that
is old, torn, half-overwritten, empty or gone after a crash or a power
failure, or read while it is being written, is never believed; the
bucket is then indexed from its text again (as on the first use of a store
written before index files existed).
"""

from __future__ import annotations

import operator
import re
import struct
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import field
from itertools import accumulate

from imiptools.deferred import dataclass
from imiptools.fileutil import decode_text, encode_text

#: The index file's header: magic (with the byte order of the arrays),
#: number of lines, the bucket's size and CRC-32, the arrays' CRC-32.
HEADER = struct.Struct("<8sqqII")
MAGIC = b"IMIPFBX1" if sys.byteorder == "little" else b"IMIPFBX2"
_ARRAYS = 4
_WIDTH = 8  # bytes of an array('q') item

#: A line whose period can be indexed: two UTC texts of fixed width first.
_SHAPE = re.compile(rb"[0-9]{8}T[0-9]{6}Z\t[0-9]{8}T[0-9]{6}Z\t")


def key(text: bytes) -> int:
    """``20300108T100000Z`` (a line's start text) as 20300108100000."""
    return int(text[0:8] + text[9:15])


def text_key(text: str) -> int:
    """:func:`key` of a UTC text (:func:`~imiptools.dates.format_utc`)."""
    return int(text[0:8] + text[9:15])


def _end_key(line: bytes) -> int:
    return int(line[17:25] + line[26:32])


@dataclass
class IndexedBucket:
    """A bucket's ``text`` (sorted lines, each ending in a newline) and its
    arrays, one item a line in the order of the text: ``starts`` and
    ``ends`` (see :func:`key`), ``reach[i]`` the largest of ``ends[: i +
    1]`` and ``lengths[i]`` the bytes of line ``i`` with its newline."""

    text: bytes
    starts: array[int]
    ends: array[int]
    reach: array[int]
    lengths: array[int]
    _offsets: array[int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.starts)

    def offsets(self) -> array[int]:
        """Where each line starts in ``text`` (and, last, its length);
        computed when first needed (a query that finds nothing does not)."""
        if self._offsets is None:
            self._offsets = array("q", accumulate(self.lengths, initial=0))
        return self._offsets

    def _line(self, row: int) -> bytes:
        """Line ``row`` with its newline."""
        offsets = self.offsets()
        return self.text[offsets[row] : offsets[row + 1]]

    def near(self, first: str, last: str) -> list[str]:
        """The lines whose period may overlap [first, last) (UTC texts):
        those starting before ``last`` after the last one whose reach is
        at most ``first``."""
        low = bisect_right(self.reach, text_key(first))
        high = bisect_left(self.starts, text_key(last), low)
        if low >= high:
            return []
        offsets = self.offsets()
        return decode_text(self.text[offsets[low] : offsets[high]]).split("\n")[:-1]

    def rows_of(self, needle: bytes) -> list[int]:
        """The rows whose uid field (the third) is ``needle`` (with the tabs
        around it), in order: one search of the text, then the rows found."""
        found: list[int] = []
        position = self.text.find(needle)
        if position < 0:
            return found
        offsets = self.offsets()
        while position >= 0:
            row = bisect_right(offsets, position) - 1
            if offsets[row] + 33 == position:  # the tab after the two times
                found.append(row)
            position = self.text.find(needle, position + 1)
        return found

    def _position(self, line: bytes) -> int:
        """Where ``line`` goes among the rows (before the first greater one)."""
        start = key(line)
        low = bisect_left(self.starts, start)
        high = bisect_right(self.starts, start, low)
        while low < high:  # rows of the same start: by their whole text
            middle = (low + high) // 2
            if self._line(middle) < line:
                low = middle + 1
            else:
                high = middle
        return low

    def replaced(self, needle: bytes, lines: Sequence[str]) -> IndexedBucket | None:
        """This bucket with the rows of uid field ``needle`` (see
        :meth:`rows_of`) replaced by ``lines`` (shaped; any order); None if
        that changes nothing. The text and arrays are spliced: what stays
        is copied in slices, not row by row."""
        removed = self.rows_of(needle)
        new = sorted(encode_text(line) + b"\n" for line in lines)
        if [self._line(row) for row in removed] == new:
            return None
        inserted = [(self._position(line), line) for line in new]
        builder = _Builder(self)
        cursor = index = 0
        for row in [*removed, len(self)]:
            while index < len(inserted) and inserted[index][0] <= row:
                point, line = inserted[index]
                builder.copy(cursor, point)
                builder.add(line)
                cursor = point
                index += 1
            builder.copy(cursor, row)
            cursor = row + 1
        return builder.bucket(exact_reach=not removed)


class _Builder:
    """The parts of a new bucket: slices of an old one and new lines."""

    def __init__(self, old: IndexedBucket) -> None:
        self.old = old
        self.text = memoryview(old.text)
        self.old_starts = memoryview(old.starts).cast("B")  # sliced by bytes
        self.old_ends = memoryview(old.ends).cast("B")
        self.old_reach = memoryview(old.reach).cast("B")
        self.old_lengths = memoryview(old.lengths)  # summed by items
        self.old_length_bytes = self.old_lengths.cast("B")
        self.row = self.position = 0  # an old row and where it starts
        self.pieces: list[bytes | memoryview] = []
        self.starts = array("q")
        self.ends = array("q")
        self.reach = array("q")
        self.lengths = array("q")
        self.most = -1  # the largest end added as a new line so far

    def copy(self, low: int, high: int) -> None:
        """Old rows [low, high) (each array's slice copied once): their
        reach raised to the new lines' ends before them (the old reach
        ascends: one bisection finds how far)."""
        if low >= high:
            return
        self.pieces.append(self.text[self._at(low) : self._at(high)])
        first, last = low * _WIDTH, high * _WIDTH
        self.starts.frombytes(self.old_starts[first:last])
        self.ends.frombytes(self.old_ends[first:last])
        self.lengths.frombytes(self.old_length_bytes[first:last])
        reach = self.old.reach
        if reach[low] >= self.most:
            self.reach.frombytes(self.old_reach[first:last])
            return
        raised = bisect_right(reach, self.most, low, high)
        self.reach += array("q", [self.most]) * (raised - low)
        self.reach.frombytes(self.old_reach[raised * _WIDTH : last])

    def _at(self, row: int) -> int:
        """Where old row ``row`` starts (rows are asked in ascending order:
        the lengths are summed from the last row asked, not all at once)."""
        if self.old._offsets is not None:
            return self.old._offsets[row]
        if row != self.row:
            self.position += sum(self.old_lengths[self.row : row])
            self.row = row
        return self.position

    def add(self, line: bytes) -> None:
        """A new line (shaped, with its newline)."""
        end = _end_key(line)
        self.most = max(self.most, end)
        self.pieces.append(line)
        self.starts.append(key(line))
        self.ends.append(end)
        self.lengths.append(len(line))
        self.reach.append(max(self.reach[-1], end) if self.reach else end)

    def bucket(self, exact_reach: bool) -> IndexedBucket:
        """The new bucket; without ``exact_reach`` (rows were removed, whose
        ends the copied reach still counts) the reach is computed again."""
        reach = self.reach if exact_reach else array("q", accumulate(self.ends, max))
        return IndexedBucket(b"".join(self.pieces), self.starts, self.ends, reach, self.lengths)


def index(text: bytes) -> IndexedBucket | None:
    """The bucket ``text`` indexed from its lines; None unless it is as this
    store writes it (sorted lines of the indexed shape, each ending in a
    newline, no empty line), for the caller to scan it line by line (which
    reports a line it cannot read)."""
    if text and (not text.endswith(b"\n") or b"\n\n" in text or text.startswith(b"\n")):
        return None
    lines = text.split(b"\n")[:-1]
    if not all(map(_SHAPE.match, lines)) or not all(map(operator.le, lines, lines[1:])):
        return None
    ends = array("q", map(_end_key, lines))
    return IndexedBucket(
        text,
        array("q", map(key, lines)),
        ends,
        array("q", accumulate(ends, max)),
        array("q", [len(line) + 1 for line in lines]),
    )


def to_bytes(bucket: IndexedBucket) -> bytes:
    """The index file of ``bucket`` (see the module docstring)."""
    payload = b"".join(
        part.tobytes() for part in (bucket.starts, bucket.ends, bucket.reach, bucket.lengths)
    )
    text = bucket.text
    header = HEADER.pack(MAGIC, len(bucket), len(text), zlib.crc32(text), zlib.crc32(payload))
    return header + payload


def load(text: bytes, data: bytes | None) -> IndexedBucket | None:
    """The bucket ``text`` with the arrays of index file ``data``, if that
    file is whole and was written for this very text; else None."""
    if data is None or len(data) < HEADER.size:
        return None
    magic, count, size, text_crc, payload_crc = HEADER.unpack_from(data)
    payload = memoryview(data)[HEADER.size :]
    if (
        magic != MAGIC
        or count < 0
        or len(payload) != _ARRAYS * _WIDTH * count
        or size != len(text)
        or zlib.crc32(payload) != payload_crc
        or zlib.crc32(text) != text_crc
    ):
        return None
    parts = []
    for number in range(_ARRAYS):
        part = array("q")
        part.frombytes(payload[number * _WIDTH * count : (number + 1) * _WIDTH * count])
        parts.append(part)
    starts, ends, reach, lengths = parts
    if sum(lengths) != len(text):
        return None
    return IndexedBucket(text, starts, ends, reach, lengths)
