"""The device's side of the clinic: pairing, uploading the log, fetching a prescription.

The outbox (`sync.db` in the data directory) is the device's outgoing log chain: every
finished record of the session log (homeapp/store.py), each once, in a fixed order,
hash-chained from a header exactly as a log bundle (homeapp/bundle.py) is. A record
enters the chain once and never changes; what the clinic acknowledged is noted beside
it. A sync

1. appends to the chain whatever the log holds that the chain does not (sessions once
   they have ended, with their contractions, events and reports; later reports; the
   device's events outside sessions; prescriptions);
2. asks the clinic how far it holds the chain, and uploads the rest in signed batches
   (homeapp/syncproto.py), each acknowledged as a whole; a batch cut at any byte is
   simply sent again, and the clinic ignores what it already holds;
3. fetches the newest prescription the clinician published, and installs it through
   homeapp/prescriptions.py, the same path as a USB import: verified against this
   device's own trust store, never while a session runs, logged either way.

Nothing here runs on the engine's thread: the command line runs it in its own process,
the app in a child process of its own (homeapp/sync_process.py) that `BackgroundSync`'s
thread drives.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import sqlite3
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from . import prescriptions, syncproto

log = logging.getLogger(__name__)

SYNC_DB = "sync.db"
CA_FILE = "clinic-ca.pem"
GENESIS = "0" * 64
#: Seconds to wait for the clinic before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
#: The outbox's cursors: the log's last session row and device event row in the chain.
CURSOR_SESSIONS = "cursor_session_row"
CURSOR_DEVICE_EVENTS = "cursor_device_event_row"
#: Sessions (with their contractions and events) and device events read from the log at a time.
SESSIONS_PER_READ = 2
EVENTS_PER_READ = 200
#: Records made between two pauses of the sync's thread, and the pause.
RECORDS_PER_SLICE = 40
PAUSE_S = 0.001
#: Records in one upload request from the app's thread: a day is one request, a backlog a
#: few dozen, each body made in well under a millisecond.
APP_RECORDS_PER_REQUEST = 400


class SyncError(Exception):
    """The clinic or the device refused something (exit 2); `reason` for a person."""

    exit_code = 2
    status = "refused"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClinicUnreachable(SyncError):
    """The clinic cannot be reached now; everything stays queued (exit 3)."""

    exit_code = 3
    status = "unreachable"


class NotConfigured(SyncError):
    """No clinic: the device was never paired and no clinic.url is configured."""


@dataclass
class SyncResult:
    """What one sync did: records uploaded, the prescription installed (its id), a
    prescription refused or waiting (with the reason), and the bytes it sent (request
    bodies and signed headers) and received (answer bodies)."""

    uploaded: int = 0
    prescription: str | None = None
    prescription_refused: str | None = None
    prescription_waiting: str | None = None
    acknowledged: int = -1
    bytes_sent: int = 0
    bytes_received: int = 0

    def line(self) -> dict[str, Any]:
        return {"uploaded": self.uploaded, "prescription": self.prescription, "status": "ok"}


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_line(seq: int, kind: str, data: Any, prev_hash: str) -> tuple[str, str]:
    """(line, hash) of one chained record. The hash is homeapp/bundle.py's (over the
    canonical JSON, keys sorted); the line keeps `data` in the log's own key order, so the
    clinic's export equals `homeapp log export` byte for byte. Where that order is already
    sorted, the line is exactly the bundle writer's."""
    body = _canonical({"seq": seq, "kind": kind, "data": data, "prev_hash": prev_hash})
    digest = hashlib.sha256(body).hexdigest()
    data_text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    line = (f'{{"data":{data_text},"kind":{json.dumps(kind)},"prev_hash":"{prev_hash}",'
            f'"seq":{seq},"hash":"{digest}"}}')
    return line, digest


# ---------------------------------------------------------------------------- the outbox

