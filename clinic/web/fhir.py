"""A patient's sessions as an HL7 FHIR R4 (4.0.1) Bundle (type `collection`), built with
the `fhir.resources` models, so a hospital record system can take them in.

Why R4B models make an R4 Bundle: fhir.resources (pydantic v2) ships R4B (4.3) and R5
models, no R4 ones. Every element this module emits (in Bundle, Patient, Device,
ServiceRequest, Procedure, Observation and the data types they use) has the same name,
type, cardinality and binding in R4 4.0.1 and R4B 4.3.0 (compared in HL7's
StructureDefinitions: docs/clinic-web.md), and nothing of R4B's additions is used, so the
Bundle is R4. tests/clinic_web/test_web_fhir.py holds that: the export validates with
fhircraft's R4 models (a test-only dependency; the application never imports it).

What carries what:
- Patient: the clinic's patient id (identifier system `urn:homeapp:patient-id`).
- Device: each paired device, by its key id (`urn:homeapp:device-key-id`) and software version.
- ServiceRequest: each prescription (the clinician's order for home NMES): its id, when it
  was issued, its validity, sessions a week, the signing key, and the program as text.
- Procedure: each session: status (completed; stopped, aborted, interrupted as
  `stopped` with the reason in `statusReason`), the period it ran, the prescription it
  followed (`basedOn`), the device (`focalDevice`), e-stops, faults and electrode
  problems (`complication`), how it ended (`outcome`), the patient's comment (`note`).
- Observation (each `partOf` its Procedure, `device` the stimulator):
  pain after the session, 0-10 (LOINC 72514-3); effort, Borg CR10 (text code);
  contractions completed of planned (valueInteger, with the plan in `note`);
  the highest intensity per channel (valueQuantity in mA, UCUM `mA`).
Every resource has a generated narrative (`text`): one line a person can read.
Ids are stable (UUID 5 of patient, session or prescription), so sending the same
sessions twice names the same resources.
"""
from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import Any, Mapping, Sequence

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.device import Device, DeviceVersion
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.narrative import Narrative
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.procedure import Procedure, ProcedureFocalDevice
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from homeapp.bundle import parse_when
from homeapp.report import Review

from ..service import ClinicError

#: The FHIR release the Bundle is valid as, and what the HTTP answer says it is (the
#: mime-type parameter `fhirVersion` names the release by major.minor: R4 4.0.1 is 4.0).
FHIR_VERSION = "4.0.1"
MEDIA_TYPE = f"application/fhir+json; fhirVersion={FHIR_VERSION.rsplit('.', 1)[0]}"

NAMESPACE = uuid.UUID("6f1b9c1e-7a8e-4d8e-9a55-2b7f4f0c9d11")
SYSTEM = "urn:homeapp"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INCIDENTS = {"estop": "e-stop pressed", "fault": "stimulator fault", "watchdog": "watchdog stop",
             "lead_off": "electrode came off"}


class NotValidFHIR(ClinicError):
    """The sessions cannot be written as valid FHIR (a value the models refuse, such as a
    date that is no FHIR dateTime): nothing is exported, and the message names the record
    and the element."""

    status = 500


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def _ref(kind: str, ident: str) -> Reference:
    return Reference(reference=f"urn:uuid:{ident}", type=kind)


def _text(text: str, code: str | None = None) -> CodeableConcept:
    coding = [Coding(system=f"{SYSTEM}:code", code=code, display=text)] if code else None
    return CodeableConcept(text=text, coding=coding)


def _narrative(line: str) -> Narrative:
    """The resource's human-readable summary: one line of XHTML."""
    return Narrative(status="generated",
                     div=f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(line, quote=False)}</div>')


def _category(code: str) -> list[CodeableConcept]:
    return [CodeableConcept(coding=[Coding(system=OBS_CATEGORY, code=code)])]


def _instant(text: Any) -> str | None:
    """A logged time as a FHIR dateTime to the second (naive: UTC), or None. Text that is
    no ISO time is given as it is, for the models to refuse by name (NotValidFHIR)."""
    if not text:
        return None
    try:
        return parse_when(text).isoformat(timespec="seconds")
    except ValueError:
        return str(text)


