"""The patient list's data: one row per patient of a clinician, with the flags a
clinician acts on, computed from the uploaded log and the prescription in force by the
review's own functions (homeapp/report.py: `review_of_export`, `review_flags`,
`adherence_over`), never by a copy of their rules.

How it stays fast (the goal: 1,000 patients with 180 days of daily sessions each, the list
in at most 300 ms at the 95th percentile on PostgreSQL). Building each patient's review
from the raw log on every view would read ~30,000 records per patient; so two stores,
each kept by key, never by guess:

1. Digests (table web_session_digests): per session, what the review reads of it (the
   session record, its incident and end events, its latest report; not the contractions,
   whose per-channel counts and peaks the session record already holds); per prescription
   record, the record. A device's records are digested once, incrementally from the
   device's mark (web_digest_marks.through_seq) to its newest record, the first time a
   list is asked for after an upload. That moves the work out of the ingest, which stays
   as fast as the devices need, and costs about one digest row per device and day.
2. Rows (table web_patient_rows): each patient's computed row, valid while its key holds:
   the day (the list speaks of "this week" and "3 days"), how far the patient's devices
   are digested (a new upload changes it) and the newest published prescription. A view
   recomputes only the rows whose key changed, from the digests of the last WINDOW_DAYS
   days (one indexed query for all of them).

What depends on the minute, not the day (when the device last reached the clinic), is
read live from the devices table on every view. So the steady list costs a few indexed
queries and a JSON decode per patient; the first view of a day, or after every device
synced, recomputes each row once (a few milliseconds per patient: the figures in
`make bench`). So that no clinician waits for that, the serving process keeps every
list warm in the background (`Warmer`, a pass a minute, started by `serve`, or by the
first signed-in page of an app made otherwise).

Where the issue is silent: "pain rising" is the review's own rule (the last 14 days of
reports against the 14 before, or quarters of the reports), not a separate "last week"
rule, so the list and the patient's review never disagree; "ended early" counts the
sessions of the last EARLY_DAYS days that were stopped, aborted or interrupted.

Days are the clinic's days: its zone $HOMEAPP_CLINIC_TZ, else the machine's local zone
(`clinic.timeutil.clinic_zone`).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Self, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from homeapp.report import (ADHERENCE_LOW, INCIDENT_KINDS, PAIN_HIGH, Review, adherence_over, review_of_export)

from ..models import (AuditEntry, Device, LogRecord, Patient, PublishedPrescription, WebDigestMark, WebPatientRow,
                      WebSessionDigest)
from ..service import Actor, Clinic
from .. import timeutil
from ..timeutil import utcnow

#: Days of log each row is computed from (the review's "last four weeks").
WINDOW_DAYS = 28
#: No data for this long is flagged (the device's last contact, or the last session).
QUIET_DAYS = 3
#: Sessions ended early within this many days are flagged.
EARLY_DAYS = 7
#: Bump when the row's computation changes: every cached row is then recomputed.
ROW_VERSION = "5"
#: Events a digest keeps: what the review reads (incidents, how a session ended, words
#: typed before skipping the report).
DIGEST_EVENTS = frozenset(INCIDENT_KINDS) | {"end", "report_skipped"}

#: Progression rules: functions of a patient's Review returning a suggestion (anything
#: with `reasons`, a list of lines, and optionally `summary`) or None. The progression
#: module registers its rule with `register_progression`; this module judges nothing itself.
_PROGRESSION: list[Callable[[Review], Any]] = []


def register_progression(rule: Callable[[Review], Any], *,
                         words: Callable[[dict[str, Any], str], str] | None = None) -> None:
    """Add a progression rule (a function of the review of the last WINDOW_DAYS days).

    A rule whose suggestion has `coded` (a list of {"code", "values", "text"}: a reason's
    code, its numbers, and its English words as the last resort) gets those cached, not
    words; `words(reason, language)` then says one such reason in the reader's language
    when the list is shown (`reason_words`)."""
    if rule not in _PROGRESSION:
        _PROGRESSION.append(rule)
    if words is not None and words not in _REASON_WORDS:
        _REASON_WORDS.append(words)


#: Functions wording a coded progression reason in a language (see `register_progression`).
_REASON_WORDS: list[Callable[[dict[str, Any], str], str]] = []


def reason_words(reason: dict[str, Any], language: str) -> str:
    """One coded progression reason in `language`, by the registered wording (else its English)."""
    for words in _REASON_WORDS:
        text = words(reason, language)
        if text:
            return text
    return str(reason.get("text", reason.get("code", "")))


# ------------------------------------------------------------------------------ digests

#: Devices digested per transaction (bounds the memory and the time a lock is held).
DIGEST_BATCH = 100


def refresh_digests(clinic: Clinic, *, clinician_id: int | None = None) -> int:
    """Digest every record uploaded since the last call (of one clinician's patients'
    devices, or all); returns how many devices were brought up to date."""
    mark = func.coalesce(WebDigestMark.through_seq, -1)
    q = (select(Device.id, Device.patient_id, Device.last_seq, mark)
         .outerjoin(WebDigestMark, WebDigestMark.device_id == Device.id)
         .where(Device.last_seq > mark))
    if clinician_id is not None:
        q = q.join(Patient, Patient.id == Device.patient_id).where(Patient.clinician_id == clinician_id)
    with clinic.engine.connect() as conn:
        stale = conn.execute(q.order_by(Device.id)).all()
    done = 0
    for i in range(0, len(stale), DIGEST_BATCH):
        done += _digest(clinic, stale[i:i + DIGEST_BATCH])
    return done


def _digest(clinic: Clinic, stale: Sequence[Any]) -> int:
    """Digest the new records of these devices ((id, patient, last_seq, mark) rows) in one transaction."""
    with clinic.Session.begin() as db:
        ids = [s[0] for s in stale]
        _ensure_marks(db, clinic, ids)
        # the marks, locked: a second viewer waits here, then finds the work done
        lock = select(WebDigestMark.device_id, WebDigestMark.through_seq).where(WebDigestMark.device_id.in_(ids))
        marks = dict(db.execute(lock.with_for_update() if clinic.is_postgres else lock).all())
        upto = {s[0]: s[2] for s in stale}
        patient_of = {s[0]: s[1] for s in stale}
        todo = [i for i in ids if marks[i] < upto[i]]
        if not todo:
            return 0
        rows = db.execute(
            select(LogRecord.device_id, LogRecord.seq, LogRecord.kind, LogRecord.session_id, LogRecord.line)
            .join(WebDigestMark, WebDigestMark.device_id == LogRecord.device_id)
            .where(LogRecord.device_id.in_(todo), LogRecord.seq > WebDigestMark.through_seq,
                   LogRecord.kind.in_(("session", "event", "report", "prescription")))
            .order_by(LogRecord.device_id, LogRecord.seq)).all()
        digests: dict[tuple[int, str, str], dict[str, Any]] = {}
        fresh: set[tuple[int, str, str]] = set()
        orphans: list[tuple[int, str, str, dict[str, Any]]] = []
        for device_id, seq, kind, session_id, line in rows:
            if seq > upto[device_id]:
                continue        # uploaded after we looked: the next refresh takes it
            data = json.loads(line)["data"]
            if kind == "session":
                key = (device_id, "session", str(data.get("id")))
                digests[key] = {**data, "events": [], "report": None}
                fresh.add(key)
            elif kind == "prescription":
                key = (device_id, "prescription", f"{data.get('id')}:{data.get('sha256')}"[:200])
                digests[key] = data
                fresh.add(key)
            elif kind == "event" and data.get("kind") not in DIGEST_EVENTS:
                continue
            else:
                orphans.append((device_id, kind, str(session_id), data))
        # children whose session was digested by an earlier refresh
        missing = {(d, "session", s) for d, _, s, _ in orphans if (d, "session", s) not in digests}
        existing: dict[tuple[int, str, str], int] = {}
        if missing:
            for row in db.execute(select(WebSessionDigest.id, WebSessionDigest.device_id, WebSessionDigest.ref,
                                         WebSessionDigest.digest_json)
                                  .where(WebSessionDigest.device_id.in_({d for d, _, _ in missing}),
                                         WebSessionDigest.kind == "session",
                                         WebSessionDigest.ref.in_({s for _, _, s in missing}))):
                key = (row[1], "session", row[2])
                if key in missing:
                    digests[key] = json.loads(row[3])
                    existing[key] = row[0]
        for device_id, kind, session_id, data in orphans:
            digest = digests.get((device_id, "session", session_id))
            if digest is None:
                continue        # a child of a session the log never held: nothing to show
            child = {k: v for k, v in data.items() if k != "session_id"}
            if kind == "event":
                digest["events"].append(child)
            else:
                digest["report"] = child
        inserts, updates = [], []
        for key, digest in digests.items():
            device_id, kind, ref = key
            text = json.dumps(digest, ensure_ascii=False, separators=(",", ":"))
            if key in existing:
                updates.append({"id": existing[key], "digest_json": text})
                continue
            started = digest.get("started_at") if kind == "session" else digest.get("imported_at")
            inserts.append({"device_id": device_id, "patient_id": patient_of[device_id], "kind": kind,
                            "ref": ref, "started_at": _when(started), "digest_json": text})
        if inserts:
            # a session record seen again (a replayed upload is refused, so only by a
            # device re-sending after a restore) replaces the digest: delete, then insert
            for device_id in {i["device_id"] for i in inserts}:
                refs = [i["ref"] for i in inserts if i["device_id"] == device_id]
                db.query(WebSessionDigest).filter(WebSessionDigest.device_id == device_id,
                                                  WebSessionDigest.ref.in_(refs)).delete(synchronize_session=False)
            db.execute(WebSessionDigest.__table__.insert(), inserts)
        if updates:
            db.execute(WebSessionDigest.__table__.update()
                       .where(WebSessionDigest.id == _bind("id"))
                       .values(digest_json=_bind("digest_json")), [{"b_id": u["id"], "b_digest_json": u["digest_json"]}
                                                                    for u in updates])
        for device_id in todo:
            db.execute(WebDigestMark.__table__.update().where(WebDigestMark.device_id == device_id)
                       .values(through_seq=upto[device_id]))
        return len(todo)


def _bind(name: str):
    from sqlalchemy import bindparam
    return bindparam(f"b_{name}")


def _ensure_marks(db: Session, clinic: Clinic, device_ids: Sequence[int]) -> None:
    if clinic.is_postgres:
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.execute(insert(WebDigestMark).values([{"device_id": i, "through_seq": -1} for i in device_ids])
               .on_conflict_do_nothing(index_elements=["device_id"]))


def _local(day: dt.date, at: dt.time, tz: dt.tzinfo | None) -> dt.datetime:
    """That day and time in `tz` (None: the machine's local zone), aware."""
    naive = dt.datetime.combine(day, at)
    return naive.replace(tzinfo=tz) if tz is not None else naive.astimezone()


def _when(text: Any) -> dt.datetime | None:
    """A time (ISO 8601 text, or a datetime) made aware (no zone: UTC); None for none or not a time."""
    if not text:
        return None
    if isinstance(text, dt.datetime):
        when = text
    else:
        try:
            when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


# ------------------------------------------------------------------------------ rows

@dataclass
class FlagView:
    """One flag of a row: `kind`, `level` (bad, warn, info, good) and the values its
    explanation is written from (the page words it in the reader's language)."""

    kind: str
    level: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class PatientRow:
    """One row of the patient list."""

    patient_id: str
    week_done: int | None = None          # completed sessions since Monday
    week_due_so_far: int | None = None    # due by today, this week (prorated)
    per_week: int | None = None           # the prescription in force's sessions a week
    last_session: dt.datetime | None = None
    last_session_status: str | None = None
    sessions_window: int = 0
    adherence_window: str | None = None   # the review's words, e.g. "71% (10 of 14 due)"
    rx_id: str | None = None
    devices: int = 0
    last_contact: dt.datetime | None = None   # the device's last request to the clinic
    last_upload: dt.datetime | None = None
    flags: list[FlagView] = field(default_factory=list)

    @property
    def severity(self) -> int:
        """For sorting: urgent flags first."""
        weight = {"bad": 100, "warn": 10, "info": 1, "good": 0}
        return sum(weight.get(f.level, 0) for f in self.flags)

    @property
    def week_ratio(self) -> float:
        if not self.per_week:
            return -1.0
        return (self.week_done or 0) / self.per_week


def review_flag_views(review: Review) -> list[dict[str, Any]]:
    """The review's own flags (`homeapp.report.review_flags`) with the values the pages
    word them from: {"kind", "level", "values"}."""
    by_id = {r.session_id: r for r in review.rows}
    flags: list[dict[str, Any]] = []
    for f in review.flags:
        rows = [by_id[s] for s in f.session_ids if s in by_id]
        values: dict[str, Any] = {}   # numbers and dates only: the page words them in its language
        if f.kind == "pain_high":
            values.update(sessions=len(rows), highest=max((r.pain or 0) for r in rows),
                          last=max(r.started for r in rows).date().isoformat(), threshold=PAIN_HIGH)
        elif f.kind == "pain_rising" and review.pain is not None:
            values.update(earlier=round(review.pain.earlier.mean, 1), later=round(review.pain.later.mean, 1),
                          earlier_from=review.pain.earlier.first_day.isoformat(),
                          earlier_to=review.pain.earlier.last_day.isoformat(),
                          later_from=review.pain.later.first_day.isoformat(),
                          later_to=review.pain.later.last_day.isoformat())
        elif f.kind == "adherence_low":
            a = review.adherence
            values.update(done=a.done, due=a.due, percent=round(100 * (a.ratio or 0)),
                          first=a.first_day.isoformat() if a.first_day else "", last=a.last_day.isoformat()
                          if a.last_day else "", threshold=round(100 * ADHERENCE_LOW))
        elif f.kind in ("estop", "fault", "electrode"):
            kinds = {"estop": ("estop",), "fault": ("fault", "watchdog"), "electrode": ("lead_off",)}[f.kind]
            hits = [w for w, _, k, _ in review.incidents if k in kinds]
            values.update(times=len(hits), sessions=len(f.session_ids),
                          last=max(hits).date().isoformat() if hits else "")
        flags.append({"kind": f.kind, "level": "warn" if f.kind in ("adherence_low", "electrode") else "bad",
                      "values": values})
    return flags


def compute_row(patient_id: str, sessions: list[dict[str, Any]], prescriptions: list[dict[str, Any]], *,
                today: dt.date, tz: dt.tzinfo | None = None, data_until: dt.date | None = None) -> dict[str, Any]:
    """The cached part of a row (JSON-ready) from the last WINDOW_DAYS days of digested
    sessions and the log's prescriptions: the review's flags, this week's sessions, the
    last session, sessions ended early, and the progression rules' suggestion.
    `data_until`: the day the device last reached the clinic; adherence counts up to it,
    not to today (days the clinic has not heard of are not missed sessions: the "device
    not syncing" flag says so instead)."""
    window_from = today - dt.timedelta(days=WINDOW_DAYS - 1)
    until = data_until if data_until is not None and window_from <= data_until < today else today
    end_of_today = _local(until, dt.time(23, 59, 59), tz)
    review = review_of_export({"sessions": sessions, "prescriptions": prescriptions},
                              created_at=end_of_today.isoformat(), since=window_from.isoformat(), tz=tz)
    monday = today - dt.timedelta(days=today.weekday())
    week = adherence_over(review.sessions, review.prescriptions, end_day=today, since=monday, tz=tz)
    rx = review.rx_in_force
    src = (rx.get("source") if isinstance(rx, dict) and isinstance(rx.get("source"), dict) else rx) or {}
    flags = review_flag_views(review)
    early_from = today - dt.timedelta(days=EARLY_DAYS - 1)
    early = [r for r in review.rows if r.status != "completed" and r.started.date() >= early_from]
    if early:
        flags.append({"kind": "ended_early", "level": "warn",
                      "values": {"sessions": len(early), "days": EARLY_DAYS,
                                 "last": max(r.started for r in early).date().isoformat(),
                                 "how": sorted({r.ended for r in early})}})
    for rule in _PROGRESSION:
        try:
            suggestion = rule(review)
        except Exception:   # a rule that fails shows nothing rather than break the list
            import logging
            logging.getLogger(__name__).exception("progression rule %r failed", rule)
            continue
        if suggestion:
            coded = getattr(suggestion, "coded", None)
            if coded is not None:   # language-neutral: codes and values, worded when shown
                values = {"coded": json.loads(json.dumps(list(coded), default=str))}
            else:                   # a rule that only has words: shown as they are
                reasons = getattr(suggestion, "reasons", None) or [str(suggestion)]
                values = {"summary": str(getattr(suggestion, "summary", "") or ""),
                          "reasons": [str(r) for r in reasons]}
            flags.append({"kind": "progress", "level": "good", "values": values})
            break
    last = review.rows[-1] if review.rows else None
    return {
        "week_done": (week.done + week.extra) if week.days else None,
        "week_due_so_far": week.due if week.days else None,
        "per_week": src.get("sessions_per_week") if src else None,
        "last_session": last.started.isoformat() if last else None,
        "last_session_status": last.status if last else None,
        "sessions_window": len(review.rows),
        "adherence_window": review.adherence.describe() if review.adherence.days else None,
        "rx_id": src.get("id") if src else None,
        "flags": flags,
    }


def _cache_key(today: dt.date, digested: int, newest_rx: int | None, contact_day: dt.date | None) -> str:
    rules = ",".join(getattr(r, "__qualname__", "rule") for r in _PROGRESSION)
    return f"{ROW_VERSION}|{today.isoformat()}|{digested}|{newest_rx}|{contact_day}|{rules}"[:200]


def patient_rows(clinic: Clinic, actor: Actor, *, today: dt.date | None = None, now: dt.datetime | None = None,
                 tz: dt.tzinfo | None = None, audit: bool = True) -> list[PatientRow]:
    """Every patient of `actor` (a clinician), as list rows with their flags; the cached
    part recomputed where its key changed. The read is audited (one entry). `tz`: the
    days' zone (None: the clinic's, `timeutil.clinic_zone`)."""
    now = now or timeutil.utcnow()
    tz = tz if tz is not None else timeutil.clinic_zone()
    today = today or now.astimezone(tz).date()
    refresh_digests(clinic, clinician_id=actor.clinician_id)
    with clinic.Session() as db:
        patients = db.execute(select(Patient.id, Patient.patient_id)
                              .where(Patient.clinician_id == actor.clinician_id)).all()
        pks = [p[0] for p in patients]
        devices = db.execute(
            select(Device.patient_id, func.count(Device.id), func.max(Device.last_seen_at),
                   func.max(Device.last_upload_at), func.coalesce(func.sum(WebDigestMark.through_seq), 0))
            .outerjoin(WebDigestMark, WebDigestMark.device_id == Device.id)
            .join(Patient, Patient.id == Device.patient_id)
            .where(Patient.clinician_id == actor.clinician_id).group_by(Device.patient_id)).all()
        dev = {d[0]: d[1:] for d in devices}
        newest_rx = dict(db.execute(
            select(PublishedPrescription.patient_id, func.max(PublishedPrescription.id))
            .join(Patient, Patient.id == PublishedPrescription.patient_id)
            .where(Patient.clinician_id == actor.clinician_id).group_by(PublishedPrescription.patient_id)).all())
        cached = {r[0]: (r[1], r[2]) for r in db.execute(
            select(WebPatientRow.patient_id, WebPatientRow.cache_key, WebPatientRow.row_json)
            .join(Patient, Patient.id == WebPatientRow.patient_id)
            .where(Patient.clinician_id == actor.clinician_id))}
    contact_day = {pk: d[1].astimezone(tz).date() for pk, d in dev.items() if d[1] is not None}
    keys = {pk: _cache_key(today, int(dev.get(pk, (0, None, None, 0))[3] or 0), newest_rx.get(pk),
                           contact_day.get(pk)) for pk in pks}
    stale = [pk for pk in pks if cached.get(pk, (None,))[0] != keys[pk]]
    computed: dict[int, dict[str, Any]] = {}
    if stale:
        computed = _compute(clinic, stale, {p[0]: p[1] for p in patients}, today=today, tz=tz,
                            data_until=contact_day)
        _store_rows(clinic, {pk: (keys[pk], computed[pk]) for pk in stale})
    out = []
    for pk, patient_id in patients:
        data = computed[pk] if pk in computed else json.loads(cached[pk][1])
        n_dev, seen, uploaded, _ = dev.get(pk, (0, None, None, 0))
        out.append(_row(patient_id, data, devices=n_dev, last_contact=seen, last_upload=uploaded, now=now, tz=tz))
    if audit:
        with clinic.Session.begin() as db:
            db.add(AuditEntry(at=utcnow(), actor=str(actor), action="web_patients_list", patient_ref=None,
                              outcome="ok", detail_json=json.dumps({"count": len(out)}), is_read=True))
    return out


def _compute(clinic: Clinic, pks: Sequence[int], names: dict[int, str], *, today: dt.date,
             tz: dt.tzinfo | None, data_until: dict[int, dt.date]) -> dict[int, dict[str, Any]]:
    window_from = _local(today - dt.timedelta(days=WINDOW_DAYS - 1), dt.time(), tz)
    sessions: dict[int, list[dict[str, Any]]] = {pk: [] for pk in pks}
    prescriptions: dict[int, list[dict[str, Any]]] = {pk: [] for pk in pks}
    with clinic.Session() as db:
        for chunk in _chunks(pks, 500):
            for pk, kind, text in db.execute(
                    select(WebSessionDigest.patient_id, WebSessionDigest.kind, WebSessionDigest.digest_json)
                    .where(WebSessionDigest.patient_id.in_(chunk), WebSessionDigest.kind == "session",
                           WebSessionDigest.started_at >= window_from)):
                sessions[pk].append(json.loads(text))
            for pk, kind, text in db.execute(
                    select(WebSessionDigest.patient_id, WebSessionDigest.kind, WebSessionDigest.digest_json)
                    .where(WebSessionDigest.patient_id.in_(chunk), WebSessionDigest.kind == "prescription")
                    .order_by(WebSessionDigest.id)):
                prescriptions[pk].append(json.loads(text))
    return {pk: compute_row(names[pk], sessions[pk], prescriptions[pk], today=today, tz=tz,
                            data_until=data_until.get(pk)) for pk in pks}


def _chunks(items: Sequence[int], n: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _store_rows(clinic: Clinic, rows: dict[int, tuple[str, dict[str, Any]]]) -> None:
    if clinic.is_postgres:
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    values = [{"patient_id": pk, "cache_key": key, "row_json": json.dumps(data, ensure_ascii=False),
               "computed_at": utcnow()} for pk, (key, data) in rows.items()]
    with clinic.Session.begin() as db:
        for chunk in _chunks(values, 500):
            stmt = insert(WebPatientRow).values(list(chunk))
            db.execute(stmt.on_conflict_do_update(index_elements=["patient_id"], set_={
                "cache_key": stmt.excluded.cache_key, "row_json": stmt.excluded.row_json,
                "computed_at": stmt.excluded.computed_at}))


def _row(patient_id: str, data: dict[str, Any], *, devices: int, last_contact: dt.datetime | None,
         last_upload: dt.datetime | None, now: dt.datetime, tz: dt.tzinfo | None) -> PatientRow:
    """A row from its cached part and the live sync status: "no data for 3 days" says
    whether the device stopped reaching the clinic or the patient stopped training."""
    row = PatientRow(patient_id=patient_id, week_done=data["week_done"], week_due_so_far=data["week_due_so_far"],
                     per_week=data["per_week"], last_session=_when(data["last_session"]),
                     last_session_status=data["last_session_status"], sessions_window=data["sessions_window"],
                     adherence_window=data["adherence_window"], rx_id=data["rx_id"], devices=devices,
                     last_contact=last_contact, last_upload=last_upload,
                     flags=[FlagView(f["kind"], f["level"], f["values"]) for f in data["flags"]])
    row.flags = sync_flags(devices=devices, last_contact=last_contact, last_session=row.last_session,
                           now=now, tz=tz) + row.flags
    return row


def sync_flags(*, devices: int, last_contact: dt.datetime | None, last_session: dt.datetime | None,
               now: dt.datetime, tz: dt.tzinfo | None = None) -> list[FlagView]:
    """No data for QUIET_DAYS days or more, and why: no device paired; the device stopped
    reaching the clinic (its last request, whatever it carried, is older than that); or
    the device reaches the clinic but the last session is older than that (or none)."""
    quiet = dt.timedelta(days=QUIET_DAYS)
    day = lambda when: when.astimezone(tz).date().isoformat()  # noqa: E731
    if devices == 0:
        return [FlagView("no_device", "info", {})]
    if last_contact is None or now - last_contact >= quiet:
        return [FlagView("no_sync", "bad", {
            "since": day(last_contact) if last_contact else None,
            "days": (now - last_contact).days if last_contact else None,
            "last_session": day(last_session) if last_session else None})]
    if last_session is None or now - last_session >= quiet:
        return [FlagView("no_training", "bad", {
            "synced": day(last_contact), "last_session": day(last_session) if last_session else None,
            "days": (now - last_session).days if last_session else None})]
    return []


# ------------------------------------------------------------------------------ the list's query

SORTS = ("attention", "patient", "week", "last_session", "last_contact")


def sort_and_filter(rows: list[PatientRow], *, sort: str = "attention", descending: bool | None = None,
                    search: str = "", flagged_only: bool = False) -> list[PatientRow]:
    """The rows matching `search` (a part of the patient id, any case), only flagged ones
    if asked, in the order asked (`SORTS`; "attention": most urgent flags first)."""
    needle = search.strip().lower()
    out = [r for r in rows if needle in r.patient_id.lower()]
    if flagged_only:
        out = [r for r in out if any(f.level in ("bad", "warn") for f in r.flags)]
    never = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    keys: dict[str, Callable[[PatientRow], Any]] = {
        "attention": lambda r: (r.severity, r.patient_id),
        "patient": lambda r: r.patient_id.lower(),
        "week": lambda r: (r.week_ratio, r.patient_id),
        "last_session": lambda r: (r.last_session or never, r.patient_id),
        "last_contact": lambda r: (r.last_contact or never, r.patient_id),
    }
    if sort not in keys:
        sort = "attention"
    if descending is None:
        descending = sort == "attention"
    out.sort(key=keys[sort], reverse=descending)
    if sort == "attention" and descending:   # equal urgency: by patient id, A to Z
        out.sort(key=lambda r: r.patient_id)
        out.sort(key=lambda r: r.severity, reverse=True)
    return out


# ------------------------------------------------------------------------------ keeping it warm

#: Seconds between the background passes that keep every clinician's list computed
#: ($HOMEAPP_CLINIC_WEB_WARM_S; 0: none, every list computes what changed when viewed).
WARM_INTERVAL_S = float(os.environ.get("HOMEAPP_CLINIC_WEB_WARM_S", "60"))
_warmers: "weakref.WeakKeyDictionary[Clinic, Warmer]" = weakref.WeakKeyDictionary()
_warmers_lock = threading.Lock()


class PeriodicPasses:
    """A daemon thread (named `name`) that runs `_pass` every `interval_s` seconds until
    `stop`; `_pass` may ask for a shorter wait before the next one. A failing pass is
    logged (`failure`, under the subclass's module) and tried again after `interval_s`."""

    failure = "a background pass failed (retried next pass)"

    def __init__(self, *, interval_s: float, name: str) -> None:
        self.interval_s = interval_s
        self.passes = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _pass(self) -> float:
        """One pass; returns the seconds to wait before the next."""
        raise NotImplementedError

    def _run(self) -> None:
        import logging
        delay = self.interval_s
        while not self._stop.wait(delay):
            try:
                delay = self._pass()
            except Exception:
                logging.getLogger(type(self).__module__).exception(self.failure)
                delay = self.interval_s


class Warmer(PeriodicPasses):
    """A daemon thread that, every `interval_s`, digests what devices uploaded and
    recomputes the rows whose key changed, for every clinician: after the evening's
    syncs (1,000 devices: a few seconds of work) the first clinician of the morning finds
    the list ready instead of waiting for it. Failures are logged and retried next pass."""

    failure = "warming the patient lists failed (retried next pass)"

    def __init__(self, clinic: Clinic, *, interval_s: float) -> None:
        self.clinic = clinic
        self.charts: Any = None     # the charts' pre-draw started beside it (ensure_warmer)
        super().__init__(interval_s=interval_s, name="clinic-web-warmer")

    def run_once(self) -> int:
        """One pass over every clinician; returns the patients listed."""
        from ..models import Clinician
        with self.clinic.Session() as db:
            clinicians = db.execute(select(Clinician.id, Clinician.username)).all()
        listed = 0
        for cid, name in clinicians:
            listed += len(patient_rows(self.clinic, Actor("clinician", name, cid), audit=False))
        self.passes += 1
        return listed

    def _pass(self) -> float:
        self.run_once()
        return self.interval_s


def ensure_warmer(clinic: Clinic) -> Warmer | None:
    """The clinic's background warmer, started on first use (None when WARM_INTERVAL_S is
    0), and beside it the review charts' pre-draw (`charts.ChartWarmer`, as `.charts`):
    with `serve --workers N` both run in the supervising process, once for the clinic."""
    if WARM_INTERVAL_S <= 0:
        return None
    with _warmers_lock:
        warmer = _warmers.get(clinic)
        if warmer is None:
            from . import charts
            warmer = _warmers[clinic] = Warmer(clinic, interval_s=WARM_INTERVAL_S).start()
            if charts.PREDRAW_ENABLED:
                warmer.charts = charts.ChartWarmer(clinic, interval_s=WARM_INTERVAL_S).start()
        return warmer
