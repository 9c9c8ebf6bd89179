"""A demo clinic of generated patients (`homeapp-clinic demo`), for trying the pages, the
screenshots, the tests and the figures.

The data goes in through the real ingest path: each patient's device is paired with a
pairing code (`Clinic.pair_device`) and uploads its log as the device does, records in
the device's own line format (`homeapp.sync.record_line`, hash-chained) closed by an end
line signed with the device's Ed25519 key, stored by `Clinic.ingest` (which checks chain
and signature). Only the HTTP signature of the request is skipped. Prescriptions are
signed with the demo clinician's key and published through `Clinic.publish_prescription`;
the device's answer through `Clinic.prescription_status`.

Everything is drawn from `random.Random(seed)`, and days count back from `today`: the same
seed and today give the same clinic. The first patients show each situation a clinician
acts on; the rest ("mixed", "mixed_low") train four to six days a week, or two or three
("daily", every day, is for the figures):

    DEMO-001  adherent, progressing slowly (nothing to flag)
    DEMO-002  in pain: 7/10 after recent sessions, rising
    DEMO-003  faulty electrode: the left electrode comes off, sessions stopped early
    DEMO-004  ready to progress: at the cap in most sessions, low pain, every session done
    DEMO-005  the device stopped syncing five days ago
    DEMO-006  trains rarely (two of five a week)
    DEMO-007  stopped training four days ago, the device still syncs
    DEMO-008  e-stop pressed, and a fault of the stimulator
    DEMO-009  new patient, no device paired yet
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from homeapp import syncproto
from homeapp.bundle import GENESIS
from homeapp.sync import record_line
from schedules.signing import key_id, sign_prescription

from ..service import CLI, Clinic, DeviceRef, DeviceRequest

UTC = dt.timezone.utc
#: The demo clinicians' password (printed by the command; a demo is not a clinic).
DEMO_PASSWORD = "demo clinic password"
DEMO_CLINICIAN = "demo"
OTHER_CLINICIAN = "other"

#: Situations of the first patients, in order (the rest are "mixed" or "mixed_low").
PROFILES = ("adherent", "pain", "electrode", "progress", "no_sync", "low", "stopped", "estop", "new")


@dataclass
class Program:
    """The demo prescription: two quadriceps channels, one block of `minutes`."""

    rx_id: str
    patient_id: str
    issued: dt.date
    sessions_per_week: int = 5
    caps_ma: tuple[int, int] = (60, 55)
    minutes: int = 15
    on_s: int = 6
    off_s: int = 12

    @property
    def contractions(self) -> int:
        return self.minutes * 60 // (self.on_s + self.off_s)

    def source(self, clinician: str) -> dict[str, Any]:
        return {"format": "homeapp.prescription/1", "id": self.rx_id, "patient_id": self.patient_id,
                "clinician_id": clinician, "issued": self.issued.isoformat(),
                "expires": (self.issued + dt.timedelta(days=365)).isoformat(),
                "sessions_per_week": self.sessions_per_week, "max_sessions_per_day": 1, "min_hours_between": 12,
                "supervision": "none",
                "channels": [{"label": "left quadriceps", "max_ma": self.caps_ma[0]},
                             {"label": "right quadriceps", "max_ma": self.caps_ma[1]}],
                "blocks": [{"label": "strength", "minutes": self.minutes, "hz": 35, "pulse_us": 300,
                            "on_s": self.on_s, "off_s": self.off_s, "ramp_up_s": 1.5, "ramp_down_s": 1}]}


@dataclass
class History:
    """One patient's device log as the device's export holds it, and when it last synced."""

    patient_id: str
    profile: str
    prescriptions: list[dict[str, Any]] = field(default_factory=list)   # store rows with `source`
    sessions: list[dict[str, Any]] = field(default_factory=list)        # export shape
    last_sync: dt.datetime | None = None                                # None: no device


def _iso(when: dt.datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


COMMENTS = {
    "pain": ["it burns under the left pad", "sore afterwards, worse than last week", "knee aches all evening"],
    "electrode": ["the left pad keeps coming loose", "beeped about the electrode again", "pad does not stick"],
    "adherent": ["felt strong today", "easy", "good session", "walked to the shop after"],
    "progress": ["too easy now", "could go higher", "no problem at all"],
}


def history(profile: str, patient_id: str, *, rng: random.Random, today: dt.date, days: int,
            clinician: str, contractions: bool = True, synced_by: dt.datetime | None = None) -> History:
    """A generated log of `days` days up to `today` for one situation (`PROFILES`). The
    device last synced up to ten hours before `synced_by` (default `today` at 07:30 UTC),
    five days earlier for a device that stopped syncing."""
    first = today - dt.timedelta(days=days - 1)
    program = Program(rx_id=f"rx-{patient_id.lower()}-1", patient_id=patient_id, issued=first)
    h = History(patient_id, profile)
    if profile == "new":
        return h
    src = program.source(clinician)
    canonical = json.dumps(src, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    h.prescriptions.append({"id": program.rx_id, "sha256": hashlib.sha256(canonical.encode()).hexdigest(),
                            "patient_id": patient_id, "clinician_id": clinician, "issued": src["issued"],
                            "expires": src["expires"], "signature_key_id": None, "source": src,
                            "imported_at": _iso(dt.datetime.combine(first, dt.time(8, 0), UTC))})
    per_week = {"low": 2, "mixed_low": rng.choice((2, 3)), "mixed": rng.choice((6, 6, 5, 4)), "daily": 7}.get(profile, 5)
    stop_training = today - dt.timedelta(days=4) if profile == "stopped" else None
    synced_by = synced_by or dt.datetime.combine(today, dt.time(7, 30), UTC)
    last_sync = synced_by - dt.timedelta(hours=rng.randint(0, 10))
    if profile == "no_sync":
        last_sync -= dt.timedelta(days=5)
    h.last_sync = last_sync
    level = [rng.uniform(22, 30), rng.uniform(20, 28)]
    starts: list[dt.datetime] = []
    day = first
    while day <= today:
        week_slots = _week_days(rng, day, per_week)
        for offset in range(7):
            d = day + dt.timedelta(days=offset)
            if d > today:
                break
            if offset not in week_slots or (stop_training and d >= stop_training):
                continue
            start = dt.datetime.combine(d, dt.time(rng.randint(8, 18), rng.randint(0, 59)), UTC)
            if start < last_sync:       # later ones are not uploaded yet
                starts.append(start)
        day += dt.timedelta(days=7)
    # the situation shows for sure in the last sessions, whatever the draws
    forced = {"estop": {2: "estop", 4: "fault"}, "electrode": {1: "lead_off", 3: "lead_off"},
              "pain": {1: "pain", 2: "pain"}}.get(profile, {})
    for n, start in enumerate(starts):
        recent = (today - start.date()).days < 12
        h.sessions.append(_session(profile, program, n, start, rng, level, recent=recent,
                                   contractions=contractions, force=forced.get(len(starts) - n)))
    return h


def _week_days(rng: random.Random, monday: dt.date, per_week: int) -> set[int]:
    """Which days of the week starting `monday` the patient trains (offsets 0-6)."""
    return set(rng.sample(range(7), min(7, per_week)))


def _session(profile: str, program: Program, n: int, start: dt.datetime, rng: random.Random, level: list[float],
             *, recent: bool, contractions: bool, force: str | None = None) -> dict[str, Any]:
    sid = f"{program.patient_id.lower()}-{start:%Y%m%d-%H%M}"
    planned = program.contractions
    caps = program.caps_ma
    # intensity creeps up a little each session, within the caps
    for ch in range(2):
        step = 0.9 if profile == "progress" else 0.35
        level[ch] = min(caps[ch], level[ch] + rng.uniform(0, step))
    status, reason = "completed", "program complete"
    done = planned
    events: list[dict[str, Any]] = [{"t": 0.0, "kind": "start", "detail": {"caregiver_unlocked": False}}]
    cut_channel = None
    pain = rng.choice((0, 1, 1, 2, 2, 3))
    comment = None
    if profile == "pain":
        pain = rng.choice((6, 7, 7, 8)) if recent or force else rng.choice((2, 3, 3, 4))
        if recent and rng.random() < 0.35:
            status, reason, done = "stopped", "stopped by the patient", rng.randint(planned // 3, planned - 5)
            comment = "had to stop, too painful"
        elif recent and rng.random() < 0.6:
            comment = rng.choice(COMMENTS["pain"])
    elif profile == "electrode" and (force == "lead_off" or recent and rng.random() < 0.7):
        cut_channel = 0
        t = rng.uniform(60, program.minutes * 60 - 60)
        events.append({"t": round(t, 3), "kind": "lead_off", "detail": {"channel": 0}})
        events.append({"t": round(t, 3), "kind": "pause", "detail": {"reason": "lead_off"}})
        status, reason = "stopped", "stopped by the patient"
        done = int(t // (program.on_s + program.off_s))
        if rng.random() < 0.6:
            comment = rng.choice(COMMENTS["electrode"])
    elif profile == "estop" and (force == "estop" or recent and not force and rng.random() < 0.3):
        t = rng.uniform(30, 300)
        events.append({"t": round(t, 3), "kind": "estop", "detail": {"source": "button"}})
        status, reason = "aborted", "e-stop pressed"
        done = int(t // (program.on_s + program.off_s))
    elif profile == "estop" and (force == "fault" or recent and not force and rng.random() < 0.2):
        t = rng.uniform(30, 500)
        events.append({"t": round(t, 3), "kind": "fault", "detail": {"error": "board reports over-current on channel 1",
                                                                      "type": "BoardFault"}})
        status, reason = "aborted", "fault"
        done = int(t // (program.on_s + program.off_s))
    elif profile == "progress":
        pain = rng.choice((0, 1, 1, 2))
        if rng.random() < 0.2:
            comment = rng.choice(COMMENTS["progress"])
    elif rng.random() < 0.08:
        comment = rng.choice(COMMENTS["adherent"])
    peaks = []
    contraction_list = []
    for ch in range(2):
        target = level[ch] if profile != "progress" or n < 6 else caps[ch]
        peak = round(min(caps[ch], target + rng.uniform(-1.5, 1.0)), 1)
        peaks.append(peak)
        events.append({"t": 20.0 + ch, "kind": "intensity", "detail": {"channel": ch, "ma": peak}})
        if contractions:
            for k in range(done):
                t0 = 10.0 + k * (program.on_s + program.off_s)
                contraction_list.append({"channel": ch, "index": k, "start_t": round(t0, 3),
                                         "end_t": round(t0 + program.on_s + 2.5, 3),
                                         "peak_ma": round(min(caps[ch], peak - rng.uniform(0, 0.6)), 1),
                                         "completed": True})
            if status != "completed" and (cut_channel is None or cut_channel == ch):
                t0 = 10.0 + done * (program.on_s + program.off_s)
                contraction_list.append({"channel": ch, "index": -1, "start_t": round(t0, 3),
                                         "end_t": round(t0 + 2.0, 3), "peak_ma": peak, "completed": False})
    duration_s = (program.minutes * 60 + 30) if status == "completed" else done * (program.on_s + program.off_s) + 15
    events.append({"t": float(duration_s), "kind": "end", "detail": {"status": status, "reason": reason}})
    ended = start + dt.timedelta(seconds=duration_s)
    effort = min(10.0, max(0.0, round(rng.uniform(2, 5) * 2) / 2 + (1.5 if pain >= 6 else 0)))
    channels = []
    for ch in range(2):
        mine = [c for c in contraction_list if c["channel"] == ch]
        full = [c["peak_ma"] for c in mine if c["completed"]]
        channels.append({"contractions": done, "peak_ma": peaks[ch],
                         "mean_ma": round(sum(full) / len(full), 2) if full else peaks[ch],
                         "contractions_cut_short": len(mine) - len(full) if contractions else 0})
    return {"id": sid, "prescription_id": program.rx_id, "prescription_sha256": None,
            "started_at": _iso(start), "ended_at": _iso(ended), "status": status,
            "planned_contractions": planned, "channels": channels, "events": events,
            "contraction_list": contraction_list,
            "report": {"pain": pain, "effort": effort, "comment": comment,
                       "reported_at": _iso(ended + dt.timedelta(minutes=2))},
            "recovered_at": None}


# ------------------------------------------------------------------------------ into a clinic

def _device_key(rng: random.Random) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(rng.getrandbits(8) for _ in range(32)))


def chain_lines(h: History, *, device_key_id: str, created_at: dt.datetime) -> list[tuple[int, str, str]]:
    """(seq, line, hash) of the device's log chain, as the device's outbox builds it."""
    out: list[tuple[int, str, str]] = []
    prev = GENESIS

    def append(kind: str, data: dict[str, Any]) -> None:
        nonlocal prev
        seq = len(out)
        line, prev = record_line(seq, kind, data, prev)
        out.append((seq, line, prev))

    append("header", {"format": syncproto.LOG_FORMAT, "device_key_id": device_key_id,
                      "created_at": _iso(created_at), "since": None})
    for rx in h.prescriptions:
        append("prescription", rx)
    for s in h.sessions:
        sid = s["id"]
        append("session", {k: v for k, v in s.items() if k not in ("events", "contraction_list", "report", "reports")})
        for child in s["contraction_list"]:
            append("contraction", {"session_id": sid, **child})
        for child in s["events"]:
            append("event", {"session_id": sid, **child})
        if s.get("report"):
            append("report", {"session_id": sid, **s["report"]})
    return out


def upload(clinic: Clinic, h: History, device_key: Ed25519PrivateKey, device: DeviceRef, *,
           at: dt.datetime, lines: list[tuple[int, str, str]], batch: int = 4000) -> None:
    """Send the chain through `Clinic.ingest` in uploads of at most `batch` records, each
    closed by an end line the device signs, as the device's sync does."""
    kid = device.key_id
    for i in range(0, len(lines), batch):
        part = lines[i:i + batch]
        count, head = part[-1][0], part[-1][2]
        signature = device_key.sign(syncproto.end_payload(kid, count, head))
        end = {"kind": "end", "count": count, "head": head, "device_key_id": kid,
               "signature": base64.b64encode(signature).decode("ascii")}
        body = ("\n".join(line for _, line, _ in part) + "\n" + json.dumps(end) + "\n").encode("utf-8")
        req = DeviceRequest(device=device, key_id=kid, nonce=secrets.token_hex(16), at=at,
                            public_key=device_key.public_key())
        clinic.ingest(req, body)


