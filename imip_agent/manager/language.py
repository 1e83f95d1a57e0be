"""The language of the manager's pages, and dates said in it.

Contract:

- A page speaks the language the agents would write to its user in: their
  own ``LANG`` preference when they set one; else the best of the browser's
  ``Accept-Language`` among the catalogues there are; else the site's
  default ``LANG``; else English (:func:`choose`). A page without a user
  (the login form, an error before login) follows the browser.
- The texts are the agents' catalogues (:mod:`imiptools.i18n`, domain
  ``imip-agent``): templates call ``_("...")`` and ``ngettext(...)``,
  English ``str.format`` templates formatted after translation
  (``_("From {who}").format(who=...)``), so a translation may move the
  placeholders; ``tools/i18n`` extracts them from the templates too.
- Dates are said with :func:`when`: a strftime pattern that is itself
  translated (``"%A %d %B %Y"`` is ``"%A, %-d. %B %Y"`` in German), its
  ``%A``, ``%a``, ``%B`` and ``%b`` replaced by translated names first, so
  the process locale never matters (it stays ``C`` under a WSGI server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import cache

from flask import Flask, g, has_request_context, request

from imiptools.i18n import LOCALE_DIR, N_, Translator, candidates, translator

#: Weekday names, Monday first, as msgids (``%A``).
WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)

#: Abbreviated weekday names (``%a``).
WEEKDAYS_SHORT = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))

#: Month names, January first (``%B``).
MONTHS = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)

#: Abbreviated month names (``%b``; "May" is both).
MONTHS_SHORT = (
    N_("Jan"),
    N_("Feb"),
    N_("Mar"),
    N_("Apr"),
    N_("May"),
    N_("Jun"),
    N_("Jul"),
    N_("Aug"),
    N_("Sep"),
    N_("Oct"),
    N_("Nov"),
    N_("Dec"),
)

#: The words said for a participation status (RFC 5545 section 3.2.12).
PARTSTATS = {
    "ACCEPTED": N_("accepted"),
    "DECLINED": N_("declined"),
    "TENTATIVE": N_("tentative"),
    "NEEDS-ACTION": N_("needs-action"),
    "DELEGATED": N_("delegated"),
}

#: The words said for a busy period's FBTYPE (RFC 5545 section 3.2.9).
FBTYPES = {
    "BUSY": N_("busy"),
    "BUSY-TENTATIVE": N_("tentative"),
    "BUSY-UNAVAILABLE": N_("unavailable"),
}

#: The words said for a kind of calendar user (CUTYPE, RFC 5545 section 3.2.3).
CUTYPES = {
    "INDIVIDUAL": N_("individual"),
    "ROOM": N_("room"),
    "RESOURCE": N_("resource"),
    "GROUP": N_("group"),
    "UNKNOWN": N_("unknown"),
}

#: The words said for an attendee's role (ROLE, RFC 5545 section 3.2.16).
ROLES = {
    "REQ-PARTICIPANT": N_("req-participant"),
    "OPT-PARTICIPANT": N_("opt-participant"),
    "NON-PARTICIPANT": N_("non-participant"),
    "CHAIR": N_("chair"),
}

#: The date patterns the pages use, by name (each a msgid: translate it).
PATTERNS = {
    # TRANSLATORS: a strftime pattern: a weekday, day, month and year.
    "date": N_("%A %d %B %Y"),
    # TRANSLATORS: a strftime pattern: a weekday, day and month.
    "day": N_("%A %d %B"),
    # TRANSLATORS: a strftime pattern: a day, month and year.
    "dayyear": N_("%d %B %Y"),
    # TRANSLATORS: a strftime pattern: a month and year.
    "month": N_("%B %Y"),
    # TRANSLATORS: a strftime pattern: a weekday, day, month, year and time.
    "datetime": N_("%A %d %B %Y %H:%M"),
    # TRANSLATORS: a strftime pattern: short weekday, day, short month, year and time.
    "short": N_("%a %d %b %Y %H:%M"),
    # TRANSLATORS: a strftime pattern: short weekday, day, short month and time.
    "shortday": N_("%a %d %b %H:%M"),
    # TRANSLATORS: a strftime pattern: short weekday, day, short month and year.
    "shortdate": N_("%a %d %b %Y"),
    # TRANSLATORS: a strftime pattern: short weekday, day and short month.
    "shortnoyear": N_("%a %d %b"),
    "time": "%H:%M",
}


#: A function from a calendar user to their own ``LANG`` preference, or None.
StatedLanguage = Callable[[str], "str | None"]


@cache
def available() -> tuple[str, ...]:
    """The languages there are catalogues for, English first."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/*.mo"))
    return ("en", *found)


def choose(stated: str | None, accepted: Iterable[str], site_default: str | None) -> str:
    """The language of a page: the user's ``LANG`` preference (``stated``,
    None when they set none), else the first of the browser's ``accepted``
    languages (best first) there is a catalogue for, else the site's
    default, else ``"en"``."""
    for wish in (stated, *accepted, site_default):
        for name in candidates(wish or ""):
            if name in available():
                return name
    return "en"


def current() -> Translator:
    """The translator of this request: its chosen language, else (before
    the choice, as on an error page) the browser's; English outside one."""
    if not has_request_context():
        return translator("en")
    if "language" not in g:
        return translator(choose(None, request.accept_languages.values(), None))
    return translator(g.language)


def code() -> str:
    """This request's language (``en``, ``de``...); ``en`` outside one."""
    if not has_request_context():
        return "en"
    return str(g.get("language", "en"))


def gettext(message: str) -> str:
    """``message`` in this request's language."""
    return current().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in this request's language."""
    return current().ngettext(singular, plural, n)


def when(moment: date | datetime, style: str = "date") -> str:
    """``moment`` said in this request's language in a :data:`PATTERNS` style."""
    return said(moment, style, current())


def said(moment: date | datetime, style: str, words: Translator) -> str:
    """``moment`` in the pattern ``style`` names, as ``words`` translate it."""
    pattern = words.gettext(PATTERNS[style])
    names = {
        "%A": WEEKDAYS[moment.weekday()],
        "%a": WEEKDAYS_SHORT[moment.weekday()],
        "%B": MONTHS[moment.month - 1],
        "%b": MONTHS_SHORT[moment.month - 1],
    }
    for code, name in names.items():
        pattern = pattern.replace(code, words.gettext(name).replace("%", "%%"))
    return moment.strftime(pattern)


def install(app: Flask, site_default: str | None, stated: StatedLanguage) -> None:
    """Give ``app``'s templates ``_``, ``ngettext``, ``when`` and ``lang``, and
    choose each request's language (after the user is known: register this
    after the login hook)."""

    @app.before_request
    def language() -> None:
        user = g.get("user")
        own = stated(user) if user else None
        g.language = choose(own, request.accept_languages.values(), site_default)

    app.jinja_env.globals.update(
        _=gettext,
        ngettext=ngettext,
        partstats=PARTSTATS,
        cutypes=CUTYPES,
        roles=ROLES,
        fbtypes=FBTYPES,
    )
    app.jinja_env.filters["when"] = when

    @app.context_processor
    def lang() -> dict[str, str]:
        return {"lang": g.get("language", "en").replace("_", "-")}
