"""An owner's answer to an approval request, read from a plain mail.

An approver may answer the resource's mail with a message whose first word
is ``approve`` or ``decline`` (``approve:``, ``Decline -`` ...), followed by
an optional reason on the same line or the lines after it, up to the first
quoted line (``>``) or signature separator. Which request it answers is
found from In-Reply-To/References (the Message-IDs the resource's mails
had) or, when a client drops those, the token the resource put in the
subject (``[approval TOKEN]``). Nothing here decides anything: see
:mod:`imiptools.handlers.approval`.
"""

from __future__ import annotations

import re
from email.message import Message

from imiptools.deferred import dataclass

#: The verdict words and what they mean.
VERDICTS = {
    "approve": "approve",
    "approved": "approve",
    "decline": "decline",
    "declined": "decline",
}
#: The longest reason kept (an answer is a sentence, not a letter).
MAX_REASON = 500

_TOKEN = re.compile(r"\[approval ([0-9a-f]{12})\]", re.IGNORECASE)
_FIRST = re.compile(r"\s*([A-Za-z]+)[\s:,.;!-]*(.*)", re.DOTALL)


@dataclass(frozen=True)
class TextAnswer:
    """``verdict`` is ``approve`` or ``decline``; ``reason`` may be ''."""

    verdict: str
    reason: str


def subject_token(subject: str) -> str:
    """The approval token in a subject ('' when none)."""
    found = _TOKEN.search(subject)
    return found.group(1).lower() if found else ""


def text_answer(message: Message) -> TextAnswer | None:
    """The answer in the first text/plain part of ``message``, or None when
    its first word is neither approve nor decline."""
    text = _first_text(message)
    if text is None:
        return None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(">") or line.rstrip() == "--" or _is_attribution(line):
            break
        lines.append(line.strip())
    body = " ".join(part for part in lines if part).strip()
    found = _FIRST.fullmatch(body)
    if found is None:
        return None
    verdict = VERDICTS.get(found.group(1).lower())
    if verdict is None:
        return None
    return TextAnswer(verdict, found.group(2).strip()[:MAX_REASON])


def _is_attribution(line: str) -> bool:
    """'On ..., X wrote:' before a quotation."""
    return line.rstrip().endswith("wrote:") and line.lstrip().lower().startswith("on ")


def _first_text(message: Message) -> str | None:
    for part in message.walk():
        if part.get_content_type() != "text/plain" or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:
            return payload.decode("utf-8", "replace")
    return None