class Outbox:
    """The device's outgoing chain and sync state, in its own SQLite file (WAL, every
    write on disk before it returns), so a sync cut at any point resumes where it was."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        c = self._conn
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("CREATE TABLE IF NOT EXISTS chain (seq INTEGER PRIMARY KEY, natural_key TEXT NOT NULL UNIQUE, "
                  "kind TEXT NOT NULL, session_id TEXT, hash TEXT NOT NULL, line TEXT NOT NULL)")
        c.execute("CREATE INDEX IF NOT EXISTS chain_session ON chain (session_id, kind)")
        c.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state
    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set(self, **values: Any) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for key, value in values.items():
                    self._conn.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                                       "SET value = excluded.value", (key, json.dumps(value)))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    # -- the chain
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last record; (-1, GENESIS) for an empty chain."""
        with self._lock:
            row = self._conn.execute("SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (-1, GENESIS)

    def hash_at(self, seq: int) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT hash FROM chain WHERE seq = ?", (seq,)).fetchone()
        return row[0] if row else None

    def lines_after(self, seq: int, *, limit: int) -> list[tuple[int, str, str]]:
        """(seq, hash, line) of the records after `seq`, oldest first."""
        with self._lock:
            return list(self._conn.execute("SELECT seq, hash, line FROM chain WHERE seq > ? ORDER BY seq LIMIT ?",
                                           (seq, limit)))

    def refresh(self, store: Any, *, device_key_id: str) -> int:
        """Append what the log holds that the chain does not; returns how many records.
        One transaction: a kill leaves the chain as it was."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                added = self._refresh(store, device_key_id)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return added

    def _refresh(self, store: Any, device_key_id: str) -> int:
        c = self._conn
        seq, prev = self.head()
        added = 0

        def append(key: str, kind: str, data: Any, session_id: str | None = None) -> None:
            nonlocal seq, prev, added
            seq += 1
            line, prev = record_line(seq, kind, data, prev)
            c.execute("INSERT INTO chain (seq, natural_key, kind, session_id, hash, line) VALUES (?, ?, ?, ?, ?, ?)",
                      (seq, key, kind, session_id, prev, line))
            added += 1
            if added % RECORDS_PER_SLICE == 0:
                _pause()

        if seq < 0:
            append("header", "header", {"format": syncproto.LOG_FORMAT, "device_key_id": device_key_id,
                                        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                        "since": None})
        have = lambda key: c.execute("SELECT 1 FROM chain WHERE natural_key = ?", (key,)).fetchone() is not None  # noqa: E731

        for rx in store.prescriptions():
            key = f"prescription:{rx.get('id')}:{rx.get('sha256')}"
            if not have(key):
                append(key, "prescription", rx)

        # Sessions and device events are read after the last row the chain took, in the
        # order they were logged (never by their times: a clock set back would hide them),
        # a few at a time, pausing between reads so the engine's thread gets the
        # interpreter at once (see `_pause`).
        cursor = self._cursor(CURSOR_SESSIONS)
        running = False
        while not running:
            rows = store.sessions_after(cursor, limit=SESSIONS_PER_READ)
            for row_id, s in rows:
                if s is None:               # still running: taken, and the cursor moved, once it has ended
                    running = True
                    break
                cursor = row_id
                sid = s["id"]
                if have(f"session:{sid}"):
                    continue
                append(f"session:{sid}", "session",
                       {k: v for k, v in s.items() if k not in ("events", "contraction_list", "report", "reports")},
                       sid)
                for n, child in enumerate(s.get("contraction_list") or ()):
                    append(f"contraction:{sid}:{n}", "contraction", {"session_id": sid, **child}, sid)
                for n, child in enumerate(s.get("events") or ()):
                    append(f"event:{sid}:{n}", "event", {"session_id": sid, **child}, sid)
            self._set_cursor(CURSOR_SESSIONS, cursor)
            if len(rows) < SESSIONS_PER_READ:
                break
            _pause()

        # Reports come after their session ends, corrections later still: each once.
        chained_reports: dict[str, int] = dict(c.execute(
            "SELECT session_id, count(*) FROM chain WHERE kind = 'report' GROUP BY session_id"))
        by_session: dict[str, list[dict[str, Any]]] = {}
        for r in store.reports():
            by_session.setdefault(r["session_id"], []).append(r)
        for sid, reports in by_session.items():
            done = chained_reports.get(sid, 0)
            if len(reports) <= done or not have(f"session:{sid}"):
                continue
            for n in range(done, len(reports)):
                append(f"report:{sid}:{n}", "report", reports[n], sid)

        cursor = self._cursor(CURSOR_DEVICE_EVENTS)
        # a chain begun before the cursor existed named its events by their content: those
        # names are kept (each event once), every later event is named by its row
        by_content = cursor == 0 and c.execute(
            "SELECT 1 FROM chain WHERE kind = 'device_event' LIMIT 1").fetchone() is not None
        seen: dict[str, int] = {}
        while True:
            rows = store.device_events_after(cursor, limit=EVENTS_PER_READ)
            for row_id, event in rows:
                cursor = row_id
                if by_content:
                    base = "device_event:" + hashlib.sha256(_canonical(event)).hexdigest()
                    seen[base] = seen.get(base, 0) + 1
                    key = f"{base}:{seen[base]}"
                else:
                    key = f"device_event:row:{row_id}"
                if not have(key):
                    append(key, "device_event", event)
            self._set_cursor(CURSOR_DEVICE_EVENTS, cursor)
            if len(rows) < EVENTS_PER_READ:
                break
            _pause()
        return added

    def adopt(self, lines: list[str]) -> None:
        """Replace the chain with these lines (already verified), all acknowledged, and
        forget the cursors: the next refresh reads the whole log and appends what the
        chain does not hold. One transaction."""
        rows = _natural_keys(lines)
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("DELETE FROM chain")
                c.execute("DELETE FROM state WHERE key IN (?, ?)", (CURSOR_SESSIONS, CURSOR_DEVICE_EVENTS))
                c.executemany("INSERT INTO chain (seq, natural_key, kind, session_id, hash, line) "
                              "VALUES (?, ?, ?, ?, ?, ?)", rows)
                c.execute("INSERT INTO state (key, value) VALUES ('acknowledged', ?) ON CONFLICT(key) DO UPDATE "
                          "SET value = excluded.value", (json.dumps(rows[-1][0] if rows else -1),))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _cursor(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return int(json.loads(row[0])) if row else 0

    def _set_cursor(self, key: str, row_id: int) -> None:
        """Inside the refresh's transaction: the cursor moves with the records it took."""
        self._conn.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                           "SET value = excluded.value", (key, json.dumps(row_id)))


