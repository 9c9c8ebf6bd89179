"""The session log: SQLite through sqlite-utils, built so that nothing already logged is lost.

- WAL journal with `synchronous=FULL`: every write is its own transaction and is on disk
  (the WAL is fsynced) before the call returns, so a crash or `kill -9` loses nothing that
  a call already reported as written.
- A versioned schema (`PRAGMA user_version`) with ordered migrations, each applied in one
  transaction; `PRAGMA application_id` marks the file as ours.
- A file that is not a homeapp log, is damaged, or has a newer schema is refused with a
  `StoreError`; it is never recreated or overwritten.
- A session found open whose runner is gone becomes `interrupted` (at `Store.open` and in
  `mark_interrupted`). Liveness is an exclusive `flock` on `<db>.lock`, held by the Store
  that runs a session from `start_session` to `end_session` (the kernel drops it when the
  process dies). The lock also keeps a second session from running on the same log.

Times are stored as ISO 8601 text in UTC (`2026-11-21T09:30:00+00:00`), so text order is
time order; event and contraction times (`t`) are seconds since the session's start on the
engine's clock.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import errno
import fcntl
import hashlib
import json
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from sqlite_utils import Database

from homeapp.ports import LogError

#: 'HMAP': marks a SQLite file as a homeapp log (PRAGMA application_id).
APPLICATION_ID = 0x484D4150

END_STATUSES = ("completed", "stopped", "aborted", "interrupted")
OPEN = "open"  # internal status of a session still running; never in an export

#: Borg CR10 values the report accepts: 0, 0.5, then 1..10 in steps of 0.5.
EFFORT_VALUES = tuple(x / 2 for x in range(0, 21))

#: Free space a session needs to start: its start, events and end go through the WAL a
#: few pages at a time; below this the log may not hold the session's end.
MIN_FREE_BYTES = 64 * 1024

#: Columns of `export_csv`: one row per event (a session with no event gets one row
#: with the event columns empty, so no session is missing from the sheet).
CSV_COLUMNS = ("session_id", "prescription_id", "started_at", "ended_at", "status",
               "planned_contractions", "t", "kind", "detail")


class StoreError(LogError):
    """The log cannot be used: the message names the file and what is wrong."""


# ---------------------------------------------------------------------------- schema

def _migration_1(db: Database) -> None:
    db["prescriptions"].create({
        "key": int,                 # one row per distinct version of a prescription id
        "id": str,
        "sha256": str,              # of the canonical JSON in `source_json`
        "patient_id": str,
        "clinician_id": str,
        "issued": str,              # date, ISO
        "expires": str,
        "signature_key_id": str,    # None for an unsigned (simulation) prescription
        "source_json": str,         # the prescription as the clinician wrote it
        "imported_at": str,
    }, pk="key", not_null={"id", "sha256", "source_json", "imported_at"})
    db["prescriptions"].create_index(["id", "sha256"], unique=True)
    db["sessions"].create({
        "id": str,
        "prescription_id": str,
        "prescription_sha256": str,  # the version in force when it started, if saved
        "started_at": str,
        "ended_at": str,
        "status": str,               # open, completed, stopped, aborted, interrupted
        "planned_contractions": int,
        "channels": int,
        "recovered_at": str,         # when an open session was found and marked interrupted
    }, pk="id", not_null={"prescription_id", "started_at", "status",
                          "planned_contractions", "channels"})
    db["sessions"].create_index(["started_at"])
    db["sessions"].create_index(["status"])
    db["events"].create({
        "id": int,                   # insertion order = the order things happened
        "session_id": str,
        "t": float,
        "kind": str,
        "detail_json": str,
        "logged_at": str,            # wall clock when written (recovery's last sign of life)
    }, pk="id", not_null={"session_id", "t", "kind", "detail_json", "logged_at"},
        foreign_keys=[("session_id", "sessions", "id")])
    db["events"].create_index(["session_id"])
    db["contractions"].create({
        "id": int,
        "session_id": str,
        "channel": int,
        "idx": int,                  # number of the completed contraction on that channel
                                     # (0-based); -1 for one cut short
        "start_t": float,
        "end_t": float,
        "peak_ma": float,
        "completed": int,            # 1 completed, 0 cut short
        "logged_at": str,
    }, pk="id", not_null={"session_id", "channel", "idx", "start_t", "end_t", "peak_ma",
                          "completed", "logged_at"},
        foreign_keys=[("session_id", "sessions", "id")])
    db["contractions"].create_index(["session_id"])
    db["reports"].create({
        "id": int,                   # append-only: a corrected report adds a row
        "session_id": str,
        "pain": int,                 # 0..10
        "effort": float,             # Borg CR10, 0..10 in steps of 0.5
        "comment": str,
        "reported_at": str,
    }, pk="id", not_null={"session_id", "pain", "effort", "reported_at"},
        foreign_keys=[("session_id", "sessions", "id")])
    db["reports"].create_index(["session_id"])
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _migration_2(db: Database) -> None:
    # Things that happen outside any session (a refused start, a recovery), which the
    # clinician must see too.
    db["device_events"].create({
        "id": int,
        "at": str,                   # wall clock, ISO 8601 UTC
        "kind": str,
        "detail_json": str,
    }, pk="id", not_null={"at", "kind", "detail_json"})
    db["device_events"].create_index(["at"])


def _migration_3(db: Database) -> None:
    # PIN lockouts kept on disk so that a restart or power cut does not lift them.
    db["pin_lockouts"].create({
        "role": str,                 # "caregiver" or "clinician"
        "wrong_pins": int,           # wrong PINs in a row so far
        "locked_until": str,         # wall clock, ISO 8601 UTC; NULL when not locked
    }, pk="role", not_null={"role", "wrong_pins"})


#: Ordered migrations: MIGRATIONS[i] brings the schema from version i to i + 1.
#: Append only; never edit one that has shipped.
MIGRATIONS: tuple[Callable[[Database], None], ...] = (_migration_1, _migration_2, _migration_3)
SCHEMA_VERSION = len(MIGRATIONS)


# ---------------------------------------------------------------------------- helpers

def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(when: dt.datetime, what: str) -> str:
    if not isinstance(when, dt.datetime):
        raise ValueError(f"{what} must be a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} must carry a time zone ({when.isoformat()} has none)")
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _parse(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _jsonable(value: Any) -> Any:
    """Plain JSON data from what the engine logs: mappings, tuples, dataclasses, dates.
    Non-finite floats become strings so the export stays strict JSON; whatever else is
    unknown becomes its str() rather than losing the event."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _finite(x: float, what: str) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {x!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{what} must be a finite number, not {x!r}")
    return f


