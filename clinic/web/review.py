"""One patient's data for the patient page and the exports: the review over a chosen
date range, built by homeapp/report.py's `review_of_export` (the function `homeapp
report` uses), the sessions with their contractions and events, the prescription
history and the devices.

Every function takes the signed-in actor and starts with the service's own check
(`Clinic.patient`): another clinician's patient is a 404 with an audit row, exactly as
through the JSON API. The records themselves are read by session (the log's
(device, session) index) for the sessions in the range only, and put together by the
clinic's own export code (`clinic.ingest.export_from_records`), so a 180-day page never
parses the whole log twice.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from homeapp.report import Review, review_of_export, rx_source

from ..ingest import export_from_records
from ..models import (AuditEntry, ClinicianKey, Clinician, Device, LogRecord, Patient, PublishedPrescription,
                      WebSessionDigest)
from ..service import Actor, Clinic, ClinicError, NotFound
from .. import timeutil
from ..timeutil import utcnow
from . import overview
from .overview import _local, refresh_digests

#: The range shown when none is asked for: the last four weeks.
DEFAULT_DAYS = 28
#: The longest range a page shows (the whole of a long log is in the exports).
MAX_DAYS = 731


@dataclass
class Range:
    """Days `first` to `last`, both included, local to the server."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def query(self) -> str:
        return f"from={self.first.isoformat()}&to={self.last.isoformat()}"


def parse_range(first: str | None, last: str | None, *, today: dt.date | None = None) -> Range:
    """The range asked for (`from`, `to` as YYYY-MM-DD); the last DEFAULT_DAYS days when
    not given. ClinicError naming what is wrong otherwise."""
    today = today or timeutil.clinic_today()

    def day(text: str | None, name: str) -> dt.date | None:
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            raise ClinicError(f"{name} {text[:40]!r}: give a date as YYYY-MM-DD, e.g. {today.isoformat()}") from None

    b = day(last, "to") or today
    a = day(first, "from") or b - dt.timedelta(days=DEFAULT_DAYS - 1)
    if a > b:
        raise ClinicError(f"from {a.isoformat()} is after to {b.isoformat()}: give the earlier day first")
    if (b - a).days + 1 > MAX_DAYS:
        raise ClinicError(f"{(b - a).days + 1} days asked for; a page shows at most {MAX_DAYS} days "
                          f"(the exports hold the whole log)")
    return Range(a, b)


@dataclass
class PatientData:
    """What the patient page shows."""

    patient_id: str
    range: Range
    review: Review
    export: dict[str, Any]          # sessions of the range (with contraction_list, events) + prescriptions
    devices: list[dict[str, Any]]
    history: list[dict[str, Any]]   # prescription history, newest first
    counted_until: dt.date           # adherence counts to this day (the device's last contact, at most)
    last_contact: dt.datetime | None
    latest_session: dt.datetime | None   # of the whole log, whatever the range


def _patient_pk(clinic: Clinic, patient_id: str) -> int:
    with clinic.Session() as db:
        pk = db.scalar(select(Patient.id).where(Patient.patient_id == patient_id))
    if pk is None:      # removed between the check and now
        raise NotFound(f"no patient {patient_id!r} among your patients")
    return pk


def load(clinic: Clinic, actor: Actor, patient_id: str, rng: Range, *, contractions: bool = True,
         tz: dt.tzinfo | None = None, action: str = "web_review") -> PatientData:
    """The patient's review over `rng` and everything the page shows beside it (days in
    `tz`; None: the clinic's zone)."""
    tz = tz if tz is not None else timeutil.clinic_zone()
    summary = clinic.patient(actor, patient_id)      # 404 + audit for another's patient
    pk = _patient_pk(clinic, patient_id)
    refresh_digests(clinic, clinician_id=actor.clinician_id if actor.kind == "clinician" else None)
    start = _local(rng.first, dt.time(), tz)
    end = _local(rng.last + dt.timedelta(days=1), dt.time(), tz)
    with clinic.Session() as db:
        devices = {d.id: d for d in db.scalars(select(Device).where(Device.patient_id == pk))}
        order = {d: n for n, d in enumerate(sorted(devices, key=lambda i: devices[i].paired_at))}
        wanted = db.execute(select(WebSessionDigest.device_id, WebSessionDigest.ref)
                            .where(WebSessionDigest.patient_id == pk, WebSessionDigest.kind == "session",
                                   WebSessionDigest.started_at >= start, WebSessionDigest.started_at < end)).all()
        prescriptions = [json.loads(t) for t in db.scalars(
            select(WebSessionDigest.digest_json).where(WebSessionDigest.patient_id == pk,
                                                       WebSessionDigest.kind == "prescription")
            .order_by(WebSessionDigest.id))]
        records: list[tuple[str, dict[str, Any], int]] = []
        kinds = ("session", "event", "report") + (("contraction",) if contractions else ())
        by_device: dict[int, list[str]] = {}
        for device_id, ref in wanted:
            by_device.setdefault(device_id, []).append(ref)
        for device_id, refs in by_device.items():
            for i in range(0, len(refs), 500):
                for kind, line, seq in db.execute(
                        select(LogRecord.kind, LogRecord.line, LogRecord.seq)
                        .where(LogRecord.device_id == device_id, LogRecord.session_id.in_(refs[i:i + 500]),
                               LogRecord.kind.in_(kinds))):
                    records.append((kind, json.loads(line)["data"], order[device_id] * 10 ** 12 + seq))
        history = _history(db, pk, prescriptions)
        # which prescription every session of the whole log ran under (the history's "active when")
        used = []
        for started, text in db.execute(select(WebSessionDigest.started_at, WebSessionDigest.digest_json)
                                        .where(WebSessionDigest.patient_id == pk, WebSessionDigest.kind == "session")
                                        .order_by(WebSessionDigest.started_at)):
            d = json.loads(text)
            used.append((started, d.get("prescription_id"), d.get("prescription_sha256")))
        latest_session = max((started for started, _id, _sha in used if started is not None), default=None)
        db.add(AuditEntry(at=utcnow(), actor=str(actor), action=action, patient_ref=patient_id[:64], outcome="ok",
                          detail_json=json.dumps({"from": rng.first.isoformat(), "to": rng.last.isoformat(),
                                                  "sessions": len(wanted)}), is_read=True))
        db.commit()
    records.sort(key=lambda r: r[2])
    export = export_from_records(records)
    export["prescriptions"] = prescriptions
    today = timeutil.utcnow().astimezone(tz).date()
    end_day = min(rng.last, today)
    contact = max((d["last_seen_at"] for d in summary["devices"] if d.get("last_seen_at")), default=None)
    contact_day = overview._when(contact).astimezone(tz).date() if contact else None
    if contact_day is not None and rng.first <= contact_day < end_day:
        end_day = contact_day      # days the clinic has not heard of are not missed sessions
    review = review_of_export(export, created_at=_local(end_day, dt.time(23, 59, 59), tz).isoformat(),
                              since=rng.first.isoformat(), tz=tz)
    _note_use(history, used, tz)
    return PatientData(patient_id=patient_id, range=rng, review=review, export=export,
                       devices=summary["devices"], history=history, counted_until=end_day,
                       last_contact=overview._when(contact) if contact else None,
                       latest_session=latest_session)