def _natural_keys(lines: list[str]) -> list[tuple[int, str, str, str | None, str, str]]:
    """(seq, natural key, kind, session id, hash, line) of chain lines, keyed exactly as
    `Outbox._refresh` keys the records it makes (a chain taken back from the clinic)."""
    rows = []
    counts: dict[str, int] = {}
    for line in lines:
        obj = json.loads(line)
        kind, data = obj["kind"], obj["data"]
        sid = None
        if kind == "header":
            key = "header"
        elif kind == "prescription":
            key = f"prescription:{data.get('id')}:{data.get('sha256')}"
        elif kind == "session":
            sid = data.get("id")
            key = f"session:{sid}"
        elif kind == "device_event":
            base = "device_event:" + hashlib.sha256(_canonical(data)).hexdigest()
            counts[base] = counts.get(base, 0) + 1
            key = f"{base}:{counts[base]}"
        else:                               # contraction, event, report: numbered within their session
            sid = data.get("session_id")
            base = f"{kind}:{sid}"
            key = f"{base}:{counts.get(base, 0)}"
            counts[base] = counts.get(base, 0) + 1
        rows.append((obj["seq"], key, kind, sid, obj["hash"], line))
    return rows


def _verify_own_chain(lines: list[str], end: Any, head: Any, *, public_key: Any, key_id: str) -> str | None:
    """What is wrong with a chain said to be this device's own, or None: each record
    continues the one before from the start, its hash covers its content, the first is a
    header naming this device's key, and the end line is this device's signature over
    the chain's count and head."""
    import base64
    import binascii

    from cryptography.exceptions import InvalidSignature

    from .bundle import record_hash
    prev = GENESIS
    for n, line in enumerate(lines):
        try:
            obj = json.loads(line)
            seq, kind, data, prev_hash, h = (obj[k] for k in ("seq", "kind", "data", "prev_hash", "hash"))
        except (ValueError, TypeError, KeyError):
            return f"record {n} is not a log record"
        if seq != n or prev_hash != prev or not isinstance(data, dict) or record_hash(seq, kind, data, prev) != h:
            return f"record {n} does not continue the chain (changed, missing or out of order)"
        if n == 0 and (kind != "header" or data.get("device_key_id") != key_id):
            return "the log does not begin with this device's header"
        prev = h
    if prev != head:
        return "its head is not the one the clinic reported"
    if not isinstance(end, dict) or end.get("count") != len(lines) - 1 or end.get("head") != prev:
        return "this device's signed end line does not cover it"
    try:
        public_key.verify(base64.b64decode(str(end.get("signature")), validate=True),
                          syncproto.end_payload(key_id, len(lines) - 1, prev))
    except (InvalidSignature, binascii.Error, ValueError):
        return "it is not signed by this device's key"
    return None


