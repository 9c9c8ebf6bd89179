"""What the clinic does, independent of how it is asked (the command line, the JSON API,
the web pages all call this): clinicians and patients, pairing, device authentication,
the log ingest, exports, prescriptions, and the audit of every read and change.

Every method opens its own database transaction and leaves nothing half done: an upload
is stored whole or not at all.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from homeapp import syncproto
from schedules.signing import KeyFileError, SignatureError, key_id, verify_prescription

from . import ingest
from .db import session_factory
from .models import (ApiToken, AuditEntry, Clinician, ClinicianKey, Device, LogRecord, PairingCode, Patient,
                     PublishedPrescription, RequestNonce)
from .passwords import hash_password, verify_password
from .timeutil import iso, utcnow

PAIRING_CODE_DIGITS = 8
PAIRING_CODE_TTL = dt.timedelta(minutes=15)
#: Wrong pairing codes (from anywhere) per minute before pairing pauses: 10^8 codes.
PAIRING_FAILURES_PER_MINUTE = 30
API_TOKEN_TTL = dt.timedelta(hours=12)
#: Wrong passwords for one username within LOGIN_WINDOW before sign-in pauses for it.
LOGIN_FAILURES = 5
LOGIN_WINDOW = dt.timedelta(minutes=15)
USERNAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-"
MAX_PRESCRIPTION_BYTES = 256 * 1024


class ClinicError(Exception):
    """A request the clinic refuses; `status` is the HTTP status, `problems` the details
    (each one line for a person)."""

    status = 400

    def __init__(self, message: str, problems: Iterable[str] = (), *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)
        if status is not None:
            self.status = status


class NotFound(ClinicError):
    status = 404


class Unauthorized(ClinicError):
    status = 401


class Refused(ClinicError):
    """Well-formed but not acceptable (a tampered upload, an untrusted prescription)."""
    status = 422


class Conflict(ClinicError):
    status = 409


class TooMany(ClinicError):
    status = 429


@dataclass(frozen=True)
class Actor:
    """Who asks: `clinician` (with id and name), `device` (with key id) or `cli`."""

    kind: str
    name: str
    clinician_id: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.kind != "cli" else "cli"


CLI = Actor("cli", "cli")


def _sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


class Clinic:
    """The clinic service over one database engine (already migrated)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.Session = session_factory(engine)
        self.is_postgres = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ audit
    def _audit(self, db: Session, actor: Actor | str, action: str, patient_ref: str | None, outcome: str = "ok",
               detail: Mapping[str, Any] | None = None, *, is_read: bool = False) -> None:
        db.add(AuditEntry(at=utcnow(), actor=str(actor), action=action, patient_ref=patient_ref, outcome=outcome,
                          detail_json=json.dumps(dict(detail or {}), ensure_ascii=False, default=str),
                          is_read=is_read))

    def audit_denied(self, actor: Actor | str, action: str, patient_ref: str | None, reason: str) -> None:
        """Record a refusal in its own transaction (the refused one is rolled back)."""
        with self.Session.begin() as db:
            self._audit(db, actor, action, patient_ref, "denied", {"reason": reason})

    def audit_entries(self, *, patient_ref: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest audit entries first (for the operator and the tests)."""
        with self.Session() as db:
            q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if patient_ref is not None:
                q = q.where(AuditEntry.patient_ref == patient_ref)
            return [{"at": iso(a.at), "actor": a.actor, "action": a.action, "patient_id": a.patient_ref,
                     "outcome": a.outcome, "detail": json.loads(a.detail_json), "read": a.is_read}
                    for a in db.scalars(q)]

    # ------------------------------------------------------------------ clinicians
    def add_clinician(self, username: str, password: str) -> int:
        """A new clinician account; ClinicError if the name is taken or unusable."""
        username = username.strip()
        if not 2 <= len(username) <= 64 or any(ch not in USERNAME_CHARS for ch in username):
            raise ClinicError(f"username {username!r}: use 2 to 64 lower-case letters, digits, '.', '_' or '-'")
        password_hash = hash_password(password)
        try:
            with self.Session.begin() as db:
                db.add(Clinician(username=username, password_hash=password_hash, created_at=utcnow()))
                self._audit(db, CLI, "clinician_add", None, detail={"username": username})
        except IntegrityError:
            raise Conflict(f"a clinician named {username!r} already exists") from None
        with self.Session() as db:
            return db.scalar(select(Clinician.id).where(Clinician.username == username))

    def authenticate(self, username: str, password: str) -> Actor:
        """The clinician for these credentials; Unauthorized (the same message for a wrong
        name and a wrong password), TooMany after repeated failures for the name."""
        since = utcnow() - LOGIN_WINDOW
        with self.Session() as db:
            failures = db.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "login", AuditEntry.outcome == "denied", AuditEntry.at >= since,
                AuditEntry.actor == f"login:{username[:64]}"))
            if failures >= LOGIN_FAILURES:
                raise TooMany(f"too many wrong passwords for {username!r}; try again in "
                              f"{int(LOGIN_WINDOW.total_seconds() // 60)} minutes")
            clinician = db.scalar(select(Clinician).where(Clinician.username == username))
        if not verify_password(clinician.password_hash if clinician else None, password):
            self.audit_denied(f"login:{username[:64]}", "login", None, "wrong username or password")
            raise Unauthorized("wrong username or password")
        with self.Session.begin() as db:
            self._audit(db, f"login:{username}", "login", None)
        return Actor("clinician", clinician.username, clinician.id)

    def clinician(self, username: str) -> Actor:
        """The clinician of this name (NotFound otherwise), acting from the command line."""
        with self.Session() as db:
            c = db.scalar(select(Clinician).where(Clinician.username == username))
        if c is None:
            raise NotFound(f"no clinician named {username!r} (add one with `homeapp-clinic clinician add`)")
        return Actor("clinician", c.username, c.id)

    def new_api_token(self, actor: Actor) -> tuple[str, dt.datetime]:
        """A bearer token for the JSON API (its hash is stored), and when it expires."""
        token = secrets.token_urlsafe(32)
        expires = utcnow() + API_TOKEN_TTL
        with self.Session.begin() as db:
            db.add(ApiToken(token_sha256=_sha256(token), clinician_id=actor.clinician_id, created_at=utcnow(),
                            expires_at=expires))
        return token, expires

    def actor_for_token(self, token: str) -> Actor:
        with self.Session() as db:
            row = db.execute(select(ApiToken, Clinician).join(Clinician, Clinician.id == ApiToken.clinician_id)
                             .where(ApiToken.token_sha256 == _sha256(token))).first()
        if row is None or row[0].expires_at <= utcnow():
            raise Unauthorized("not signed in, or the sign-in expired: POST /api/login first")
        return Actor("clinician", row[1].username, row[1].id)

    def add_clinician_key(self, username: str, public_key_pem: bytes, *, by: Actor | str = CLI) -> str:
        """Register the public half of a clinician's signing key; returns its key id.
        `by`: who registers it, for the audit (the command line, or the clinician's page)."""
        actor = self.clinician(username)
        try:
            public_key = serialization.load_pem_public_key(public_key_pem)
        except (ValueError, TypeError):
            raise ClinicError("not a PEM public key (give the .pub file that `homeapp rx keygen` wrote)") from None
        if not isinstance(public_key, Ed25519PublicKey):
            raise ClinicError("not an Ed25519 public key (give the .pub file that `homeapp rx keygen` wrote)")
        kid = key_id(public_key)
        pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        with self.Session.begin() as db:
            existing = db.scalar(select(ClinicianKey).where(ClinicianKey.key_id == kid))
            if existing is not None:
                if existing.clinician_id != actor.clinician_id:
                    raise Conflict(f"key {kid} is already registered to another clinician")
                return kid
            db.add(ClinicianKey(clinician_id=actor.clinician_id, key_id=kid, public_key_pem=pem.decode("ascii"),
                                created_at=utcnow()))
            self._audit(db, by, "clinician_key_add", None, detail={"username": username, "key_id": kid})
        return kid

    # ------------------------------------------------------------------ patients
    def add_patient(self, patient_id: str, clinician_username: str) -> None:
        """A patient of that clinician, known by the `patient_id` of their prescriptions."""
        patient_id = patient_id.strip()
        if not 1 <= len(patient_id) <= 64 or not patient_id.isprintable():
            raise ClinicError(f"patient id {patient_id!r}: give 1 to 64 printable characters")
        # one segment of the web pages' and the API's addresses (/patients/ID/...): a slash
        # (quoted or not, the server reads it as one) or a dot segment would change the address
        if any(c in patient_id for c in "/\\") or patient_id in (".", ".."):
            raise ClinicError(f"patient id {patient_id!r}: '/' and '\\' are not allowed, nor '.' or '..' alone "
                              f"(they would change the addresses of the patient's pages); other printable "
                              f"characters are (e.g. P-2024-0042)")
        actor = self.clinician(clinician_username)
        try:
            with self.Session.begin() as db:
                db.add(Patient(patient_id=patient_id, clinician_id=actor.clinician_id, created_at=utcnow()))
                self._audit(db, CLI, "patient_add", patient_id, detail={"clinician": clinician_username})
        except IntegrityError:
            raise Conflict(f"patient {patient_id!r} already exists") from None

    def _patient(self, db: Session, actor: Actor, patient_id: str, action: str) -> Patient:
        """The patient if `actor` may see them; NotFound (and an audit entry) otherwise.
        Another clinician's patient reads exactly as a patient that does not exist."""
        patient = db.scalar(select(Patient).where(Patient.patient_id == patient_id))
        if patient is None or (actor.kind == "clinician" and patient.clinician_id != actor.clinician_id):
            error = NotFound(f"no patient {patient_id!r} among your patients")
            # audited by _tx once this transaction is over (SQLite has one writer at a time)
            error.audit = (actor, action, patient_id[:64],
                           "not this clinician's patient" if patient is not None else "no such patient")
            raise error
        return patient

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        """A write transaction; a patient refused inside it is audited after it ends."""
        try:
            with self.Session.begin() as db:
                yield db
        except NotFound as e:
            if getattr(e, "audit", None):
                self.audit_denied(*e.audit)
            raise

    def patients(self, actor: Actor) -> list[dict[str, Any]]:
        """The actor's patients (every patient for the command line), with their devices' sync."""
        with self.Session.begin() as db:
            q = select(Patient).order_by(Patient.patient_id)
            if actor.kind == "clinician":
                q = q.where(Patient.clinician_id == actor.clinician_id)
            patients = list(db.scalars(q))
            out = [self._patient_summary(db, p) for p in patients]
            self._audit(db, actor, "patients_list", None, detail={"count": len(out)}, is_read=True)
        return out

    def _patient_summary(self, db: Session, p: Patient) -> dict[str, Any]:
        devices = list(db.scalars(select(Device).where(Device.patient_id == p.id).order_by(Device.paired_at)))
        return {"patient_id": p.patient_id,
                "devices": [{"key_id": d.key_id, "paired_at": iso(d.paired_at), "records": d.last_seq + 1,
                             "last_upload_at": iso(d.last_upload_at), "last_seen_at": iso(d.last_seen_at),
                             "software_version": d.software_version} for d in devices]}

    def patient(self, actor: Actor, patient_id: str) -> dict[str, Any]:
        """One patient: devices, published prescriptions and what the device did with them."""
        with self._tx() as db:
            p = self._patient(db, actor, patient_id, "patient_read")
            out = self._patient_summary(db, p)
            out["prescriptions"] = self._prescriptions(db, p)
            self._audit(db, actor, "patient_read", patient_id, is_read=True)
        return out

    # ------------------------------------------------------------------ pairing
    def new_pairing_code(self, actor: Actor, patient_id: str) -> tuple[str, dt.datetime]:
        """A one-time code (8 digits, shown as 1234-5678) for the patient's device, valid
        for 15 minutes; only its hash is stored."""
        code = f"{secrets.randbelow(10 ** PAIRING_CODE_DIGITS):0{PAIRING_CODE_DIGITS}d}"
        expires = utcnow() + PAIRING_CODE_TTL
        with self._tx() as db:
            p = self._patient(db, actor, patient_id, "pairing_code")
            db.add(PairingCode(code_sha256=_sha256(code), patient_id=p.id, created_at=utcnow(), expires_at=expires))
            self._audit(db, actor, "pairing_code", patient_id, detail={"expires_at": iso(expires)})
        return f"{code[:4]}-{code[4:]}", expires

    def pair_device(self, code: str, public_key: Ed25519PublicKey, *, software_version: str | None = None,
                    req: "DeviceRequest | None" = None) -> dict[str, Any]:
        """Bind a device key to the patient the code was made for. The code must exist,
        be unexpired and unused; it is used up by this call."""
        digits = syncproto.normalise_pairing_code(code)
        kid = key_id(public_key)
        actor = Actor("device", kid)
        now = utcnow()
        with self.Session() as db:
            recent = db.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.action == "pair", AuditEntry.outcome == "denied",
                AuditEntry.at >= now - dt.timedelta(minutes=1)))
        if recent >= PAIRING_FAILURES_PER_MINUTE:
            raise TooMany("too many wrong pairing codes in the last minute; wait a minute and try again")
        with self.Session.begin() as db:
            row = db.scalar(select(PairingCode).where(PairingCode.code_sha256 == _sha256(digits)).with_for_update())
            problem = None
            if len(digits) != PAIRING_CODE_DIGITS or row is None:
                problem = ("unknown pairing code", f"the pairing code is not one the clinic issued "
                                                   f"(it has {PAIRING_CODE_DIGITS} digits, like 1234-5678)")
            elif row.used_at is not None:
                problem = ("used pairing code", "the pairing code was already used; ask the clinic for a new one")
            elif row.expires_at <= now:
                problem = ("expired pairing code", "the pairing code expired (codes last 15 minutes); "
                                                   "ask the clinic for a new one")
            if problem is None:
                patient = db.get(Patient, row.patient_id)
                device = db.scalar(select(Device).where(Device.key_id == kid))
                if device is not None and device.patient_id != patient.id:
                    problem = ("device paired elsewhere", f"this device (key {kid}) is already paired to another "
                                                          f"patient; the clinic must unpair it first")
        if problem is not None:
            self.audit_denied(actor, "pair", None, problem[0])
            raise Refused(problem[1])
        with self._device_tx(req) as db:
            row = db.scalar(select(PairingCode).where(PairingCode.code_sha256 == _sha256(digits)).with_for_update())
            if row.used_at is not None:  # another request used it in between
                raise Refused("the pairing code was already used; ask the clinic for a new one")
            patient = db.get(Patient, row.patient_id)
            device = db.scalar(select(Device).where(Device.key_id == kid))
            if device is None:
                device = Device(key_id=kid, public_key_b64=syncproto.public_key_b64(public_key),
                                patient_id=patient.id, paired_at=now, last_seq=-1, last_hash=ingest.GENESIS,
                                software_version=(software_version or None) and str(software_version)[:64])
                db.add(device)
                db.flush()
            row.used_at = now
            row.used_by_device_id = device.id
            self._audit(db, actor, "pair", patient.patient_id, detail={"device_key_id": kid})
            return {"patient_id": patient.patient_id, "device_key_id": kid}

    # ------------------------------------------------------------------ device requests
    def authenticate_device(self, *, method: str, path: str, headers: Mapping[str, str], body: bytes,
                            public_key: Ed25519PublicKey | None = None) -> "DeviceRequest":
        """Check a signed device request: its key is paired (or, for pairing, is the key
        given), the time is within the window, the signature covers this request. Writes
        nothing: the nonce is claimed in the transaction of the request's work
        (`_device_tx`), so one commit serves both. Unauthorized naming why."""
        got = {h: headers.get(h) for h in syncproto.REQUEST_HEADERS}
        missing = [h for h, v in got.items() if not v]
        if missing:
            raise Unauthorized(f"not a signed device request (missing {', '.join(missing)})")
        kid, nonce = got[syncproto.HEADER_KEY], got[syncproto.HEADER_NONCE]
        try:
            timestamp = int(got[syncproto.HEADER_TIME])
        except ValueError:
            raise Unauthorized(f"{syncproto.HEADER_TIME} must be whole seconds since 1970") from None
        if len(nonce) > 64 or len(nonce) < 16:
            raise Unauthorized(f"{syncproto.HEADER_NONCE} must have 16 to 64 characters")
        if len(kid) > 40:
            raise Unauthorized(f"{syncproto.HEADER_KEY} is not a key id")
        now = utcnow()
        skew = timestamp - now.timestamp()
        if abs(skew) > syncproto.MAX_CLOCK_SKEW_S:
            raise Unauthorized(f"the request's time is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the "
                               f"clinic's clock (at most {syncproto.MAX_CLOCK_SKEW_S} s allowed): set the "
                               f"device's clock, or this is a replayed request")
        device = None
        if public_key is None:
            with self.engine.connect() as conn:     # a plain read: no ORM session for it
                row = conn.execute(select(Device.id, Device.key_id, Device.public_key_b64, Device.patient_id)
                                   .where(Device.key_id == kid)).first()
            device = None if row is None else DeviceRef(id=row[0], key_id=row[1], public_key_b64=row[2],
                                                        patient_id=row[3])
            if device is None:
                self.audit_denied(Actor("device", kid), "device_request", None, "unpaired device")
                raise Unauthorized(f"device key {kid} is not paired to any patient: pair it first "
                                   f"(`homeapp clinic pair`)", status=403)
            public_key = syncproto.public_key_from_b64(device.public_key_b64)
        elif key_id(public_key) != kid:
            raise Unauthorized(f"{syncproto.HEADER_KEY} {kid} is not the key being paired ({key_id(public_key)})")
        if not syncproto.verify_request_signature(public_key, got[syncproto.HEADER_SIGNATURE], method, path,
                                                  timestamp, nonce, body):
            self.audit_denied(Actor("device", kid), "device_request", None, "bad request signature")
            raise Unauthorized(f"the request's signature does not verify with device key {kid}")
        return DeviceRequest(device=device, key_id=kid, nonce=nonce, at=now, public_key=public_key)

    @contextmanager
    def _device_tx(self, req: "DeviceRequest | None") -> Iterator[Session]:
        """The transaction of a device request's work, claiming its nonce first: a nonce
        seen before refuses the request (a replay) and nothing of it is kept."""
        replay = False
        try:
            with self.Session.begin() as db:
                if req is not None:
                    try:
                        db.execute(insert(RequestNonce).values(key_id=req.key_id, nonce=req.nonce, seen_at=req.at))
                    except IntegrityError:
                        replay = True
                        raise
                    if random.random() < 0.01:  # now and then, forget nonces too old to replay
                        cutoff = req.at - dt.timedelta(seconds=2 * syncproto.MAX_CLOCK_SKEW_S)
                        db.execute(delete(RequestNonce).where(RequestNonce.seen_at < cutoff))
                yield db
        except IntegrityError:
            if not replay:
                raise
            self.audit_denied(Actor("device", req.key_id), "device_request", None, "replayed request")
            raise Unauthorized("replayed request: this nonce was already used") from None

    def device_state(self, req: "DeviceRequest") -> dict[str, Any]:
        """How far the clinic holds this device's log chain."""
        with self._device_tx(req) as db:
            d = db.get(Device, req.device.id)
            d.last_seen_at = req.at
            patient = db.get(Patient, d.patient_id)
            return {"patient_id": patient.patient_id, "device_key_id": d.key_id,
                    "acknowledged": d.last_seq, "head": d.last_hash, "prescription": self._offer(db, d.patient_id)}

    def _offer(self, db: Session, patient_pk: int) -> dict[str, str] | None:
        """The newest published prescription's id and fingerprint, so a device learns of it
        in the answer it gets anyway and fetches the whole file only when it is new to it."""
        row = db.execute(select(PublishedPrescription.rx_id, PublishedPrescription.sha256)
                         .where(PublishedPrescription.patient_id == patient_pk)
                         .order_by(PublishedPrescription.id.desc()).limit(1)).first()
        return None if row is None else {"id": row[0], "sha256": row[1]}

    def ingest(self, req: "DeviceRequest", body: bytes) -> dict[str, Any]:
        """Store an upload of chained records whole, or refuse it whole naming every
        problem (Refused). Records the clinic already holds must be identical (a replay
        changes nothing); new ones must continue the chain from the clinic's head and be
        covered by an end line signed with the paired key."""
        upload = ingest.parse_upload(body)          # ClinicError for what is not an upload at all
        device, public_key = req.device, req.public_key
        actor = Actor("device", device.key_id)
        with self._device_tx(req) as db:
            q = (select(Device, Patient.patient_id).join(Patient, Patient.id == Device.patient_id)
                 .where(Device.id == device.id))
            d, patient_ref = db.execute(q.with_for_update(of=Device) if self.is_postgres else q).one()
            held_seqs = [r.seq for r in upload.records if r.seq is not None and 0 <= r.seq <= d.last_seq]
            held = {}
            if held_seqs:
                held = dict(db.execute(select(LogRecord.seq, LogRecord.hash).where(
                    LogRecord.device_id == d.id, LogRecord.seq.in_(held_seqs))).all())
            problems = ingest.check_upload(upload, device_key_id=d.key_id, public_key=public_key,
                                           last_seq=d.last_seq, last_hash=d.last_hash, held=held)
            if problems:
                raise Refused(f"upload refused: {len(problems)} problem{'s' * (len(problems) != 1)}", problems)
            new = [r for r in upload.records if r.seq > d.last_seq]
            now = req.at
            d.last_seen_at = now
            if new:
                rows = [(d.id, r.seq, r.kind, r.hash, r.session_id, r.line, now) for r in new]
                self._insert_records(db, rows)
                d.last_seq, d.last_hash = new[-1].seq, new[-1].hash
                d.end_json = json.dumps(upload.end, ensure_ascii=False)
                d.last_upload_at = now
            self._audit(db, actor, "upload", patient_ref, detail={"stored": len(new), "acknowledged": d.last_seq})
            return {"acknowledged": d.last_seq, "head": d.last_hash, "stored": len(new),
                    "prescription": self._offer(db, d.patient_id)}

    def _insert_records(self, db: Session, rows: list[tuple]) -> None:
        """Many log records at once: PostgreSQL's COPY (one stream, no statement per row),
        executemany elsewhere."""
        columns = ("device_id", "seq", "kind", "hash", "session_id", "line", "received_at")
        if self.is_postgres:
            raw = db.connection().connection.driver_connection
            with raw.cursor().copy(f"COPY log_records ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        db.execute(insert(LogRecord), [dict(zip(columns, row)) for row in rows])

    def refuse_upload_audited(self, device: Device, error: ClinicError) -> None:
        """The audit entry of a refused upload, naming its problems."""
        with self.Session() as db:
            patient_ref = db.scalar(select(Patient.patient_id).where(Patient.id == device.patient_id))
        with self.Session.begin() as db:
            self._audit(db, Actor("device", device.key_id), "upload", patient_ref, "refused",
                        {"reason": error.message, "problems": error.problems[:50]})

    # ------------------------------------------------------------------ export
    def _records(self, db: Session, patient: Patient) -> list[tuple[str, dict[str, Any], int]]:
        """(kind, data, order) of every record of the patient's devices, in chain order."""
        devices = list(db.scalars(select(Device.id).where(Device.patient_id == patient.id).order_by(Device.paired_at)))
        out = []
        for n, device_id in enumerate(devices):
            for kind, line, seq in db.execute(select(LogRecord.kind, LogRecord.line, LogRecord.seq).where(
                    LogRecord.device_id == device_id).order_by(LogRecord.seq)):
                out.append((kind, json.loads(line)["data"], n * 10 ** 12 + seq))
        return out

    def export(self, actor: Actor, patient_id: str, fmt: str = "json") -> str:
        """The patient's log in exactly the format of the device's `homeapp log export`."""
        if fmt not in ("json", "csv"):
            raise ClinicError(f"format {fmt!r}: use json or csv")
        with self._tx() as db:
            patient = self._patient(db, actor, patient_id, "export")
            data = ingest.export_from_records(self._records(db, patient))
            self._audit(db, actor, "export", patient_id, detail={"format": fmt, "sessions": len(data["sessions"])},
                        is_read=True)
        if fmt == "csv":
            from homeapp.store import write_export_csv
            out = io.StringIO()
            write_export_csv(data, out)
            return out.getvalue()
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    def bundle(self, actor: Actor, patient_id: str) -> str:
        """The newest device's chain as a log bundle (homeapp/bundle.py's format), signed by
        that device: what `homeapp log verify-bundle` and `homeapp report` read."""
        with self._tx() as db:
            patient = self._patient(db, actor, patient_id, "bundle")
            device = db.scalar(select(Device).where(Device.patient_id == patient.id, Device.end_json.is_not(None))
                               .order_by(Device.last_upload_at.desc()).limit(1))
            if device is None:
                raise NotFound(f"patient {patient_id!r}: no log uploaded yet")
            lines = list(db.scalars(select(LogRecord.line).where(LogRecord.device_id == device.id)
                                    .order_by(LogRecord.seq)))
            self._audit(db, actor, "bundle", patient_id, detail={"device_key_id": device.key_id}, is_read=True)
            return "\n".join(lines + [device.end_json]) + "\n"

    # ------------------------------------------------------------------ prescriptions
    def publish_prescription(self, actor: Actor, patient_id: str, raw: bytes | str) -> dict[str, Any]:
        """Queue a signed prescription for the patient's device. Refused (with every
        reason) when invalid, unsigned, not signed by a key registered to the patient's
        clinician, altered after signing, or written for another patient."""
        rx = ingest.parse_prescription_json(raw, MAX_PRESCRIPTION_BYTES)
        from schedules.validate import check_prescription
        with self._tx() as db:
            patient = self._patient(db, actor, patient_id, "rx_publish")
        # "issued is not in the future": in UTC, or in the clinic's zone (east of UTC, its
        # today begins first: a program issued after the clinic's midnight is not refused)
        from .timeutil import clinic_today
        problems = check_prescription(rx, today=max(utcnow().date(), clinic_today()))
        if rx.get("patient_id") != patient_id:
            problems.append(f"patient_id: the prescription is written for {rx.get('patient_id')!r}, "
                            f"not for {patient_id!r}")
        with self.Session() as db:
            keys = {k.key_id: k for k in db.scalars(select(ClinicianKey).where(
                ClinicianKey.clinician_id == patient.clinician_id))}
            owner = db.get(Clinician, patient.clinician_id).username
        signer = None
        try:
            signer = verify_prescription(rx, _RegisteredKeys(keys))
        except SignatureError as e:
            reason = e.reason
            if reason.startswith("signed by an unknown key"):
                reason = (f"signed by key {rx['signature'].get('key_id')}, which is not registered to "
                          f"clinician {owner} (`homeapp-clinic clinician key`)")
            problems.append(f"signature: {reason}")
        except KeyFileError as e:
            problems.append(f"signature: {e}")
        if problems:
            self.audit_denied(actor, "rx_publish", patient_id, "; ".join(problems)[:2000])
            raise Refused("prescription refused", problems)
        sha = _sha256(canonical_json_with_signature(rx))
        with self.Session.begin() as db:
            publisher = actor.clinician_id if actor.kind == "clinician" else patient.clinician_id
            row = PublishedPrescription(patient_id=patient.id, rx_id=str(rx["id"]), sha256=sha,
                                        source_json=json.dumps(rx, ensure_ascii=False), signature_key_id=signer,
                                        published_by=publisher, published_at=utcnow(), device_status="pending")
            db.add(row)
            self._audit(db, actor, "rx_publish", patient_id, detail={"rx_id": rx["id"], "sha256": sha,
                                                                    "key_id": signer})
        return {"id": rx["id"], "sha256": sha, "signed_by": signer, "status": "pending"}

    def _prescriptions(self, db: Session, patient: Patient) -> list[dict[str, Any]]:
        return [{"id": r.rx_id, "sha256": r.sha256, "signed_by": r.signature_key_id, "published_at": iso(r.published_at),
                 "device_status": r.device_status, "device_status_at": iso(r.device_status_at),
                 "device_reason": r.device_reason}
                for r in db.scalars(select(PublishedPrescription).where(PublishedPrescription.patient_id == patient.id)
                                    .order_by(PublishedPrescription.id))]

    def prescriptions(self, actor: Actor, patient_id: str) -> list[dict[str, Any]]:
        """The prescriptions published for the patient, oldest first, with the device's answer."""
        with self._tx() as db:
            patient = self._patient(db, actor, patient_id, "rx_list")
            out = self._prescriptions(db, patient)
            self._audit(db, actor, "rx_list", patient_id, is_read=True)
        return out

    def prescription_for_device(self, req: "DeviceRequest") -> dict[str, Any] | None:
        """The newest prescription published for the device's patient, or None."""
        device = req.device
        with self._device_tx(req) as db:
            row = db.scalar(select(PublishedPrescription).where(PublishedPrescription.patient_id == device.patient_id)
                            .order_by(PublishedPrescription.id.desc()).limit(1))
            if row is None:
                return None
            patient_ref = db.scalar(select(Patient.patient_id).where(Patient.id == device.patient_id))
            self._audit(db, Actor("device", device.key_id), "rx_fetch", patient_ref, detail={"rx_id": row.rx_id},
                        is_read=True)
            return {"id": row.rx_id, "sha256": row.sha256, "prescription": json.loads(row.source_json)}

    def prescription_status(self, req: "DeviceRequest", sha256: str, status: str, reason: str | None) -> None:
        """What the device did with a fetched prescription (installed / refused / deferred)."""
        if status not in ("installed", "refused", "deferred"):
            raise ClinicError(f"status {status!r}: use installed, refused or deferred")
        device = req.device
        with self._device_tx(req) as db:
            patient_ref = db.scalar(select(Patient.patient_id).where(Patient.id == device.patient_id))
            rows = list(db.scalars(select(PublishedPrescription).where(
                PublishedPrescription.patient_id == device.patient_id, PublishedPrescription.sha256 == sha256)))
            if not rows:
                raise NotFound(f"no prescription {sha256[:12]}… was published for this device's patient")
            for r in rows:
                r.device_status, r.device_status_at = status, utcnow()
                r.device_reason = (reason or None) and str(reason)[:2000]
            self._audit(db, Actor("device", device.key_id), "rx_status", patient_ref,
                        detail={"sha256": sha256, "status": status, "reason": reason})


@dataclass(frozen=True)
class DeviceRef:
    """The paired device a request comes from (what the request's work needs of it)."""

    id: int
    key_id: str
    public_key_b64: str
    patient_id: int


@dataclass
class DeviceRequest:
    """A device request whose signature verified: the paired device (None while pairing),
    its key, and the nonce and time to claim with the request's work."""

    device: DeviceRef | None
    key_id: str
    nonce: str
    at: dt.datetime
    public_key: Ed25519PublicKey


def canonical_json_with_signature(rx: Mapping[str, Any]) -> bytes:
    """The canonical JSON of the whole prescription, signature included: two publications
    are the same version when these bytes are equal (the device computes the same)."""
    return json.dumps(rx, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _RegisteredKeys:
    """The keys registered to one clinician, shaped as the device's trust store, so the
    clinic checks a signature with the very function the device uses."""

    def __init__(self, keys: Mapping[str, ClinicianKey]) -> None:
        self._keys = keys

    def keys(self) -> dict[str, Ed25519PublicKey]:
        return {kid: serialization.load_pem_public_key(k.public_key_pem.encode("ascii"))
                for kid, k in self._keys.items()}


__all__ = ["Clinic", "Actor", "CLI", "ClinicError", "NotFound", "Unauthorized", "Refused", "Conflict", "TooMany", "DeviceRequest",
           "DeviceRef", "canonical_json_with_signature"]
