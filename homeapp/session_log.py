"""The session log as the patient's screens read it: the sessions, adherence week by week,
when the next session may start, what Home warns about, and the export for the clinician.

Reading never raises: a log that cannot be read shows as empty (and is logged), so a
damaged row never takes a screen down. Writing the export raises OSError for the screen
to show."""
from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

#: Self-adhesive pads: replace after about this many sessions.
PAD_WARN_SESSIONS = 20
#: A prescription this close to its end date (days) is announced on Home.
EXPIRY_WARN_DAYS = 14


@dataclass(frozen=True)
class Warning_:
    """Something Home tells the patient: `kind` is "rx_expiring", "rx_expired",
    "pads_old", "cut_short", "no_rx" or "demo"; `params` fill its sentence."""

    kind: str
    params: dict


class SessionLog:
    """Reads `store` (homeapp.store.Store; None: no log, everything empty). `today` is
    asked each time (a screen left on overnight)."""

    def __init__(self, store: Any, *, today: Callable[[], dt.date] = dt.date.today) -> None:
        self.store = store
        self.today = today

    def sessions(self, full: bool = False) -> list[dict]:
        """The log's ended sessions in contract.md's export shape, oldest first (`full`:
        with events and the patient's report)."""
        st = self.store
        if st is None:
            return []
        try:
            if full or not hasattr(st, "sessions"):
                sessions = st.export().get("sessions", [])
            else:
                sessions = [s for s in st.sessions() if s.get("status") != "open"]
        except Exception:
            log.exception("reading the log")
            return []
        return sorted(sessions, key=lambda s: s.get("started_at") or "")

    def session(self, session_id: str) -> dict | None:
        """One session with its channels and events (None: not in the log)."""
        if not session_id or self.store is None:
            return None
        try:
            return self.store.session(session_id)
        except Exception:
            return None

    def session_starts(self, rx_id: str | None = None) -> list[tuple[dt.datetime, str]]:
        """(started_at, status) of the sessions of `rx_id` (None: all), as
        schedules.adherence takes them."""
        if self.store is None:
            return []
        try:
            return list(self.store.session_starts(rx_id))
        except Exception:
            log.exception("reading session starts")
            return []

    def schedule_starts(self, rx: Any) -> list[tuple[dt.datetime, str]]:
        """The starts that count against the schedule, as the engine counts them: a
        session aborted within its first minutes does not use up the day's session."""
        if self.store is None or rx is None:
            return self.session_starts(rx.id if rx is not None else None)
        from schedules.adherence import counted_starts
        return counted_starts(self.store.session_spans(rx.id))

    def _weeks(self, rx: Any) -> list:
        from schedules.adherence import weekly_adherence
        return weekly_adherence(rx, self.session_starts(rx.id), today=self.today())

    def adherence(self, rx: Any) -> tuple[int, int] | None:
        """(completed this week, sessions per week), or None without a prescription."""
        if rx is None:
            return None
        try:
            weeks = self._weeks(rx)
        except Exception:
            log.exception("adherence")
            weeks = []
        monday = self.today() - dt.timedelta(days=self.today().weekday())
        done = next((w.done for w in weeks if w.first_day >= monday), 0)
        return done, rx.sessions_per_week

    def weekly_history(self, rx: Any, weeks: int = 6) -> list[tuple[dt.date, int, float]]:
        """(first day, completed, prescribed) for the last `weeks` of the prescription."""
        if rx is None:
            return []
        try:
            rows = self._weeks(rx)[-weeks:]
        except Exception:
            log.exception("adherence")
            return []
        return [(w.first_day, w.done, w.prescribed) for w in rows]

    def next_start(self, rx: Any, *, now: dt.datetime | None = None) -> dict:
        """When the next session may start: {"when": "now" | "later" | "never" | "none",
        "at": "HH:MM" today, or "YYYY-MM-DD HH:MM"}."""
        if rx is None:
            return {"when": "none"}
        try:
            from schedules.adherence import next_session_at
            now = now or dt.datetime.now(dt.timezone.utc).astimezone()
            at = next_session_at(rx, self.schedule_starts(rx), now=now)
        except Exception:
            log.exception("next session")
            return {"when": "now"}
        if at is None:
            return {"when": "never"}
        if at <= now + dt.timedelta(seconds=1):
            return {"when": "now"}
        local = at.astimezone()
        if local.date() == now.date():
            return {"when": "later", "at": local.strftime("%H:%M")}
        return {"when": "later", "at": local.strftime("%Y-%m-%d %H:%M")}

    def warnings(self, rx: Any, *, demo: bool = False, pads_changed_at_count: int = 0) -> list[Warning_]:
        """What Home warns about: no prescription, the DEMO, an expiring or expired
        prescription, old pads, the last session of this prescription cut short."""
        if rx is None:
            return [Warning_("no_rx", {})]
        out: list[Warning_] = []
        if demo:
            out.append(Warning_("demo", {}))
        days = (rx.expires - self.today()).days
        if days < 0:
            out.append(Warning_("rx_expired", {"date": rx.expires.isoformat()}))
        elif days <= EXPIRY_WARN_DAYS:
            out.append(Warning_("rx_expiring", {"days": days, "date": rx.expires.isoformat()}))
        sessions = self.sessions()
        if len(sessions) - pads_changed_at_count >= PAD_WARN_SESSIONS:
            out.append(Warning_("pads_old", {"n": len(sessions) - pads_changed_at_count}))
        if sessions and sessions[-1].get("status") in ("stopped", "aborted", "interrupted") \
                and sessions[-1].get("prescription_id") == rx.id:
            out.append(Warning_("cut_short", {"status": sessions[-1].get("status")}))
        return out

    def export(self, dest_dir: str | Path, *, data_dir: Path, device_key_path: Path | None = None,
               now: dt.datetime | None = None) -> Path:
        """The log for the clinician, written to `dest_dir`: a hash-chained bundle signed
        by this device (with the device's public key beside it, to verify it), and the
        same log as JSON and CSV. Returns the JSON file's path."""
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        data = self.store.export() if self.store is not None else {"sessions": []}
        stem = f"homeapp-log-{(now or dt.datetime.now()).strftime('%Y%m%d-%H%M%S')}"
        path = dest / f"{stem}.json"
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        if self.store is not None:
            # the same log as a table, for a spreadsheet
            with open(path.with_suffix(".csv"), "w", encoding="utf-8", newline="") as f:
                self.store.export_csv(f)
            from homeapp.bundle import write_bundle
            from homeapp.device_key import device_public_key_path, ensure_device_key
            key, _key_id = ensure_device_key(data_dir, private_key_path=device_key_path)
            write_bundle(self.store, dest / f"{stem}.bundle", device_key=key)
            public = device_public_key_path(data_dir, private_key_path=device_key_path)
            shutil.copyfile(public, dest / "homeapp-device-key.pub")
        return path
