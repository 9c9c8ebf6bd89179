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