def _history(db, patient_pk: int, logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every prescription the clinic published for the patient and every one the device's
    log holds, merged by content (sha256): id, validity, who signed it (the key's
    clinician), when published, what the device did and when it installed it."""
    keys = {k: name for k, name in db.execute(
        select(ClinicianKey.key_id, Clinician.username).join(Clinician, Clinician.id == ClinicianKey.clinician_id))}
    out: dict[str, dict[str, Any]] = {}
    for r in db.scalars(select(PublishedPrescription).where(PublishedPrescription.patient_id == patient_pk)
                        .order_by(PublishedPrescription.id)):
        src = json.loads(r.source_json)
        out[r.sha256] = {"id": r.rx_id, "sha256": r.sha256, "source": src, "signed_by_key": r.signature_key_id,
                         "signed_by": keys.get(r.signature_key_id), "published_at": r.published_at,
                         "device_status": r.device_status, "device_status_at": r.device_status_at,
                         "device_reason": r.device_reason, "installed_at": None}
    for p in logged:
        src = rx_source(p)
        sha = p.get("sha256") or ""
        sig = src.get("signature") if isinstance(src.get("signature"), dict) else {}
        entry = out.setdefault(sha, {"id": p.get("id"), "sha256": sha, "source": src,
                                     "signed_by_key": sig.get("key_id") or p.get("signature_key_id"),
                                     "signed_by": keys.get(sig.get("key_id") or p.get("signature_key_id")),
                                     "published_at": None, "device_status": "installed", "device_status_at": None,
                                     "device_reason": None})
        entry["installed_at"] = p.get("imported_at")
    rows = list(out.values())
    for r in rows:
        src = r["source"] or {}
        r["issued"], r["expires"] = src.get("issued"), src.get("expires")
        r["valid_from"] = src.get("valid_from")
        r["first_session"] = r["last_session"] = None
    rows.sort(key=lambda r: (str(r["published_at"] or r["installed_at"] or "")), reverse=True)
    return rows


def _note_use(history: list[dict[str, Any]], used: list[tuple[dt.datetime, Any, Any]],
              tz: dt.tzinfo | None) -> None:
    """The first and last day of the sessions each prescription of the history ran (the
    whole log, whatever range the page shows)."""
    for start, rx_id, sha in used:
        for r in history:
            if r["id"] == rx_id and (not sha or sha == r["sha256"]):
                day = start.astimezone(tz).date().isoformat()
                r["first_session"] = r["first_session"] or day
                r["last_session"] = day
                break


def session_detail(clinic: Clinic, actor: Actor, patient_id: str, session_id: str) -> dict[str, Any]:
    """One session with all its contractions, events and reports (404 when the patient's
    log holds no such session)."""
    clinic.patient(actor, patient_id)
    pk = _patient_pk(clinic, patient_id)
    with clinic.Session() as db:
        devices = list(db.scalars(select(Device.id).where(Device.patient_id == pk).order_by(Device.paired_at)))
        records = []
        for n, device_id in enumerate(devices):
            for kind, line, seq in db.execute(select(LogRecord.kind, LogRecord.line, LogRecord.seq).where(
                    LogRecord.device_id == device_id, LogRecord.session_id == session_id[:128])):
                records.append((kind, json.loads(line)["data"], n * 10 ** 12 + seq))
        db.add(AuditEntry(at=utcnow(), actor=str(actor), action="web_session", patient_ref=patient_id[:64],
                          outcome="ok" if records else "not found",
                          detail_json=json.dumps({"session_id": session_id[:128]}), is_read=True))
        db.commit()
    records.sort(key=lambda r: r[2])
    sessions = export_from_records(records)["sessions"]
    if not sessions:
        raise NotFound(f"patient {patient_id!r} has no session {session_id!r}")
    return sessions[0]
