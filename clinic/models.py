"""The clinic's data, as SQLAlchemy 2 models (the schema itself is made by the Alembic
migrations in clinic/migrations; a test keeps the two equal).

The same tables serve SQLite (a clinic of one) and PostgreSQL (a real clinic): only
portable types, times as timezone-aware UTC (`UTCDateTime`), JSON kept as text.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database: SQLite keeps no zone, so values
    are stored as UTC and given the zone back when read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r}: a time without a zone cannot be stored")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    """The declarative base of every clinic table."""


class Clinician(Base):
    """A clinician who signs in (argon2id password hash) and owns patients."""

    __tablename__ = "clinicians"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    keys: Mapped[list["ClinicianKey"]] = relationship(back_populates="clinician")


class ClinicianKey(Base):
    """The public half of a clinician's prescription-signing key (the private half never
    reaches the clinic); a published prescription must be signed by one of these."""

    __tablename__ = "clinician_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinicians.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    clinician: Mapped[Clinician] = relationship(back_populates="keys")


class Patient(Base):
    """A patient, known by the `patient_id` their prescriptions carry, of one clinician."""

    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), unique=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinicians.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Device(Base):
    """A paired device: its Ed25519 public key, its patient, and the head of its log
    chain as far as the clinic holds it (`last_seq` -1: nothing yet)."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    public_key_b64: Mapped[str] = mapped_column(String(64))   # raw 32 bytes, base64
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    paired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=-1)
    last_hash: Mapped[str] = mapped_column(String(64))
    end_json: Mapped[str | None] = mapped_column(Text, nullable=True)  # the last signed end record
    last_upload_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    software_version: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PairingCode(Base):
    """A one-time code a clinician gives the patient's device (only its hash is kept)."""

    __tablename__ = "pairing_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    used_by_device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), nullable=True)


class LogRecord(Base):
    """One record of a device's log chain, exactly the line the device hashed (the
    format of homeapp/bundle.py), so the clinic can hand back a bundle that verifies."""

    __tablename__ = "log_records"
    __table_args__ = (UniqueConstraint("device_id", "seq", name="uq_log_records_device_seq"),
                      Index("ix_log_records_session", "device_id", "session_id"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    hash: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    line: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PublishedPrescription(Base):
    """A signed prescription a clinician published for a patient's device, and what the
    device did with it (`device_status`: pending, installed, refused)."""

    __tablename__ = "prescriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    rx_id: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    source_json: Mapped[str] = mapped_column(Text)
    signature_key_id: Mapped[str] = mapped_column(String(40))
    published_by: Mapped[int] = mapped_column(ForeignKey("clinicians.id"))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    device_status: Mapped[str] = mapped_column(String(16), default="pending")
    device_status_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    device_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RequestNonce(Base):
    """Nonces of signed device requests seen within the accepted time window: a request
    replayed inside the window is refused by this table, one outside it by its time."""

    __tablename__ = "request_nonces"
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ApiToken(Base):
    """A clinician's sign-in for the JSON API (only the token's SHA-256 is kept)."""

    __tablename__ = "api_tokens"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    clinician_id: Mapped[int] = mapped_column(ForeignKey("clinicians.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Every read and change of patient data, and every refusal: who, what, which
    patient, the outcome."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))          # clinician:NAME, device:KEYID, cli
    action: Mapped[str] = mapped_column(String(64))
    patient_ref: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    outcome: Mapped[str] = mapped_column(String(16))         # ok, denied, refused
    detail_json: Mapped[str] = mapped_column(Text, default="{}")
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSessionDigest(Base):
    """What the clinician's patient list needs of one session (or prescription) of a
    device's log, kept so the list never reads the whole log: the session record with
    its incident and end events and its latest report (clinic/web/overview.py)."""

    __tablename__ = "web_session_digests"
    __table_args__ = (UniqueConstraint("device_id", "kind", "ref", name="uq_web_session_digests_ref"),
                      Index("ix_web_session_digests_patient_started", "patient_id", "started_at"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(16))            # session, prescription
    ref: Mapped[str] = mapped_column(String(200))            # the session id; rx id:sha256
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    digest_json: Mapped[str] = mapped_column(Text)


class WebDigestMark(Base):
    """How far (log seq) a device's records are digested into web_session_digests."""

    __tablename__ = "web_digest_marks"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    through_seq: Mapped[int] = mapped_column(BigInteger)


class WebPatientRow(Base):
    """A patient's computed row of the patient list, valid while `cache_key` (the day,
    the digested log's extent, the newest prescription) is unchanged."""

    __tablename__ = "web_patient_rows"
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    cache_key: Mapped[str] = mapped_column(String(200))
    row_json: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebReviewChart(Base):
    """A drawn picture of a patient's review charts (clinic/web/charts.py): one per patient,
    language and range of days, served while `chart_state` (a hash of everything the
    picture depends on) still matches; `log_mark` (a hash of the patient's devices' log
    heads and contact days) changes with the patient's data, and every picture under an
    older mark is then deleted. Patient data, kept as the log is; gone with the patient."""

    __tablename__ = "web_review_charts"
    __table_args__ = (UniqueConstraint("patient_id", "lang", "first_day", "last_day", name="uq_web_review_charts_range"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    lang: Mapped[str] = mapped_column(String(8))
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    chart_state: Mapped[str] = mapped_column(String(64))
    log_mark: Mapped[str] = mapped_column(String(64))
    png: Mapped[bytes] = mapped_column(LargeBinary)
    drawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    draw_cpu_ms: Mapped[int] = mapped_column(Integer)
