"""The device's prescription, outside any UI: read and validate one, verify its signature
against the device's trust store, install it as the active prescription, load the active
one, and log every install and refusal in the session log.

A prescription from a USB stick (the touchscreen's clinician mode) and one fetched from
the clinic (homeapp/sync.py) take exactly this path, so the rules cannot drift apart:

- it must validate (schedules/validate.py) on today's date;
- its signature must verify with a key in the device's trust store (schedules/signing.py);
  only a simulated board may take an unsigned or untrusted one from USB (shown as such),
  and a fetched one never;
- it is never installed while a session runs: the log's session lock (`<db>.lock`, which
  the store holds from a session's start to its end) is taken for the install, and a
  running session makes the install wait (`SessionRunning`);
- it replaces `prescription.json` in the data directory atomically (written, fsynced,
  renamed), so a power cut leaves the old prescription or the new one, never half of one;
- the log gets a device event `prescription_installed` or `prescription_refused` naming
  the prescription, where it came from and why it was refused.
"""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

log = logging.getLogger(__name__)

#: The active prescription, in the data directory.
ACTIVE_FILE = "prescription.json"
#: Where a newly installed prescription is noted until the patient has seen it on Home.
ARRIVAL_FILE = "prescription-arrived.json"
#: The origins a log entry names.
ORIGINS = ("usb", "clinic", "demo")


class SessionRunning(Exception):
    """A session is running on this device: a prescription is not changed under it."""


@dataclass
class Checked:
    """What a prescription file or object is: `rx` (None when invalid), every validation
    problem, and the signature problem (None when a trusted key's signature verifies)."""

    rx: Any
    problems: list[str] = field(default_factory=list)
    signature_problem: str | None = None
    source: dict[str, Any] | None = None

    @property
    def trusted(self) -> bool:
        return self.rx is not None and self.signature_problem is None


@dataclass
class Installed:
    """The outcome of `install`: `ok`, the prescription, the reasons when refused, and
    `warnings` (a signature problem a simulated board accepted)."""

    ok: bool
    rx: Any = None
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sha256: str | None = None


def sha256_of(source: Mapping[str, Any]) -> str:
    """The version fingerprint of a prescription: SHA-256 of its canonical JSON, signature
    included (the same as the store's and the clinic's)."""
    canonical = json.dumps(_plain(source), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def signature_problem(rx: Any, trust: Any) -> str | None:
    """None when the prescription's signature verifies with a key in `trust`; else the
    reason a person reads ("unsigned", "signed by an unknown key ..."). Fails closed."""
    from schedules.signing import SignatureError, verify_prescription
    if trust is None:
        return "no trust store"
    try:
        verify_prescription(dict(rx.source), trust)
    except SignatureError as e:
        return e.reason
    except Exception as e:  # an unreadable trust store is a refusal, not a crash
        return f"the trust store cannot be read ({e})"
    return None


def check(source: str | os.PathLike[str] | Mapping[str, Any], *, trust: Any,
          today: dt.date | None = None) -> Checked:
    """Validate a prescription (a file, or an object already parsed) and verify its
    signature; never raises for bad input."""
    from schedules.validate import PrescriptionError, parse_prescription, read_json_object
    try:
        data = dict(source) if isinstance(source, Mapping) else read_json_object(source)
        rx = parse_prescription(data, today=today)
    except PrescriptionError as e:
        return Checked(None, list(e.problems))
    except OSError as e:
        return Checked(None, [f"{source}: {e.strerror or e}"])
    return Checked(rx, [], signature_problem(rx, trust), data)


def _log(store: Any, kind: str, detail: Mapping[str, Any]) -> None:
    if store is None:
        return
    try:
        store.add_device_event(kind=kind, detail=dict(detail))
    except Exception:  # a full disk: the install's outcome still stands and is shown
        log.exception("could not log %s", kind)


def _rx_id(checked: Checked, source: Any) -> str | None:
    data = checked.source
    if data is None and isinstance(source, Mapping):
        data = source
    value = data.get("id") if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else None


def install(source: str | os.PathLike[str] | Mapping[str, Any], data_dir: str | os.PathLike[str], *,
            trust: Any, store: Any = None, origin: str, allow_unsigned: bool = False,
            today: dt.date | None = None, session_lock: str | os.PathLike[str] | None = None) -> Installed:
    """Check `source` and make it the active prescription, or refuse it with the reasons.
    Both outcomes go into the log (`store`). `allow_unsigned` lets a simulated board take
    a prescription whose signature does not verify (a warning, logged as such).
    `session_lock` (the log's `<db>.lock`): raises SessionRunning, changing nothing,
    while a session holds it."""
    if origin not in ORIGINS:
        raise ValueError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
    checked = check(source, trust=trust, today=today)
    rx_id = _rx_id(checked, source)
    if checked.rx is None:
        _log(store, "prescription_refused", {"origin": origin, "id": rx_id, "reasons": checked.problems[:20]})
        return Installed(False, reasons=checked.problems)
    sig = checked.signature_problem
    if sig is not None and not allow_unsigned:
        _log(store, "prescription_refused", {"origin": origin, "id": rx_id, "reasons": [f"signature: {sig}"]})
        return Installed(False, rx=checked.rx, reasons=[sig])
    sha = sha256_of(checked.source)
    with _no_session(session_lock):
        write_atomically(Path(data_dir) / ACTIVE_FILE, _file_bytes(source, checked.source))
        note = {"id": rx_id, "sha256": sha, "origin": origin,
                "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        try:
            write_atomically(Path(data_dir) / ARRIVAL_FILE, json.dumps(note).encode())
        except OSError:
            pass  # only the Home notice is lost
        signed_by = None if sig else (checked.source.get("signature") or {}).get("key_id")
        _log(store, "prescription_installed", {"origin": origin, "id": rx_id, "sha256": sha, "signed_by": signed_by,
                                               **({"signature_problem": sig} if sig else {})})
    return Installed(True, rx=checked.rx, warnings=[sig] if sig else [], sha256=sha)


def _file_bytes(source: Any, data: Mapping[str, Any]) -> bytes:
    if isinstance(source, Mapping):
        return (json.dumps(_plain(data), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return Path(source).read_bytes()    # a USB file is kept byte for byte


class _no_session:
    """Holds the log's session lock for the install; SessionRunning when a session has it."""

    def __init__(self, lock_path: str | os.PathLike[str] | None) -> None:
        self.lock_path, self.fd = lock_path, None

    def __enter__(self) -> None:
        if self.lock_path is None:
            return
        self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise SessionRunning("a session is running; the new prescription is installed after it") from None

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)   # closing drops the lock
            self.fd = None


def session_lock_path(db_path: str | os.PathLike[str]) -> Path:
    """The log's session lock file (homeapp/store.py's `<db>.lock`)."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".lock")


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF):
            raise


def active_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / ACTIVE_FILE


def load_active(data_dir: str | os.PathLike[str], *, trust: Any = None,
                today: dt.date | None = None) -> Checked | None:
    """The active prescription checked again (None when there is none): a key removed
    from the trust store since, or an expiry passed, shows in the result."""
    path = active_path(data_dir)
    if not path.exists():
        return None
    return check(path, trust=trust, today=today)


def active_sha256(data_dir: str | os.PathLike[str]) -> str | None:
    """The version fingerprint of the active prescription file (None: none, or unreadable)."""
    try:
        data = json.loads(active_path(data_dir).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return sha256_of(data) if isinstance(data, dict) else None


def arrival(data_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The note of the last prescription installed ({"id", "sha256", "origin", "at"})."""
    try:
        note = json.loads((Path(data_dir) / ARRIVAL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None