def _pause() -> None:
    """Let the other threads of the app run: a real sleep hands the engine's thread the
    interpreter now, where it would otherwise wait for the switch interval (5 ms)."""
    time.sleep(PAUSE_S)


# ---------------------------------------------------------------------------- the client

def _ssl_context(ca_cert: str | os.PathLike[str] | None) -> ssl.SSLContext | bool:
    if ca_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_cert))
    except (OSError, ssl.SSLError) as e:
        raise SyncError(f"the clinic's CA certificate {ca_cert} cannot be read ({e})") from None


class ClinicClient:
    """Signed requests to the clinic (httpx). Network failures become ClinicUnreachable,
    refusals SyncError with the clinic's own words."""

    def __init__(self, url: str, *, device_key: Any, device_key_id: str,
                 ca_cert: str | os.PathLike[str] | None = None, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        import httpx
        self.url = url.rstrip("/")
        self.key, self.key_id = device_key, device_key_id
        self._httpx = httpx
        self.client = httpx.Client(base_url=self.url, verify=_ssl_context(ca_cert),
                                   timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S))
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, body: bytes = b"", *, content_type: str = "application/json",
                sign_with: tuple[Any, str] | None = None) -> Any:
        key, kid = sign_with or (self.key, self.key_id)
        headers = syncproto.sign_request(key, kid, method, path, body)
        if body:
            headers["Content-Type"] = content_type
        httpx = self._httpx
        try:
            response = self.client.request(method, path, content=body, headers=headers)
        except httpx.ConnectError as e:
            if isinstance(e.__context__, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(e):
                raise SyncError(f"the clinic at {self.url} is not who it claims: its TLS certificate is not trusted "
                                f"(give the clinic's CA certificate with --ca-cert)") from None
            raise ClinicUnreachable(f"the clinic at {self.url} cannot be reached ({e})") from None
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as e:
            raise ClinicUnreachable(f"the connection to the clinic at {self.url} failed ({type(e).__name__}: "
                                    f"{e})") from None
        self.bytes_sent += len(body) + sum(len(k) + len(v) for k, v in headers.items())
        self.bytes_received += len(response.content)
        if response.status_code >= 500:
            raise ClinicUnreachable(f"the clinic had an internal error ({response.status_code}); "
                                    f"everything stays queued")
        if response.status_code >= 400:
            try:
                payload = response.json()
                reason = str(payload.get("error"))
                problems = payload.get("problems") or []
            except (ValueError, AttributeError):
                reason, problems = response.text[:300], []
            detail = "".join(f"\n  {p}" for p in problems[:50])
            raise SyncError(f"the clinic refused: {reason}{detail}")
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise SyncError(f"the clinic answered something that is not JSON ({response.status_code})") from None


# ---------------------------------------------------------------------------- the sync

class Syncer:
    """One device's sync with its clinic: `pair(url, code)`, `sync()`."""

    def __init__(self, *, data_dir: str | os.PathLike[str], store: Any, device_key: Any, device_key_id: str,
                 trust: Any, db_path: str | os.PathLike[str] | None = None, config_url: str | None = None,
                 config_ca_cert: str | os.PathLike[str] | None = None,
                 session_running: Callable[[], bool] | None = None,
                 records_per_request: int = syncproto.MAX_RECORDS_PER_UPLOAD) -> None:
        self.data_dir = Path(data_dir)
        #: Records in one upload request; the app sends fewer (APP_RECORDS_PER_REQUEST) so
        #: that making a request's body never holds the interpreter for long.
        self.records_per_request = max(1, min(records_per_request, syncproto.MAX_RECORDS_PER_UPLOAD))
        self.store = store
        self.key, self.key_id = device_key, device_key_id
        self.trust = trust
        self.db_path = Path(db_path) if db_path else Path(store.path)
        self.config_url, self.config_ca_cert = config_url, config_ca_cert
        self.session_running = session_running or (lambda: False)
        self.outbox = Outbox(self.data_dir / SYNC_DB)
        self.last_client: ClinicClient | None = None
        self._reader: Any = None

    def close(self) -> None:
        self.outbox.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def log_reader(self) -> Any:
        """The log as the sync reads it: a read-only connection of its own when the store
        offers one (its reads never wait for, nor hold up, the engine's writes)."""
        if self._reader is None:
            self._reader = self.store.reader() if hasattr(self.store, "reader") else self.store
        return self._reader

    # -- where the clinic is
    @property
    def url(self) -> str | None:
        return self.outbox.get("clinic_url") or self.config_url

    @property
    def ca_cert(self) -> str | None:
        saved = self.outbox.get("clinic_ca_cert")
        if saved:
            return saved
        return str(self.config_ca_cert) if self.config_ca_cert else None

    def status(self) -> dict[str, Any]:
        """For the screens: clinic, patient, when the log last reached the clinic, the last problem."""
        o = self.outbox
        return {"url": self.url, "patient_id": o.get("patient_id"), "paired": bool(o.get("paired")),
                "device_key_id": self.key_id, "last_ok_at": o.get("last_ok_at"),
                "last_attempt_at": o.get("last_attempt_at"), "last_error": o.get("last_error"),
                "acknowledged": o.get("acknowledged", -1)}

    def _client(self, url: str | None = None, ca_cert: str | None = None) -> ClinicClient:
        url = url or self.url
        if not url:
            raise NotConfigured("no clinic: pair the device first (`homeapp clinic pair --url URL --code CODE`)")
        client = ClinicClient(url, device_key=self.key, device_key_id=self.key_id,
                              ca_cert=ca_cert if ca_cert is not None else self.ca_cert)
        self.last_client = client
        return client

    # -- pairing
    def pair(self, url: str, code: str, *, ca_cert: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Send this device's public key with the one-time code; on success the clinic's
        address (and its CA certificate, copied beside the log) are kept for every sync."""
        from . import __version__
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise SyncError(f"{url!r} is not a clinic address like https://clinic.example.org:8443")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise SyncError(f"{url!r}: the device talks to a clinic over https only (http only on this machine)")
        digits = syncproto.normalise_pairing_code(code)
        if len(digits) != 8:
            raise SyncError(f"the pairing code has 8 digits, like 1234-5678 (got {len(digits)})")
        pem = None
        if ca_cert is not None:
            try:
                pem = Path(ca_cert).read_bytes()
            except OSError as e:
                raise SyncError(f"{ca_cert}: cannot read the CA certificate ({e.strerror})") from None
        body = json.dumps({"code": digits, "public_key": syncproto.public_key_b64(self.key.public_key()),
                           "software_version": __version__}).encode()
        client = self._client(url, str(ca_cert) if ca_cert is not None else None)
        try:
            answer = client.request("POST", "/api/device/pair", body)
        finally:
            client.close()
        saved_ca = None
        if pem is not None:   # kept beside the log: the stick it came on will be gone
            saved_ca = self.data_dir / CA_FILE
            prescriptions.write_atomically(saved_ca, pem)
        if answer.get("device_key_id") != self.key_id:
            raise SyncError(f"the clinic recorded key {answer.get('device_key_id')}, not this device's {self.key_id}")
        self.outbox.set(clinic_url=url.rstrip("/"), clinic_ca_cert=str(saved_ca) if saved_ca else None,
                        patient_id=answer.get("patient_id"), paired=True)
        self.store.add_device_event(kind="clinic_paired", detail={"url": url.rstrip("/"),
                                                                  "patient_id": answer.get("patient_id"),
                                                                  "device_key_id": self.key_id})
        return answer

    # -- sync
    def sync(self) -> SyncResult:
        """Upload everything not yet acknowledged, then fetch and install a newer
        prescription. Raises ClinicUnreachable (nothing lost, all queued) or SyncError."""
        self.outbox.set(last_attempt_at=_now())
        try:
            result = self._sync()
        except SyncError as e:
            self.outbox.set(last_error=e.reason)
            raise
        self.outbox.set(last_ok_at=_now(), last_error=None)
        return result

    def _sync(self) -> SyncResult:
        client = self._client()
        result = SyncResult()
        try:
            offer = self._upload(client, result)
            if self._prescription(client, result, offer):
                self._upload(client, result)      # the install or refusal, logged, reaches the clinic now
        finally:
            client.close()
            result.bytes_sent, result.bytes_received = client.bytes_sent, client.bytes_received
        result.acknowledged = self.outbox.get("acknowledged", -1)
        if result.prescription_refused:
            error = SyncError(f"the prescription from the clinic was refused: {result.prescription_refused}")
            error.result = result
            raise error
        return result

    def _state(self, client: ClinicClient) -> dict[str, Any]:
        """Ask the clinic how far it holds our chain; it must be a prefix of ours. An
        outbox that never had an acknowledgement (its sync state was lost, the device
        paired again) takes the clinic's chain instead, verified, and continues it."""
        state = client.request("GET", "/api/device/state")
        acknowledged = int(state.get("acknowledged", -1))
        local_seq, _ = self.outbox.head()
        if acknowledged > local_seq or (acknowledged >= 0 and self.outbox.hash_at(acknowledged) != state.get("head")):
            if self.outbox.get("acknowledged", -1) not in (None, -1):
                raise SyncError(f"the clinic holds a different log for this device key ({acknowledged + 1} records "
                                f"that are not this device's): ask the clinic to check the pairing")
            self._resume(client, acknowledged, state.get("head"))
        self.outbox.set(acknowledged=acknowledged, patient_id=state.get("patient_id"), paired=True)
        return state

    def _resume(self, client: ClinicClient, acknowledged: int, head: Any) -> None:
        """Rebuild the outbox from the chain the clinic holds of this device (its sync
        state was lost): every record's hash and link checked, the first naming this
        device's key, the head signed by this device's own key; then the log's records
        the chain does not hold are appended after it. The outbox is derived from the log
        alone, so replacing it loses nothing."""
        lines: list[str] = []
        end = None
        while len(lines) <= acknowledged:
            page = client.request("GET", f"/api/device/chain?after={len(lines) - 1}"
                                         f"&limit={self.records_per_request}")
            records = page.get("records") if isinstance(page, dict) else None
            if not isinstance(records, list) or not records or not all(isinstance(r, str) for r in records):
                raise SyncError("the clinic did not send the records it holds of this device's log")
            lines.extend(records)
            end = page.get("end")
        lines = lines[:acknowledged + 1]
        problem = _verify_own_chain(lines, end, head, public_key=self.key.public_key(), key_id=self.key_id)
        if problem:
            raise SyncError(f"the log the clinic holds for this device cannot be taken back: {problem}")
        self.outbox.adopt(lines)
        self.outbox.refresh(self.log_reader, device_key_id=self.key_id)
        log.info("clinic sync: resumed after record %d the clinic holds", acknowledged)

    def _upload(self, client: ClinicClient, result: SyncResult) -> dict[str, Any] | None:
        """Send what the clinic has not acknowledged; returns the clinic's offer of a
        prescription ({"id", "sha256"} or None), which every answer carries. A sync with
        records to send and a known acknowledgement is one request."""
        self.outbox.refresh(self.log_reader, device_key_id=self.key_id)
        acknowledged = self.outbox.get("acknowledged")
        local_seq, _ = self.outbox.head()
        offer = None
        if acknowledged is None or acknowledged >= local_seq:
            state = self._state(client)          # never asked, or nothing to send: ask
            acknowledged, offer = int(state.get("acknowledged", -1)), state.get("prescription")
        asked_again = False
        while True:
            batch = self._batch(acknowledged)
            if not batch:
                return offer
            last_seq, last_hash = batch[-1][0], batch[-1][1]
            end = {"kind": "end", "count": last_seq, "head": last_hash, "device_key_id": self.key_id,
                   "signature": _b64(self.key.sign(syncproto.end_payload(self.key_id, last_seq, last_hash)))}
            body = ("\n".join(line for _, _, line in batch) + "\n" + json.dumps(end) + "\n").encode("utf-8")
            try:
                answer = client.request("POST", "/api/device/log", body, content_type=syncproto.LOG_CONTENT_TYPE)
            except ClinicUnreachable:
                raise
            except SyncError:
                if asked_again:
                    raise
                # the clinic may hold less than it once acknowledged (restored from a backup):
                # ask where it stands, and send from there, once
                asked_again = True
                state = self._state(client)
                acknowledged, offer = int(state.get("acknowledged", -1)), state.get("prescription")
                continue
            if answer.get("acknowledged") != last_seq or answer.get("head") != last_hash:
                raise SyncError(f"the clinic acknowledged record {answer.get('acknowledged')}, not {last_seq}")
            result.uploaded += len([seq for seq, _, _ in batch if seq > acknowledged])
            acknowledged = last_seq
            offer = answer.get("prescription")
            self.outbox.set(acknowledged=acknowledged)

    def _batch(self, after: int) -> list[tuple[int, str, str]]:
        rows = self.outbox.lines_after(after, limit=self.records_per_request)
        size, out = 1024, []
        for row in rows:
            size += len(row[2].encode("utf-8")) + 1
            if out and size > syncproto.MAX_UPLOAD_BYTES:
                break
            out.append(row)
        return out

    def _prescription(self, client: ClinicClient, result: SyncResult, offer: dict[str, Any] | None) -> bool:
        """Fetch and install the offered prescription when it is new to this device; True
        when the log got an install or a refusal to send."""
        if not isinstance(offer, dict) or not isinstance(offer.get("sha256"), str):
            return False
        if offer["sha256"] == self.outbox.get("refused_rx_sha"):
            return False                        # refused once, logged once, said once
        if offer["sha256"] == prescriptions.active_sha256(self.data_dir):
            if self.outbox.get("reported_rx_sha") != offer["sha256"]:
                _report(client, offer, "installed", None)
                self.outbox.set(reported_rx_sha=offer["sha256"])
            return False
        if self.session_running():
            result.prescription_waiting = "a session is running"
            return False
        fetched = client.request("GET", "/api/device/prescription")
        if not fetched or not isinstance(fetched.get("prescription"), dict):
            return False
        rx = fetched["prescription"]
        sha = prescriptions.sha256_of(rx)      # our own, not the server's word
        if sha == prescriptions.active_sha256(self.data_dir):
            return False
        if sha == self.outbox.get("refused_rx_sha"):
            return False
        try:
            done = prescriptions.install(rx, self.data_dir, trust=self.trust, store=self.store, origin="clinic",
                                         allow_unsigned=False,
                                         session_lock=prescriptions.session_lock_path(self.db_path))
        except prescriptions.SessionRunning as e:
            result.prescription_waiting = str(e)
            _report(client, fetched, "deferred", str(e))
            return False
        if done.ok:
            result.prescription = rx.get("id")
            self.outbox.set(reported_rx_sha=sha)
            _report(client, fetched, "installed", None)
        else:
            reason = "; ".join(done.reasons)
            result.prescription_refused = reason
            self.outbox.set(refused_rx_sha=sha, reported_rx_sha=None)
            # what the clinic offered and what it sent may differ (a compromised server): both refused
            if fetched.get("sha256") != sha:
                self.outbox.set(refused_rx_sha=fetched.get("sha256"))
            _report(client, fetched, "refused", reason)
        return True


def _report(client: ClinicClient, offer: Mapping[str, Any], status: str, reason: str | None) -> None:
    client.request("POST", "/api/device/prescription/status",
                   json.dumps({"sha256": offer.get("sha256"), "status": status, "reason": reason}).encode())


def _b64(raw: bytes) -> str:
    import base64
    return base64.b64encode(raw).decode("ascii")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------- in the app

class BackgroundSync:
    """The app's sync: on its own daemon thread, after each session (`poke()`) and every
    `interval_s`, never on the engine's or the UI's thread. A sync that fails is retried
    at the next turn; `on_change(status)` is called (from this thread) after each try.
    In the app `syncer` is a `homeapp.sync_process.SyncProcess`: this thread only waits
    for the child's answer, and the sync's work is done outside the app's process."""

    def __init__(self, syncer: Syncer, *, interval_s: float,
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.syncer, self.interval_s = syncer, interval_s
        self.on_change = on_change
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clinic-sync", daemon=True)
        self.runs = 0
        self.last_result: SyncResult | None = None
        self.last_error: str | None = None

    def start(self) -> "BackgroundSync":
        self._thread.start()
        return self

    def poke(self) -> None:
        """Sync soon (a session just ended)."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        # a little after start, then on every poke or interval
        self._wake.wait(min(10.0, self.interval_s))
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if self.syncer.url:
                    self.last_result = self.syncer.sync()
                    self.last_error = None
            except SyncError as e:
                self.last_error = e.reason
                log.info("clinic sync: %s", e.reason)
            except Exception:  # never let the thread die: the next turn tries again
                log.exception("clinic sync failed")
                self.last_error = "internal error (see the log)"
            self.runs += 1
            if self.on_change is not None:
                try:
                    self.on_change(self.syncer.status())
                except Exception:
                    log.exception("clinic sync status callback")
            self._wake.wait(self.interval_s)