def sessions_bundle(patient_id: str, review: Review, devices: Sequence[Mapping[str, Any]], *,
                    now: dt.datetime | None = None) -> Bundle:
    """The Bundle of `review`'s sessions and prescriptions (see the module's table).

    Each resource is validated by its model as it is built; a value the models refuse
    raises NotValidFHIR naming the record and the element (so nothing invalid leaves)."""
    where = [f"patient {patient_id}"]
    try:
        return _build(patient_id, review, devices, now or dt.datetime.now(dt.timezone.utc), where)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            element = ".".join([e.title, *(str(p) for p in err.get("loc", ()))])
            given = err.get("input")   # the value itself, when it is one (not a whole element)
            shown = f" (given: {given!r})" if isinstance(given, (str, int, float)) else ""
            problems.append(f"{element}: {err.get('msg')}{shown}")
        raise NotValidFHIR(f"The sessions cannot be written as valid HL7 FHIR R4 ({where[-1]}): "
                           "nothing was exported.", problems) from e


def _build(patient_id: str, review: Review, devices: Sequence[Mapping[str, Any]], now: dt.datetime,
           where: list[str]) -> Bundle:
    entries: list[BundleEntry] = []

    def add(resource) -> None:
        entries.append(BundleEntry(fullUrl=f"urn:uuid:{resource.id}", resource=resource))

    pid = _uuid("patient", patient_id)
    add(Patient(id=pid, text=_narrative(f"Patient {patient_id} of the clinic's home NMES service"),
                identifier=[Identifier(system=f"{SYSTEM}:patient-id", value=patient_id)]))
    device_ids: dict[str, str] = {}
    for d in devices:
        where.append(f"device {d['key_id']}")
        ident = _uuid("device", d["key_id"])
        device_ids[d["key_id"]] = ident
        version = d.get("software_version")
        add(Device(
            id=ident, text=_narrative(f"Home NMES trainer, key {d['key_id']}"
                                      + (f", software {version}" if version else "")),
            identifier=[Identifier(system=f"{SYSTEM}:device-key-id", value=d["key_id"])],
            status="active", type=_text("home NMES trainer", "nmes-trainer"),
            version=[DeviceVersion(value=version)] if version else None,
            patient=_ref("Patient", pid)))
    device_ref = _ref("Device", device_ids[devices[-1]["key_id"]]) if devices else None
    orders: dict[str, str] = {}
    for p in review.prescriptions:
        src = p.get("source") if isinstance(p.get("source"), dict) else p
        rx_id = str(src.get("id"))
        where.append(f"prescription {rx_id}")
        ident = _uuid("prescription", patient_id, rx_id, str(p.get("sha256") or ""))
        orders[rx_id] = ident
        sig = src.get("signature") if isinstance(src.get("signature"), dict) else {}
        blocks = "; ".join(f"{b.get('label', 'block')} {_v(b, 'minutes')} min {_v(b, 'hz')} Hz {_v(b, 'pulse_us')} µs "
                           f"on {_v(b, 'on_s')} s off {_v(b, 'off_s')} s" for b in src.get("blocks") or ())
        caps = "; ".join(f"channel {i} {c.get('label', '')} cap {c.get('max_ma')} mA"
                         for i, c in enumerate(src.get("channels") or ()))
        instruction = (f"{src.get('sessions_per_week')} sessions a week, at most "
                       f"{src.get('max_sessions_per_day')} a day. {blocks}. {caps}.")
        add(ServiceRequest(
            id=ident, text=_narrative(f"Home NMES program {rx_id}: {instruction}"),
            identifier=[Identifier(system=f"{SYSTEM}:prescription-id", value=rx_id)],
            status="active", intent="order", code=_text("home NMES training program", "nmes-program"),
            subject=_ref("Patient", pid), authoredOn=str(src.get("issued")) if src.get("issued") else None,
            occurrencePeriod=Period(start=src.get("valid_from") or src.get("issued"), end=src.get("expires")),
            patientInstruction=instruction,
            note=[Annotation(text=f"signed by clinician key {sig.get('key_id')}")] if sig.get("key_id") else None))
    for s, row in zip(review.sessions, review.rows):
        sid = str(s.get("id"))
        where.append(f"session {sid}")
        ident = _uuid("session", patient_id, sid)
        status = "completed" if s.get("status") == "completed" else "stopped"
        complications = [_text(f"{INCIDENTS[k]} at {float(e.get('t') or 0):.0f} s", k)
                         for e in s.get("events") or () if isinstance(e, Mapping)
                         for k in [e.get("kind")] if k in INCIDENTS]
        rx_ref = orders.get(str(s.get("prescription_id")))
        started, ended = _instant(s.get("started_at")), _instant(s.get("ended_at"))
        add(Procedure(
            id=ident, text=_narrative(f"Home NMES session {sid}, {started} to {ended or '?'}: {row.ended}"),
            identifier=[Identifier(system=f"{SYSTEM}:session-id", value=sid)],
            status=status,
            statusReason=None if status == "completed" else _text(row.ended, str(s.get("status"))),
            code=_text("home NMES training session", "nmes-session"),
            subject=_ref("Patient", pid),
            performedPeriod=Period(start=started, end=ended),
            basedOn=[_ref("ServiceRequest", rx_ref)] if rx_ref else None,
            focalDevice=[ProcedureFocalDevice(manipulated=device_ref)] if device_ref else None,
            complication=complications or None,
            outcome=_text(row.ended),
            note=[Annotation(text=f"patient's comment: {row.comment}")] if row.comment else None))
        base = {"status": "final", "subject": _ref("Patient", pid), "partOf": [_ref("Procedure", ident)],
                "effectiveDateTime": started, "device": device_ref}
        if row.pain is not None:
            add(Observation(
                id=_uuid("pain", patient_id, sid), **base, category=_category("survey"),
                text=_narrative(f"Pain after session {sid}: {int(row.pain)}/10"),
                code=CodeableConcept(coding=[Coding(system=LOINC, code="72514-3",
                                                    display="Pain severity - 0-10 verbal numeric rating [Score] - Reported")],
                                     text="pain after the session, 0-10"),
                valueInteger=int(row.pain)))
        if row.effort is not None:
            add(Observation(
                id=_uuid("effort", patient_id, sid), **base, category=_category("survey"),
                text=_narrative(f"Perceived effort after session {sid}: {float(row.effort):g} (Borg CR10)"),
                code=_text("perceived effort, Borg CR10 (0-10)", "borg-cr10"),
                valueQuantity=Quantity(value=float(row.effort), unit="Borg CR10")))
        add(Observation(
            id=_uuid("contractions", patient_id, sid), **base, category=_category("therapy"),
            text=_narrative(f"Contractions completed in session {sid}: {int(row.done)} of {row.planned} planned"),
            code=_text("contractions completed (most on any channel)", "contractions-completed"),
            valueInteger=int(row.done), note=[Annotation(text=f"{row.planned} planned per channel")]))
        for ch, peak in enumerate(row.peak_ma):
            if peak is None:
                continue
            add(Observation(
                id=_uuid("peak", patient_id, sid, str(ch)), **base, category=_category("therapy"),
                text=_narrative(f"Highest intensity on channel {ch} in session {sid}: {float(peak):g} mA"),
                code=_text(f"highest stimulation intensity, channel {ch}", f"peak-ma-channel-{ch}"),
                valueQuantity=Quantity(value=float(peak), unit="mA", system=UCUM, code="mA")))
    where.append("the Bundle")
    return Bundle(id=_uuid("bundle", patient_id, now.isoformat()), type="collection",
                  timestamp=now.isoformat(timespec="seconds"), entry=entries)


def _v(block: Mapping[str, Any], key: str) -> Any:
    x = block.get(key)
    return x.get("value") if isinstance(x, Mapping) else x


def bundle_json(bundle: Bundle) -> str:
    """The Bundle as FHIR JSON (absent elements left out)."""
    return bundle.model_dump_json(exclude_none=True, indent=1)