def _damaged(path: Path, reason: str) -> StoreError:
    return StoreError(f"{path}: the log database is damaged ({reason}); "
                      "stimulation is refused until it is restored from a backup")


def _opening_failed(path: Path, error: sqlite3.Error) -> StoreError:
    """A failure to open is "damaged" only when the file itself is bad. A full disk or an
    I/O error says so instead: restoring an old backup over an intact log would lose
    every session since."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF  # the primary result code
    if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN):
        try:
            free_kb = shutil.disk_usage(path.parent).free // 1024
        except OSError:
            free_kb = -1
        if code == sqlite3.SQLITE_FULL or 0 <= free_kb < 1024:
            return StoreError(f"{path}: cannot open the log: the disk is full ({free_kb} KB free); "
                              "free some space (the log itself is intact); "
                              "stimulation is refused until then")
        return StoreError(f"{path}: cannot open the log: the storage reported an error ({error}); "
                          "check the SD card or disk; stimulation is refused until it can be written")
    return _damaged(path, str(error))


# ---------------------------------------------------------------------------- store

class Store:
    """The log. Thread-safe: one connection behind a lock, since the engine thread writes
    while the UI thread reads. Use `Store.open(path)`; close with `close()` or `with`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self.db = Database(conn, execute_plugins=False)
        self._lock = threading.RLock()
        self._live_session: str | None = None   # the session this Store runs
        self._live_fd: int | None = None        # its flock on <db>.lock
        #: Sessions `open` marked interrupted when this Store was opened.
        self.recovered: list[str] = []

    # -- opening --------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, create: bool = True,
             recover: bool = True) -> "Store":
        """Open (or with `create`, make) the log at `path`, migrate it to the current
        schema and, with `recover`, mark sessions whose runner is gone `interrupted`.
        Raises StoreError naming the path and the reason when it cannot."""
        path = Path(path)
        _check_path(path, create=create)
        try:
            conn = sqlite3.connect(str(path), timeout=10.0, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"{path}: cannot open the log database ({e})") from None
        try:
            store = cls(path, conn)
            store._prepare()
            if recover:
                store.recovered = store.mark_interrupted()
        except BaseException:
            conn.close()
            raise
        return store

    def _prepare(self) -> None:
        path, conn = self.path, self._conn
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as e:  # "file is not a database", "malformed", ...
            raise _opening_failed(path, e) from None
        if problems != ["ok"]:
            raise _damaged(path, "; ".join(problems[:3]))
        if objects and app_id != APPLICATION_ID:
            raise _damaged(path, "it is a SQLite file but not a homeapp log")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: the log database has schema version {version}, newer "
                             f"than this homeapp knows ({SCHEMA_VERSION}); update homeapp")
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            for n in range(version, SCHEMA_VERSION):
                with self.db.atomic():
                    MIGRATIONS[n](self.db)
                    self.db.execute(f"PRAGMA user_version = {n + 1}")
        except sqlite3.OperationalError as e:  # read-only file or directory, disk full
            raise StoreError(f"{path}: cannot write the log database ({e})") from None
        except sqlite3.DatabaseError as e:
            raise _opening_failed(path, e) from None
        if mode.lower() != "wal":
            raise StoreError(f"{path}: the log database refused WAL journaling "
                             f"(journal_mode is {mode}); is it on a network file system?")

    def close(self) -> None:
        with self._lock:
            self._release_live()
            self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pragma(self, name: str) -> Any:
        """One PRAGMA value (for checks and diagnostics)."""
        with self._lock:
            return self._conn.execute(f"PRAGMA {name}").fetchone()[0]

    @property
    def schema_version(self) -> int:
        return int(self.pragma("user_version"))

    def write_problem(self) -> str | None:
        """Why the log cannot take a new session now (None: it can), in words for a
        person: the database or its folder not writable, or the disk (nearly) full."""
        for path in (self.path, self.path.parent):
            if not os.access(path, os.W_OK):
                return f"{path} is not writable by this user (permission denied)"
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError as e:
            return f"the free space on {self.path.parent} cannot be read ({e.strerror})"
        if free < MIN_FREE_BYTES:
            return (f"the disk is full ({free // 1024} KB free, a session needs "
                    f"{MIN_FREE_BYTES // 1024} KB)")
        return None

    # -- writes ------------------------------------------------------------------

    def _write(self, what: str) -> "_Writing":
        return _Writing(self, what)

    def save_prescription(self, rx: Any) -> str:
        """Keep a prescription as imported; returns the sha256 of its canonical JSON.
        Saving the same content again is a no-op; a changed prescription under the same
        id is kept as another version (nothing is overwritten)."""
        source = _jsonable(rx.source) if getattr(rx, "source", None) else _jsonable(rx)
        canonical = json.dumps(source, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        sha = hashlib.sha256(canonical.encode()).hexdigest()
        signature = getattr(rx, "signature", None) or {}
        row = {
            "id": rx.id, "sha256": sha, "patient_id": rx.patient_id,
            "clinician_id": rx.clinician_id, "issued": rx.issued.isoformat(),
            "expires": rx.expires.isoformat(), "signature_key_id": signature.get("key_id"),
            "source_json": canonical, "imported_at": _iso(now_utc(), "imported_at"),
        }
        with self._write(f"prescription {rx.id}"):
            if not self.db["prescriptions"].count_where("id = ? AND sha256 = ?", [rx.id, sha]):
                self.db["prescriptions"].insert(row)
        return sha

    def start_session(self, *, session_id: str, prescription_id: str,
                      started_at: dt.datetime, planned_contractions: int,
                      channels: int, check: Callable[[], None] | None = None) -> None:
        """Record a session as `open`. Takes the log's session lock: one session at a
        time per log; StoreError if another is running. `check` runs once the lock is
        held, before anything is written: what it raises leaves the log as it was (no
        prescription can be installed after it passes, until the session ends)."""
        if not isinstance(session_id, str) or not session_id:
            raise ValueError(f"session_id must be a non-empty string, not {session_id!r}")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, not {channels!r}")
        if int(planned_contractions) != planned_contractions or planned_contractions < 0:
            raise ValueError(f"planned_contractions must be a whole number >= 0, "
                             f"not {planned_contractions!r}")
        started = _iso(started_at, "started_at")
        with self._lock:
            if self._live_session is not None:
                raise StoreError(f"{self.path}: session {self._live_session} is still "
                                 "running; end it before starting another")
            self._acquire_live()
            try:
                if check is not None:
                    check()
                with self._write(f"session {session_id}"):
                    if self.db["sessions"].count_where("id = ?", [session_id]):
                        raise StoreError(f"{self.path}: session {session_id} already exists")
                    version = self.db.execute(
                        "SELECT sha256 FROM prescriptions WHERE id = ? ORDER BY key DESC LIMIT 1",
                        [prescription_id]).fetchone()
                    self.db["sessions"].insert({
                        "id": session_id, "prescription_id": prescription_id,
                        "prescription_sha256": version[0] if version else None,
                        "started_at": started, "ended_at": None, "status": OPEN,
                        "planned_contractions": int(planned_contractions),
                        "channels": channels, "recovered_at": None})
            except BaseException:
                self._release_live()
                raise
            self._live_session = session_id

    def add_event(self, session_id: str, *, t: float, kind: str,
                  detail: Mapping[str, Any] | None = None) -> None:
        """Record one event; it is on disk when this returns."""
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"event kind must be a non-empty string, not {kind!r}")
        row = {"session_id": session_id, "t": _finite(t, "event t"), "kind": kind,
               "detail_json": json.dumps(_jsonable(detail or {}), ensure_ascii=False),
               "logged_at": _iso(now_utc(), "logged_at")}
        with self._write(f"event {kind} of session {session_id}"):
            self._require_session(session_id)
            self.db["events"].insert(row)

    def add_contraction(self, session_id: str, *, channel: int, index: int,
                        start_t: float, end_t: float, peak_ma: float,
                        completed: bool) -> None:
        """Record one contraction on one channel (`completed` False: cut short). `index`
        numbers the completed contractions from 0; a cut-short one may carry -1. Nothing
        is refused for being a duplicate: the log keeps what the engine reports."""
        start, end = _finite(start_t, "start_t"), _finite(end_t, "end_t")
        peak = _finite(peak_ma, "peak_ma")
        if end < start:
            raise ValueError(f"contraction ends (end_t {end}) before it starts (start_t {start})")
        if peak < 0:
            raise ValueError(f"peak_ma must be >= 0, not {peak}")
        if int(index) != index or index < -1:
            raise ValueError(f"contraction index must be a whole number >= -1, not {index!r}")
        with self._write(f"contraction {channel}/{index} of session {session_id}"):
            channels = self._require_session(session_id)["channels"]
            if channel not in range(channels):
                raise ValueError(f"channel {channel!r} is not one of the session's "
                                 f"channels (0 to {channels - 1})")
            self.db["contractions"].insert({
                "session_id": session_id, "channel": channel, "idx": int(index),
                "start_t": start, "end_t": end, "peak_ma": peak,
                "completed": 1 if completed else 0,
                "logged_at": _iso(now_utc(), "logged_at")})

    def end_session(self, session_id: str, *, status: str, ended_at: dt.datetime) -> None:
        """Close an open session with its end status; releases the session lock."""
        if status not in END_STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(END_STATUSES)}")
        ended = _iso(ended_at, "ended_at")
        with self._write(f"end of session {session_id}"):
            row = self._require_session(session_id)
            if row["status"] != OPEN:
                raise StoreError(f"{self.path}: session {session_id} already ended "
                                 f"({row['status']} at {row['ended_at']})")
            self.db["sessions"].update(session_id, {"status": status, "ended_at": ended})
        with self._lock:
            if self._live_session == session_id:
                self._release_live()

    def add_device_event(self, *, kind: str, detail: Mapping[str, Any] | None = None,
                         at: dt.datetime | None = None) -> None:
        """Record something that happened outside a session (e.g. `start_refused`)."""
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"event kind must be a non-empty string, not {kind!r}")
        row = {"at": _iso(at or now_utc(), "at"), "kind": kind,
               "detail_json": json.dumps(_jsonable(detail or {}), ensure_ascii=False)}
        with self._write(f"device event {kind}"):
            self.db["device_events"].insert(row)

    def pin_state(self, role: str) -> tuple[int, dt.datetime | None]:
        """(wrong PINs in a row so far, locked until) for `role`; (0, None) if none."""
        with self._lock:
            rows = list(self.db["pin_lockouts"].rows_where("role = ?", [role]))
        if not rows:
            return 0, None
        return int(rows[0]["wrong_pins"]), _parse(rows[0]["locked_until"])

    def record_pin_state(self, role: str, *, wrong_pins: int,
                         locked_until: dt.datetime | None = None) -> None:
        """Keep `role`'s count of wrong PINs and the end of its lockout (None: not locked)."""
        if not isinstance(role, str) or not role:
            raise ValueError(f"PIN role must be a non-empty string, not {role!r}")
        if not isinstance(wrong_pins, int) or wrong_pins < 0:
            raise ValueError(f"wrong_pins must be a whole number >= 0, not {wrong_pins!r}")
        row = {"role": role, "wrong_pins": wrong_pins,
               "locked_until": None if locked_until is None else _iso(locked_until, "locked_until")}
        with self._write(f"PIN state of {role}"):
            self.db["pin_lockouts"].upsert(row, pk="role")

    def clear_pin_state(self, role: str) -> None:
        """Forget `role`'s wrong PINs and lockout (after a right PIN)."""
        with self._write(f"PIN state of {role}"):
            self.db.execute("DELETE FROM pin_lockouts WHERE role = ?", [role])

    def save_report(self, session_id: str, *, pain: int, effort: float,
                    comment: str | None = None) -> None:
        """The patient's report after a session: pain 0..10 (whole numbers), effort on
        the Borg CR10 scale 0..10 in steps of 0.5, an optional comment. A second report
        for the same session is kept too; the export shows the latest."""
        if isinstance(pain, bool) or not isinstance(pain, int) or not 0 <= pain <= 10:
            raise ValueError(f"pain must be a whole number from 0 (none) to 10 (worst "
                             f"imaginable), not {pain!r}")
        if isinstance(effort, bool) or not isinstance(effort, (int, float)) \
                or float(effort) not in EFFORT_VALUES:
            raise ValueError(f"effort must be on the Borg CR10 scale: 0 to 10 in steps of "
                             f"0.5 (0 nothing at all, 10 maximal), not {effort!r}")
        if comment is not None and not isinstance(comment, str):
            raise ValueError(f"comment must be text, not {type(comment).__name__}")
        with self._write(f"report of session {session_id}"):
            self._require_session(session_id)
            self.db["reports"].insert({
                "session_id": session_id, "pain": pain, "effort": float(effort),
                "comment": comment or None, "reported_at": _iso(now_utc(), "reported_at")})

    def mark_interrupted(self, ended_at: dt.datetime | None = None) -> list[str]:
        """Sessions left `open` by a runner that is gone become `interrupted`; returns
        their ids. `ended_at` None: each one's last sign of life (its last event or
        contraction written, else its start), which is closer to the truth than now."""
        given = None if ended_at is None else _iso(ended_at, "ended_at")
        with self._lock:
            open_ids = [r["id"] for r in self.db.query(
                "SELECT id FROM sessions WHERE status = ? ORDER BY rowid", [OPEN])]
            if not open_ids:
                return []
            dead = [i for i in open_ids if i != self._live_session]
            if self._live_session is None and not self._probe_lock_free():
                # A runner holds the lock: its session is the newest open one, since a
                # session is only inserted after its runner took the lock.
                dead = open_ids[:-1]
            found = _iso(now_utc(), "recovered_at")
            with self._write("interrupted sessions"):
                for sid in dead:
                    last = given or self.db.execute(
                        "SELECT max(x) FROM (SELECT max(logged_at) AS x FROM events WHERE session_id = ?"
                        " UNION ALL SELECT max(logged_at) FROM contractions WHERE session_id = ?"
                        " UNION ALL SELECT started_at FROM sessions WHERE id = ?)",
                        [sid, sid, sid]).fetchone()[0]
                    self.db["sessions"].update(sid, {"status": "interrupted", "ended_at": last,
                                                     "recovered_at": found})
            return dead

    # -- reads -----------------------------------------------------------------

    def prescriptions(self) -> list[dict[str, Any]]:
        """Every stored prescription version, oldest import first, with `source` parsed."""
        with self._lock:
            rows = list(self.db["prescriptions"].rows_where(order_by="key"))
        out = []
        for r in rows:
            r = dict(r)
            r.pop("key")
            r["source"] = json.loads(r.pop("source_json"))
            out.append(r)
        return out

    def reports(self, session_id: str | None = None) -> list[dict[str, Any]]:
        """Every patient report (corrections included), oldest first."""
        where, args = ("session_id = ?", [session_id]) if session_id else (None, [])
        with self._lock:
            return [{k: r[k] for k in ("session_id", "pain", "effort", "comment", "reported_at")}
                    for r in self.db["reports"].rows_where(where, args, order_by="id")]

    def device_events(self, *, since: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Events outside sessions, oldest first: `{"at", "kind", "detail"}`."""
        where, args = ("at >= ?", [_iso(since, "since")]) if since else (None, [])
        with self._lock:
            return [{"at": r["at"], "kind": r["kind"], "detail": json.loads(r["detail_json"])}
                    for r in self.db["device_events"].rows_where(where, args, order_by="at, id")]

    def device_events_after(self, row_id: int, *, limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """(row id, event) of the events outside sessions logged after row `row_id`, in
        the order they were logged (at most `limit`): a cursor a clock set back cannot
        fool, as `at` can."""
        with self._lock:
            return [(r["id"], {"at": r["at"], "kind": r["kind"], "detail": json.loads(r["detail_json"])})
                    for r in self.db["device_events"].rows_where("id > ?", [row_id], order_by="id", limit=limit)]

    def sessions_after(self, row_id: int, *, limit: int | None = None) -> list[tuple[int, dict[str, Any] | None]]:
        """(row id, session in the export's shape) of the sessions logged after row
        `row_id`, in the order they were started (at most `limit`); None for one still
        running (its status is not final). A cursor a clock set back cannot fool, as
        `started_at` can."""
        with self._lock:
            rows = list(self.db["sessions"].rows_where("rowid > ?", [row_id], order_by="rowid", limit=limit,
                                                       select="rowid, *"))
            return [(r["rowid"], self._session_dict(r, full=True) if r["status"] != OPEN else None) for r in rows]

    def reader(self) -> "Store":
        """Another Store on this log with its own read-only connection and lock, for a
        reader on another thread (the clinic sync): it neither waits for nor holds up the
        writes of this one (WAL lets readers and the writer run at once). Close it."""
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0,
                                   check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open the log database to read ({e})") from None
        return Store(self.path, conn)

    def sessions(self, *, since: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Sessions (open ones included, status `open`) started at or after `since`,
        oldest first, in the export's shape without `events`/`contraction_list`."""
        with self._lock:
            return [self._session_dict(r, full=False) for r in self._session_rows(since, True)]

    def session(self, session_id: str) -> dict[str, Any]:
        """One session in the export's shape (events, contraction_list, report)."""
        with self._lock:
            return self._session_dict(self._require_session(session_id), full=True)

    def session_spans(self, prescription_id: str) -> list[dict[str, Any]]:
        """`id`, `started_at`, `ended_at` (None while open) and `status` of this prescription's
        sessions, oldest first, as `sessions()` gives them but from one query: the start
        check asks for them every second while Home is shown."""
        with self._lock:
            return list(self.db["sessions"].rows_where(
                "prescription_id = ?", [prescription_id], order_by="started_at, rowid",
                select="id, prescription_id, started_at, ended_at, status"))

    def session_starts(self, prescription_id: str | None = None) -> list[tuple[dt.datetime, str]]:
        """(started_at, status) of every session, oldest first, for schedule checks;
        a session still running has status `open`."""
        where, args = ("prescription_id = ?", [prescription_id]) if prescription_id else (None, [])
        with self._lock:
            rows = list(self.db["sessions"].rows_where(where, args, order_by="started_at, rowid",
                                                       select="started_at, status"))
        return [(_parse(r["started_at"]), r["status"]) for r in rows]

    def export(self, *, since: dt.datetime | None = None) -> dict[str, Any]:
        """contract.md's log export: `{"sessions": [...]}`, oldest first. Sessions still
        running are left out (their status is not final); they appear once ended or
        interrupted. Added fields: per session `report` (latest or null),
        `contraction_list`, `recovered_at`, per channel `contractions_cut_short`; at the
        top `device_events` (events outside sessions, e.g. refused starts)."""
        with self._lock:
            return {"sessions": [self._session_dict(r, full=True)
                                 for r in self._session_rows(since, False)],
                    "device_events": self.device_events(since=since)}

    def export_csv(self, out: TextIO, *, since: dt.datetime | None = None) -> None:
        """CSV of the export: header `CSV_COLUMNS`, one row per event; `detail` is the
        event's JSON; a session without events has one row with empty event columns."""
        write_export_csv(self.export(since=since), out)

    def backup(self, dest: str | os.PathLike[str]) -> Path:
        """A consistent copy of the log at `dest` through SQLite's online backup, safe
        while this or another process writes. Never overwrites: StoreError if `dest`
        exists. The copy is a single file (rollback journal), checked before it is
        given its name."""
        dest = Path(dest)
        if dest.exists():
            raise StoreError(f"{dest}: already exists; a backup never overwrites a file")
        if not dest.parent.is_dir():
            raise StoreError(f"{dest}: the folder {dest.parent} does not exist")
        partial = dest.with_name(dest.name + ".partial")
        try:
            partial.unlink(missing_ok=True)
            # Our own read connection: in WAL mode it sees one committed snapshot and
            # never blocks the engine's writes; one step (pages=-1) so it never restarts.
            src = sqlite3.connect(str(self.path), timeout=10.0)
            dst = sqlite3.connect(str(partial))
            try:
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode=DELETE")
                problems = [r[0] for r in dst.execute("PRAGMA integrity_check")]
                if problems != ["ok"]:
                    raise StoreError(f"{dest}: the backup failed its integrity check "
                                     f"({'; '.join(problems[:3])})")
            finally:
                dst.close()
                src.close()
            with open(partial, "rb") as f:
                os.fsync(f.fileno())
            os.replace(partial, dest)
            _fsync_dir(dest.parent)
        except sqlite3.Error as e:
            partial.unlink(missing_ok=True)
            raise StoreError(f"{dest}: backup of {self.path} failed ({e})") from None
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise StoreError(f"{dest}: backup of {self.path} failed ({e.strerror or e})") from None
        return dest

    # -- internals ---------------------------------------------------------------

    def _require_session(self, session_id: str) -> dict[str, Any]:
        rows = list(self.db["sessions"].rows_where("id = ?", [session_id]))
        if not rows:
            raise StoreError(f"{self.path}: no session {session_id!r} in the log")
        return rows[0]

    def _session_rows(self, since: dt.datetime | None, include_open: bool) -> Iterator[dict]:
        clauses, args = [], []
        if since is not None:
            clauses.append("started_at >= ?")
            args.append(_iso(since, "since"))
        if not include_open:
            clauses.append("status != ?")
            args.append(OPEN)
        return self.db["sessions"].rows_where(" AND ".join(clauses) or None, args,
                                              order_by="started_at, rowid")

    def _session_dict(self, row: dict[str, Any], *, full: bool) -> dict[str, Any]:
        sid = row["id"]
        contractions = list(self.db["contractions"].rows_where(
            "session_id = ?", [sid], order_by="channel, start_t, id"))
        channels = []
        for ch in range(row["channels"]):
            mine = [c for c in contractions if c["channel"] == ch]
            done = [c["peak_ma"] for c in mine if c["completed"]]
            channels.append({
                "contractions": len(done),
                # peak over every contraction, cut short or not: the most current delivered
                "peak_ma": max((c["peak_ma"] for c in mine), default=0.0),
                "mean_ma": round(sum(done) / len(done), 2) if done else 0.0,
                "contractions_cut_short": len(mine) - len(done),
            })
        out: dict[str, Any] = {
            "id": sid, "prescription_id": row["prescription_id"],
            "started_at": row["started_at"], "ended_at": row["ended_at"],
            "status": row["status"], "planned_contractions": row["planned_contractions"],
            "channels": channels,
        }
        if not full:
            return out
        out["events"] = [
            {"t": e["t"], "kind": e["kind"], "detail": json.loads(e["detail_json"])}
            for e in self.db["events"].rows_where("session_id = ?", [sid], order_by="id")]
        out["contraction_list"] = [
            {"channel": c["channel"], "index": c["idx"], "start_t": c["start_t"],
             "end_t": c["end_t"], "peak_ma": c["peak_ma"], "completed": bool(c["completed"])}
            for c in contractions]
        reports = list(self.db["reports"].rows_where(
            "session_id = ?", [sid], order_by="id desc", limit=1))
        out["report"] = ({k: reports[0][k] for k in ("pain", "effort", "comment", "reported_at")}
                         if reports else None)
        out["recovered_at"] = row["recovered_at"]
        return out

    def _lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _acquire_live(self) -> None:
        """Take the session lock (retrying briefly: a recovering reader holds it for
        microseconds while it probes)."""
        try:
            fd = os.open(self._lock_path(), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"{self._lock_path()}: cannot create the session lock "
                             f"({e.strerror})") from None
        deadline = time.monotonic() + 0.5
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreError(f"{self.path}: another session is running on this log; "
                                     "only one session at a time") from None
                time.sleep(0.02)
        self._live_fd = fd

    def _release_live(self) -> None:
        if self._live_fd is not None:
            os.close(self._live_fd)  # closing drops the flock
        self._live_fd = None
        self._live_session = None

    def _probe_lock_free(self) -> bool:
        """True when no runner holds the session lock (it is released at once)."""
        try:
            return not session_lock_held(self._lock_path())
        except OSError as e:
            raise StoreError(f"{self._lock_path()}: cannot open the session lock "
                             f"({e.strerror})") from None


def session_lock_held(lock_path: Path) -> bool:
    """True while a runner holds the log's session lock (`<db>.lock`): probed by taking it
    and releasing it at once. An OSError opening the file is the caller's to word."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


class _Writing:
    """One write transaction under the store's lock; turns SQLite failures into
    StoreError naming the file and what was being written."""

    def __init__(self, store: Store, what: str) -> None:
        self.store, self.what = store, what

    def __enter__(self) -> None:
        self.store._lock.acquire()
        try:
            self._atomic = self.store.db.atomic()
            self._atomic.__enter__()
        except BaseException:
            self.store._lock.release()
            raise

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        try:
            self._atomic.__exit__(exc_type, exc, tb)
        except sqlite3.Error as e:
            raise self._failed(e) from None
        finally:
            self.store._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise self._failed(exc) from None
        return False

    def _failed(self, error: sqlite3.Error) -> StoreError:
        code = getattr(error, "sqlite_errorcode", 0) & 0xFF
        if code == sqlite3.SQLITE_FULL:
            return StoreError(f"{self.store.path}: could not write {self.what}: the disk is full "
                              f"(what was logged before is kept)")
        return StoreError(f"{self.store.path}: could not write {self.what} ({error})")


def write_export_csv(export: Mapping[str, Any], out: TextIO) -> None:
    """`Store.export_csv` of an export object (also the clinic's, rebuilt from uploads)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in export["sessions"]:
        head = [s["id"], s["prescription_id"], s["started_at"], s["ended_at"] or "",
                s["status"], s["planned_contractions"]]
        for e in s["events"] or [None]:
            if e is None:
                w.writerow(head + ["", "", ""])
            else:
                w.writerow(head + [repr(e["t"]), e["kind"],
                                   json.dumps(e["detail"], ensure_ascii=False,
                                              separators=(",", ":"))])


def _check_path(path: Path, *, create: bool) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists():
        if not path.is_file():
            raise StoreError(f"{path}: not a file, cannot hold the log database")
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"{path}: the log database is not readable and writable "
                             "by this user (permission denied)")
    elif not create:
        raise StoreError(f"{path}: no such log database")
    if not parent.is_dir():
        raise StoreError(f"{path}: cannot create the log database: the folder "
                         f"{parent} does not exist")
    # WAL needs the -wal and -shm files beside the database
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: the log database's folder {parent} is not writable "
                         "by this user (permission denied)")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):  # some file systems cannot
            raise
    finally:
        os.close(fd)