def _clinician_key(seed: int, name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"demo {seed} {name}".encode()).digest())


def synced_by_at(now: dt.datetime) -> dt.datetime:
    """The latest a demo made at `now` lets a device have synced: 07:30 UTC that day, or
    `now` in the small hours before it (a demo's syncs are never in the future)."""
    return min(now, dt.datetime.combine(now.date(), dt.time(7, 30), UTC))


def fill(clinic: Clinic, *, patients: int = 30, days: int = 60, seed: int = 7, today: dt.date | None = None,
         contractions: bool = True, other_patients: int = 3,
         progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Fill `clinic` with the demo: clinician `demo` with `patients` patients (the
    situations of PROFILES first), clinician `other` with `other_patients` of their own.
    Returns what was made (names, patient ids and profiles, the clinicians' key ids, the
    devices' private keys by patient, for a demo device or a test to upload more)."""
    from cryptography.hazmat.primitives import serialization
    rng = random.Random(seed)
    # Made today, the demo's syncs are all in the past: before 07:30 UTC they end now.
    now = dt.datetime.now(UTC)
    synced_by = None if today else synced_by_at(now)
    today = today or now.date()
    made: dict[str, Any] = {"clinicians": {}, "patients": {}, "password": DEMO_PASSWORD, "device_keys": {}}
    for name in (DEMO_CLINICIAN, OTHER_CLINICIAN):
        try:
            clinic.clinician(name)
        except Exception:
            clinic.add_clinician(name, DEMO_PASSWORD)
        key = _clinician_key(seed, name)
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        made["clinicians"][name] = clinic.add_clinician_key(name, pem)
    plan = [(DEMO_CLINICIAN, f"DEMO-{i + 1:03d}", PROFILES[i] if i < len(PROFILES)
             else ("mixed_low" if rng.random() < 0.2 else "mixed")) for i in range(patients)]
    plan += [(OTHER_CLINICIAN, f"OTHER-{i + 1:03d}", "mixed") for i in range(other_patients)]
    for clinician, patient_id, profile in plan:
        if progress:
            progress(patient_id)
        h = history(profile, patient_id, rng=rng, today=today, days=days, clinician=clinician,
                    contractions=contractions, synced_by=synced_by)
        device_key = _device_key(rng)
        add_history(clinic, h, clinician=clinician, device_key=device_key,
                    clinician_key=_clinician_key(seed, clinician), rng=rng)
        made["patients"][patient_id] = profile
        if h.prescriptions:
            made["device_keys"][patient_id] = device_key
    return made


def add_history(clinic: Clinic, h: History, *, clinician: str, device_key: Ed25519PrivateKey,
                clinician_key: Ed25519PrivateKey, rng: random.Random) -> None:
    """One patient: added, their device paired and its log uploaded, their prescription
    published and installed."""
    clinic.add_patient(h.patient_id, clinician)
    if not h.prescriptions:
        return
    code, _ = clinic.new_pairing_code(CLI, h.patient_id)
    public = device_key.public_key()
    kid = key_id(public)
    version = rng.choice(("0.1.0", "0.1.0", "0.1.1"))
    clinic.pair_device(code, public, software_version=version,
                       req=DeviceRequest(device=None, key_id=kid, nonce=secrets.token_hex(16),
                                         at=dt.datetime.now(UTC), public_key=public))
    with clinic.Session() as db:
        from ..models import Device
        d = db.query(Device).filter(Device.key_id == kid).one()
        ref = DeviceRef(id=d.id, key_id=d.key_id, public_key_b64=d.public_key_b64, patient_id=d.patient_id)
    # the prescription the clinician signed and published, and the device's answer
    src = h.prescriptions[0]["source"]
    signed = sign_prescription(src, clinician_key)
    h.prescriptions[0]["source"] = signed
    h.prescriptions[0]["signature_key_id"] = signed["signature"]["key_id"]
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    h.prescriptions[0]["sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
    for s in h.sessions:
        s["prescription_sha256"] = h.prescriptions[0]["sha256"]
    published = clinic.publish_prescription(CLI, h.patient_id, json.dumps(signed).encode("utf-8"))
    lines = chain_lines(h, device_key_id=kid, created_at=dt.datetime.combine(
        dt.date.fromisoformat(src["issued"]), dt.time(8, 0), UTC))
    upload(clinic, h, device_key, ref, at=h.last_sync or dt.datetime.now(UTC), lines=lines)
    clinic.prescription_status(DeviceRequest(device=ref, key_id=kid, nonce=secrets.token_hex(16),
                                             at=dt.datetime.now(UTC), public_key=public),
                               published["sha256"], "installed", None)
    # the demo's history began weeks ago: date the publication and installation then, and
    # the device's last contact as the profile says
    from ..models import Device, PublishedPrescription
    issued = dt.datetime.combine(dt.date.fromisoformat(src["issued"]), dt.time(8, 0), UTC)
    with clinic.Session.begin() as db:
        for row in db.query(PublishedPrescription).filter(PublishedPrescription.sha256 == published["sha256"]):
            row.published_at = issued - dt.timedelta(hours=2)
            row.device_status_at = issued - dt.timedelta(minutes=30)
        d = db.get(Device, ref.id)
        d.paired_at = issued - dt.timedelta(hours=3)
        d.last_seen_at = d.last_upload_at = h.last_sync
