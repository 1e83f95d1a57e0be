"""A lean LMTP load generator: cached connections, as Postfix's lmtp(8) keeps them.

Postfix's LMTP client is C and, while a destination has mail queued, caches
its connections and delivers one message after another over each
(``lmtp_connection_cache_on_demand = yes`` by default, postconf(5); before
reusing a cached session it sends ``RSET`` "to verify that a cached session
is still usable", ``smtp_rset_timeout``). This program stands in for it in
the benchmarks, in a process of its own (its CPU time is not the harness's,
and no GIL is shared with it). It keeps ``CONNECTIONS`` connections to a
UNIX socket, each opened with its first message (greeting with ``LHLO``
once), and delivers every batch of pre-built messages it is given over
them, each connection taking the next message when its transaction ends:
``RSET`` (on a used connection), ``XFORWARD IDENT=`` when the message has a
queue id, ``MAIL``, ``RCPT`` per recipient, ``DATA``, the dot-stuffed text,
then one reply per recipient (RFC 2033 §4.2). As Postfix's client does with
a server that offers PIPELINING (RFC 2920; an LMTP server must, RFC 2033
§5), ``XFORWARD``, ``MAIL``, every ``RCPT`` and ``DATA`` go in one write and
their replies are read after it; else one command at a time. ``RSET`` waits
for its reply. A reply is read only as far as its code and its last line.

It speaks frames on stdin and stdout: a 4-byte big-endian length, then a
pickled tuple. In: ``("batch", [(sender, recipients, queue_id, data), ...])``
(``data`` ready for the wire, ending with ``.\\r\\n``: :func:`wire`), then
``("go",)`` to deliver it, or ``("quit",)``. Out: ``("ready",)`` at its
start, ``("loaded",)`` for a batch, and ``("done", replies)`` for a ``go``,
``replies`` one list of reply lines (code and text) per message. It needs
only the standard library (run it with ``python -S``).
"""

from __future__ import annotations

import pickle
import selectors
import socket
import struct
import sys
from collections.abc import Generator, Iterator
from typing import BinaryIO

#: One message to deliver: sender, recipients, queue id ('' for none), wire data.
Message = tuple[str, list[str], str, bytes]
#: A connection's dialogue: it yields what to send (``b""``: nothing, wait)
#: and is sent each complete reply as (code, its lines).
Dialogue = Generator[bytes, tuple[int, list[bytes]], None]


def wire(message: bytes) -> bytes:
    """``message`` as DATA sends it: CRLF line ends, a leading dot doubled
    (RFC 5321 §4.5.2), and the final ``.`` line."""
    text = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    if text.startswith(b"."):
        text = b"." + text
    return text.replace(b"\r\n.", b"\r\n..") + b".\r\n"


class Connection:
    """One LMTP connection and the dialogue running on it."""

    def __init__(self, path: str) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path = path
        self.connected = False
        self.buffer = b""
        self.lines: list[bytes] = []
        self.used = False
        self.pipelining = False
        self.dialogue: Dialogue | None = None

    def replies(self, data: bytes) -> Iterator[tuple[int, list[bytes]]]:
        """The complete replies in ``data`` and what came before it."""
        self.buffer += data
        while b"\r\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            self.lines.append(line)
            if line[3:4] != b"-":
                lines, self.lines = self.lines, []
                yield int(line[:3]), lines

    def greeting(self) -> Dialogue:
        """220, then LHLO and its answer."""
        code, _ = yield b""
        assert code == 220, code
        code, lines = yield b"LHLO load.example.test\r\n"
        assert code == 250, code
        self.pipelining = any(line[4:].upper() == b"PIPELINING" for line in lines)

    def transaction(self, message: Message, replies: list[str]) -> Dialogue:
        """One message: the replies go to ``replies`` (one per recipient, or
        the one refusal)."""
        sender, recipients, queue_id, data = message
        if not self.connected:  # the first transaction opens the connection
            self.socket.connect(self.path)
            self.connected = True
            yield from self.greeting()
        if self.used:
            code, _ = yield b"RSET\r\n"
            assert code == 250, code
        self.used = True
        commands = [f"XFORWARD IDENT={queue_id}\r\n".encode()] if queue_id else []
        commands.append(f"MAIL FROM:<{sender}>\r\n".encode())
        commands += [f"RCPT TO:<{recipient}>\r\n".encode() for recipient in recipients]
        commands.append(b"DATA\r\n")
        if self.pipelining:  # all in one write, then every reply
            commands = [b"".join(commands)] + [b""] * (len(commands) - 1)
        answers = []
        for command in commands:
            answers.append((yield command))
            if not self.pipelining and answers[-1][0] not in (250, 354):
                break
        refused = [lines for code, lines in answers if code not in (250, 354)]
        if refused:  # the first refusal is the message's only reply
            assert answers[-1][0] != 354, "a recipient refused: not handled here"
            replies.append(refused[0][-1].decode("utf-8", "replace"))
            return
        code, lines = yield data
        replies.append(lines[-1].decode("utf-8", "replace"))
        for _ in recipients[1:]:
            code, lines = yield b""
            replies.append(lines[-1].decode("utf-8", "replace"))


def run(connections: list[Connection], messages: list[Message]) -> list[list[str]]:
    """Deliver ``messages`` over ``connections``, each taking the next one
    free; the replies of each message."""
    replies: list[list[str]] = [[] for _ in messages]
    waiting = iter(range(len(messages)))
    selector = selectors.DefaultSelector()
    busy = 0

    def next_transaction(connection: Connection) -> bool:
        index = next(waiting, None)
        if index is None:
            connection.dialogue = None
            return False
        connection.dialogue = connection.transaction(messages[index], replies[index])
        connection.socket.sendall(next(connection.dialogue))
        return True

    for connection in connections:
        if next_transaction(connection):
            selector.register(connection.socket, selectors.EVENT_READ, connection)
            busy += 1
    while busy:
        for key, _ in selector.select():
            connection = key.data
            data = connection.socket.recv(65536)
            if not data:
                raise ConnectionError("the server closed a connection")
            for reply in connection.replies(data):
                assert connection.dialogue is not None
                try:
                    command = connection.dialogue.send(reply)
                except StopIteration:
                    if not next_transaction(connection):
                        selector.unregister(connection.socket)
                        busy -= 1
                    continue
                if command:
                    connection.socket.sendall(command)
    selector.close()
    return replies


def read_frame(stream: BinaryIO) -> tuple[object, ...]:
    head = stream.read(4)
    if len(head) < 4:
        return ("quit",)
    (size,) = struct.unpack("!I", head)
    found = pickle.loads(stream.read(size))
    assert isinstance(found, tuple)
    return found


def write_frame(stream: BinaryIO, frame: tuple[object, ...]) -> None:
    data = pickle.dumps(frame)
    stream.write(struct.pack("!I", len(data)) + data)
    stream.flush()


def main(argv: list[str]) -> int:
    """``lmtp_load.py SOCKET CONNECTIONS``: serve frames until ``quit``."""
    path, count = argv[0], int(argv[1])
    connections = [Connection(path) for _ in range(count)]
    inbound, outbound = sys.stdin.buffer, sys.stdout.buffer
    write_frame(outbound, ("ready",))
    batch: list[Message] = []
    while True:
        frame = read_frame(inbound)
        if frame[0] == "batch":
            batch = frame[1]  # type: ignore[assignment]
            write_frame(outbound, ("loaded",))
        elif frame[0] == "go":
            write_frame(outbound, ("done", run(connections, batch)))
        else:
            break
    for connection in connections:
        connection.socket.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
