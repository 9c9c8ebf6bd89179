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
from sqlalchemy import Engine, bindparam, delete, func, insert, select, update
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
#: Paired devices' public keys kept in memory (then forgotten all at once and read again).
DEVICE_KEY_CACHE = 100_000


def _forget_old_nonces(conn: Any, now: dt.datetime) -> None:
    """Now and then (one request in a hundred), forget the nonces too old to be replayed:
    a request older than the clock skew allowed is refused on its timestamp anyway."""
    if random.random() < 0.01:
        cutoff = now - dt.timedelta(seconds=2 * syncproto.MAX_CLOCK_SKEW_S)
        conn.execute(delete(RequestNonce).where(RequestNonce.seen_at < cutoff))


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
        # paired devices' public keys by key id (a key id is the key's fingerprint)
        self._device_keys: dict[str, Ed25519PublicKey] = {}
        self._upload_sql: dict[str, Any] | None = None

    # ------------------------------------------------------------------ audit
    @staticmethod
    def _audit_values(actor: Actor | str, action: str, patient_ref: str | None, outcome: str = "ok",
                      detail: Mapping[str, Any] | None = None, *, is_read: bool = False) -> dict[str, Any]:
        return {"at": utcnow(), "actor": str(actor), "action": action, "patient_ref": patient_ref, "outcome": outcome,
                "detail_json": json.dumps(dict(detail or {}), ensure_ascii=False, default=str), "is_read": is_read}

    def _audit(self, db: Session, actor: Actor | str, action: str, patient_ref: str | None, outcome: str = "ok",
               detail: Mapping[str, Any] | None = None, *, is_read: bool = False) -> None:
        db.add(AuditEntry(**self._audit_values(actor, action, patient_ref, outcome, detail, is_read=is_read)))

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
    def _signed_headers(self, headers: Mapping[str, str]) -> "SignedHeaders":
        """The four headers of a signed device request, checked for form and time (no
        database): Unauthorized naming what is wrong."""
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
        return SignedHeaders(key_id=kid, nonce=nonce, timestamp=timestamp,
                             signature=got[syncproto.HEADER_SIGNATURE], at=now)

    def authenticate_device(self, *, method: str, path: str, headers: Mapping[str, str], body: bytes,
                            public_key: Ed25519PublicKey | None = None) -> "DeviceRequest":
        """Check a signed device request: its key is paired (or, for pairing, is the key
        given), the time is within the window, the signature covers this request. Writes
        nothing: the nonce is claimed in the transaction of the request's work
        (`_device_tx`), so one commit serves both. Unauthorized naming why."""
        signed = self._signed_headers(headers)
        kid, nonce, timestamp, now = signed.key_id, signed.nonce, signed.timestamp, signed.at
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
        if not syncproto.verify_request_signature(public_key, signed.signature, method, path,
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
                    _forget_old_nonces(db, req.at)
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

    def device_chain(self, req: "DeviceRequest", *, after: int, limit: int) -> dict[str, Any]:
        """The records the clinic holds of this device's chain after `after`, oldest first
        (at most `limit`), with the device's own signed end line over the whole: what a
        device that lost its sync state rebuilds its outbox from, so it resumes exactly
        where the clinic stands instead of sending its log again."""
        if not -1 <= after <= 2 ** 62 or not 1 <= limit <= syncproto.MAX_RECORDS_PER_UPLOAD:
            raise ClinicError(f"after: -1 or a record number; limit: 1 to {syncproto.MAX_RECORDS_PER_UPLOAD}")
        with self._device_tx(req) as db:
            d = db.get(Device, req.device.id)
            d.last_seen_at = req.at
            lines = list(db.scalars(select(LogRecord.line).where(LogRecord.device_id == d.id, LogRecord.seq > after)
                                    .order_by(LogRecord.seq).limit(limit)))
            patient_ref = db.scalar(select(Patient.patient_id).where(Patient.id == d.patient_id))
            self._audit(db, Actor("device", d.key_id), "chain_read", patient_ref,
                        detail={"after": after, "records": len(lines)}, is_read=True)
            return {"acknowledged": d.last_seq, "head": d.last_hash, "records": lines,
                    "end": json.loads(d.end_json) if d.end_json else None}

    def _offer(self, db: Session, patient_pk: int) -> dict[str, str] | None:
        """The newest published prescription's id and fingerprint, so a device learns of it
        in the answer it gets anyway and fetches the whole file only when it is new to it."""
        row = db.execute(select(PublishedPrescription.rx_id, PublishedPrescription.sha256)
                         .where(PublishedPrescription.patient_id == patient_pk)
                         .order_by(PublishedPrescription.id.desc()).limit(1)).first()
        return None if row is None else {"id": row[0], "sha256": row[1]}

    def ingest(self, req: "DeviceRequest", body: bytes) -> dict[str, Any]:
        """Store an upload of chained records whole, or refuse it whole naming every
        problem (Refused), for a request `authenticate_device` already checked. Records
        the clinic already holds must be identical (a replay changes nothing); new ones must
        continue the chain from the clinic's head and be covered by an end line signed with
        the paired key."""
        try:
            upload = ingest.parse_upload(body)      # ClinicError for what is not an upload at all
        except ClinicError as e:
            self._audit_refused_upload(req.key_id, None, e)
            raise
        signed = SignedHeaders(key_id=req.key_id, nonce=req.nonce, timestamp=0, signature="", at=req.at)
        return self._store_upload(signed, req.public_key, upload, request=None)

    def receive_upload(self, *, method: str, path: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """A device's signed upload (POST /api/device/log), authenticated and stored or
        refused whole in ONE database transaction: the device's row (locked), the nonce,
        the records, the new head and the audit entry, one commit.

        The public key of a device seen before is kept in memory (a key id is the key's own
        fingerprint, so the pair never changes), and then the request's signature is
        checked and the body parsed before the transaction; the row read inside it must
        still hold that very key, or the request is checked again against the row's.
        Every refusal is audited, as `authenticate_device` and `ingest` do."""
        signed = self._signed_headers(headers)
        public_key = self._device_keys.get(signed.key_id)
        upload = None
        if public_key is not None and not syncproto.verify_request_signature(
                public_key, signed.signature, method, path, signed.timestamp, signed.nonce, body):
            public_key = None                   # the row's key decides (and the refusal is audited there)
        if public_key is not None:
            try:
                upload = ingest.parse_upload(body)
            except ClinicError as e:
                self._audit_refused_upload(signed.key_id, None, e)
                raise
        return self._store_upload(signed, public_key, upload, request=(method, path, body))

    def _store_upload(self, signed: "SignedHeaders", public_key: Ed25519PublicKey | None,
                      upload: "ingest.Upload | None", *, request: tuple[str, str, bytes] | None) -> dict[str, Any]:
        """The transaction of an upload. `public_key` None or `upload` None: the request
        (method, path, body) is checked and parsed here, against the row's key."""
        kid = signed.key_id
        actor = Actor("device", kid)
        q = self._upload_statements()
        replay = False
        patient_ref = None
        try:
            with self.engine.begin() as conn:
                row = conn.execute(q["device"], {"key_id": kid}).first()
                if row is None:
                    error = Unauthorized(f"device key {kid} is not paired to any patient: pair it first "
                                         f"(`homeapp clinic pair`)", status=403)
                    error.audit_after = lambda: self.audit_denied(actor, "device_request", None, "unpaired device")
                    raise error
                device_pk, key_b64, last_seq, last_hash, patient_pk, patient_ref, offer_id, offer_sha = row
                if public_key is None or syncproto.public_key_b64(public_key) != key_b64:
                    if request is None:     # checked by authenticate_device against a row since changed
                        raise Unauthorized(f"device key {kid} was paired again while this request ran; send it again")
                    public_key = syncproto.public_key_from_b64(key_b64)
                    method, path, body = request
                    if not syncproto.verify_request_signature(public_key, signed.signature, method, path,
                                                              signed.timestamp, signed.nonce, body):
                        error = Unauthorized(f"the request's signature does not verify with device key {kid}")
                        error.audit_after = lambda: self.audit_denied(actor, "device_request", None,
                                                                      "bad request signature")
                        raise error
                    upload = None
                if len(self._device_keys) >= DEVICE_KEY_CACHE:
                    self._device_keys.clear()
                self._device_keys[kid] = public_key
                try:
                    conn.execute(q["nonce"], {"key_id": kid, "nonce": signed.nonce, "seen_at": signed.at})
                except IntegrityError:
                    replay = True
                    raise
                _forget_old_nonces(conn, signed.at)
                if upload is None:
                    upload = ingest.parse_upload(request[2])
                held_seqs = [r.seq for r in upload.records if r.seq is not None and 0 <= r.seq <= last_seq]
                held = {}
                if held_seqs:
                    held = dict(conn.execute(select(LogRecord.seq, LogRecord.hash).where(
                        LogRecord.device_id == device_pk, LogRecord.seq.in_(held_seqs))).all())
                problems = ingest.check_upload(upload, device_key_id=kid, public_key=public_key,
                                               last_seq=last_seq, last_hash=last_hash, held=held)
                if problems:
                    raise Refused(f"upload refused: {len(problems)} problem{'s' * (len(problems) != 1)}", problems)
                new = [r for r in upload.records if r.seq > last_seq]
                now = signed.at
                if new:
                    self._insert_records(conn, [(device_pk, r.seq, r.kind, r.hash, r.session_id, r.line, now)
                                                for r in new])
                    last_seq, last_hash = new[-1].seq, new[-1].hash
                    conn.execute(q["head"], {"id_": device_pk, "last_seen_at": now, "last_seq": last_seq,
                                             "last_hash": last_hash, "last_upload_at": now,
                                             "end_json": json.dumps(upload.end, ensure_ascii=False)})
                else:
                    conn.execute(q["seen"], {"id_": device_pk, "last_seen_at": now})
                conn.execute(q["audit"], self._audit_values(actor, "upload", patient_ref, detail={
                    "stored": len(new), "acknowledged": last_seq}))
        except IntegrityError:
            if not replay:
                raise
            self.audit_denied(actor, "device_request", None, "replayed request")
            raise Unauthorized("replayed request: this nonce was already used") from None
        except ClinicError as e:
            after = getattr(e, "audit_after", None)
            if after is not None:
                after()
            elif not isinstance(e, Unauthorized):
                self._audit_refused_upload(kid, patient_ref, e)
            raise
        return {"acknowledged": last_seq, "head": last_hash, "stored": len(new),
                "prescription": None if offer_sha is None else {"id": offer_id, "sha256": offer_sha}}

    def _upload_statements(self) -> dict[str, Any]:
        """The statements of `_store_upload`, built once (building them is most of the
        Python work of a statement; SQLAlchemy caches their compiled form)."""
        if self._upload_sql is None:
            offer = select(PublishedPrescription.rx_id, PublishedPrescription.sha256).where(
                PublishedPrescription.patient_id == Device.patient_id).order_by(
                PublishedPrescription.id.desc()).limit(1)
            device = (select(Device.id, Device.public_key_b64, Device.last_seq, Device.last_hash, Device.patient_id,
                             Patient.patient_id, offer.with_only_columns(PublishedPrescription.rx_id).scalar_subquery(),
                             offer.with_only_columns(PublishedPrescription.sha256).scalar_subquery())
                      .join(Patient, Patient.id == Device.patient_id).where(Device.key_id == bindparam("key_id")))
            if self.is_postgres:
                device = device.with_for_update(of=Device)
            by_id = update(Device).where(Device.id == bindparam("id_"))
            self._upload_sql = {
                "device": device,
                "nonce": insert(RequestNonce),
                "head": by_id.values(last_seen_at=bindparam("last_seen_at"), last_seq=bindparam("last_seq"),
                                     last_hash=bindparam("last_hash"), last_upload_at=bindparam("last_upload_at"),
                                     end_json=bindparam("end_json")),
                "seen": by_id.values(last_seen_at=bindparam("last_seen_at")),
                "audit": insert(AuditEntry),
            }
        return self._upload_sql

    def _insert_records(self, conn: Any, rows: list[tuple]) -> None:
        """Many log records at once: PostgreSQL's COPY (one stream, no statement per row),
        executemany elsewhere."""
        columns = ("device_id", "seq", "kind", "hash", "session_id", "line", "received_at")
        if self.is_postgres:
            raw = conn.connection.driver_connection
            with raw.cursor().copy(f"COPY log_records ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        conn.execute(insert(LogRecord), [dict(zip(columns, row)) for row in rows])

    def _audit_refused_upload(self, key_id_: str, patient_ref: str | None, error: ClinicError) -> None:
        """The audit entry of a refused upload, naming its problems (its own transaction)."""
        if patient_ref is None:
            with self.engine.connect() as conn:
                patient_ref = conn.execute(select(Patient.patient_id).join(Device, Device.patient_id == Patient.id)
                                           .where(Device.key_id == key_id_)).scalar()
        with self.Session.begin() as db:
            self._audit(db, Actor("device", key_id_), "upload", patient_ref, "refused",
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


@dataclass(frozen=True)
class SignedHeaders:
    """The headers of a signed device request, their form and time checked."""

    key_id: str
    nonce: str
    timestamp: int
    signature: str
    at: dt.datetime


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
