"""The site's resources (rooms, cars, projectors) and who manages them.

A **resource** is a calendar user configured as one: its own preferences
set ``scheduling_function`` (``imip-admin add-resource`` and ``init-user
--resource`` do) or ``CUTYPE`` (``ROOM`` or ``RESOURCE``); a site default
in ``[preferences]`` makes nobody a resource. It is offered to organisers
as an attendee of that CUTYPE (RFC 5545 §3.2.3; ``RESOURCE`` when not
said), named by its ``CN``.

Its **owners** are its ``approvers`` (the people who approve its requests,
:mod:`imiptools.scheduling.approval`); the site's administrators (a list
the front end is configured with) manage every resource.

:func:`resources` reads both backends through the site's parts only (the
store's users, the backend's users with preferences, the preference
source). :func:`bookings`, :func:`quota_use` and :func:`preference_fields`
are what a resource's pages show; :func:`change_preferences` writes a
form's values, each validated by the code ``imip-admin prefs set`` runs,
and :func:`change_limit` a quota limit, read and written by the code of
``imip-admin quota set-limit`` (:func:`imiptools.quota.admin.limit_of`,
:func:`imiptools.quota.admin.set_limit`) for those who may
(:func:`may_change_quota`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from imiptools.deferred import dataclass
from imiptools.preferences import (
    DEFINITIONS,
    MULTILINE,
    options,
    set_validated,
    validate,
)
from imiptools.quota import admin as quota_admin
from imiptools.quota.limits import QuotaLimit
from imiptools.quota.sync import recorded_quotas
from imiptools.scheduling.approval import approvers_of
from imiptools.site import Site
from imiptools.stores.names import normalise_user
from imiptools.views.agenda import Entry, agenda
from imiptools.views.quota import ReportRow, report_rows

#: The kinds of resource (CUTYPE, RFC 5545 §3.2.3).
KINDS = ("ROOM", "RESOURCE")


@dataclass(frozen=True)
class Resource:
    """A resource of the site: its calendar user (``mailto:``), address,
    name (CN, '' when not set), CUTYPE (ROOM or RESOURCE) and owners (the
    addresses of its ``approvers``)."""

    user: str
    address: str
    cn: str
    cutype: str
    owners: tuple[str, ...]

    @property
    def label(self) -> str:
        """How people see it: its name, else its address."""
        return self.cn or self.address


def resources(site: Site) -> list[Resource]:
    """Every resource of the site (see the module), by name then address."""
    users = set(site.store.users()) | set(site.backend.preference_users())
    found = [r for r in (resource_of(site, user) for user in users) if r is not None]
    return sorted(found, key=lambda r: (r.label.lower(), r.address))


def resource_of(site: Site, user: str) -> Resource | None:
    """The resource ``user`` is (any spelling of an address), or None when
    it is no resource of the site."""
    user = normalise_user(user)
    own = site.preferences
    cutype = (own.get(user, "CUTYPE") or "").strip().upper()
    if own.get(user, "scheduling_function") is None and cutype not in KINDS:
        return None
    effective = site.preferences_of(user)
    return Resource(
        user=user,
        address=user.removeprefix("mailto:"),
        cn=effective.get("CN"),
        cutype=cutype if cutype in KINDS else "RESOURCE",
        owners=tuple(approvers_of(effective.get("approvers"))),
    )


def may_manage(resource: Resource, user: str, admins: Collection[str]) -> bool:
    """Whether ``user`` (a ``mailto:`` URI or an address) manages
    ``resource``: one of its owners, or one of ``admins``."""
    address = user.removeprefix("mailto:").lower()
    chosen = {a.removeprefix("mailto:").lower() for a in admins}
    return address in chosen or address in resource.owners


def bookings(site: Site, resource: Resource, start: datetime, end: datetime) -> list[Entry]:
    """Every instance booked at ``resource`` overlapping ``[start, end)``,
    in its zone (the agents' expansion, :func:`~imiptools.views.agenda.agenda`)."""
    return agenda(site.records(resource.user), start, end)


@dataclass(frozen=True)
class QuotaUse:
    """A quota the resource records its bookings in, and each user's use
    of it now (:func:`~imiptools.views.quota.report_rows`); ``problem``
    says why it cannot be read ('' when it can)."""

    name: str
    rows: list[ReportRow]
    problem: str = ""
    #: The quota's limits, as its ``limits`` file holds them.
    limits: tuple[QuotaLimit, ...] = ()


def quota_use(site: Site, resource: Resource) -> list[QuotaUse]:
    """The quotas named in the resource's ``scheduling_function`` and their use now."""
    found = []
    for name in recorded_in(site, resource):
        try:
            state = site.ledger.snapshot(name)
        except ValueError as exc:
            found.append(QuotaUse(name, [], str(exc)))
            continue
        found.append(QuotaUse(name, report_rows(state, site.clock.now()), "", state.limits))
    return found


def recorded_in(site: Site, resource: Resource) -> list[str]:
    """The quotas ``resource`` records its bookings in (its
    ``scheduling_function``'s recording functions), sorted."""
    return recorded_quotas(site.preferences_of(resource.user).get)


def may_change_quota(site: Site, quota: str, user: str, admins: Collection[str]) -> bool:
    """Whether ``user`` may change the limits of ``quota``: an administrator,
    or someone who manages every resource of the site recording in it (a
    quota binds all of them, so the owner of one room cannot loosen the
    limits of another's)."""
    sharing = [r for r in resources(site) if quota in recorded_in(site, r)]
    return bool(sharing) and all(may_manage(r, user, admins) for r in sharing)


def change_limit(
    site: Site, quota: str, who: str, limit: str, per: str, *, remove: bool = False
) -> str:
    """Set (or with ``remove`` take away) the limit of ``who`` in ``quota``
    from the words ``imip-admin quota set-limit QUOTA WHO LIMIT --per PER``
    takes, read and written by its own code (validated, then written under
    the quota's lock). Returns why it was refused ('' when written)."""
    try:
        chosen = quota_admin.limit_of(who.strip(), limit.strip(), per.strip() or "outstanding")
        quota_admin.set_limit(site.ledger, quota, chosen, remove)
    except ValueError as exc:
        return str(exc)
    return ""


@dataclass(frozen=True)
class PreferenceField:
    """One preference as a form shows it: its name, help, the resource's
    own value ('' when unset, then ``effective`` applies), the effective
    value, the values a list offers (none: free text) and whether it is
    lines of text."""

    name: str
    help: str
    value: str
    effective: str
    options: tuple[str, ...]
    multiline: bool


def preference_fields(site: Site, user: str) -> list[PreferenceField]:
    """Every preference of :data:`~imiptools.preferences.DEFINITIONS`, in
    their order, with ``user``'s values."""
    own, effective = site.preferences, site.preferences_of(user)
    return [
        PreferenceField(
            name=name,
            help=definition.help,
            value=own.get(user, name) or "",
            effective=effective.get(name),
            options=options(name),
            multiline=name in MULTILINE,
        )
        for name, definition in DEFINITIONS.items()
    ]


def change_preferences(site: Site, user: str, values: Mapping[str, str]) -> dict[str, str]:
    """Set ``user``'s preferences to ``values`` (by name; '' unsets), those
    that differ from the own values: every one is validated first as
    ``imip-admin prefs set`` validates (:func:`~imiptools.preferences.validate`,
    then :func:`~imiptools.preferences.set_validated` writes) and nothing is
    written unless all are valid. Returns the errors by name (empty when
    written); a name that is no preference is an error."""
    own = site.preferences
    changed = {}
    for name, value in values.items():
        text = value.replace("\r\n", "\n").strip()
        if name not in DEFINITIONS or text != (own.get(user, name) or "").strip():
            changed[name] = text
    errors = {name: _problem(name, value) for name, value in changed.items()}
    errors = {name: text for name, text in errors.items() if text}
    if errors:
        return errors
    for name, value in changed.items():
        if value:
            set_validated(own, user, name, value)
        else:
            own.unset(user, name)
    return {}


def _problem(name: str, value: str) -> str:
    """Why ``value`` is refused for ``name`` ('' when it is valid or empty,
    which unsets): the message of the validator ``prefs set`` runs."""
    if name not in DEFINITIONS:
        return "not a preference"
    if not value:
        return ""
    try:
        validate(name, value)
    except ValueError as exc:
        return str(exc)
    return ""
