"""UTC time for the clinic: every stored time is timezone-aware UTC."""
from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, in UTC, with the zone attached."""
    return dt.datetime.now(dt.timezone.utc)


def iso(when: dt.datetime | None) -> str | None:
    """ISO 8601 with the zone, to the second (None stays None)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


#: The clinic's time zone, an IANA name (e.g. Europe/Stockholm); unset or empty: the
#: zone of the machine serving the pages. It says which day "today" is for the
#: clinician's pages (a new program's issued/valid_from, "this week", "3 days").
CLINIC_TZ_ENV = "HOMEAPP_CLINIC_TZ"


class ZoneError(ValueError):
    """The configured clinic time zone is not a zone name."""


def clinic_zone() -> dt.tzinfo | None:
    """The clinic's zone ($HOMEAPP_CLINIC_TZ), or None for the machine's local zone
    (as `datetime.astimezone(None)` reads it, with its summer time)."""
    import os
    name = os.environ.get(CLINIC_TZ_ENV, "").strip()
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ZoneError(f"{CLINIC_TZ_ENV}={name!r} is not a time zone: give an IANA name such as "
                        f"Europe/Stockholm or UTC, or leave it unset for this machine's zone") from None


def clinic_now() -> dt.datetime:
    """Now, in the clinic's zone (aware)."""
    return utcnow().astimezone(clinic_zone())


def clinic_today() -> dt.date:
    """The clinic's today: the day it is in the clinic's zone."""
    return clinic_now().date()
