"""A patient's sessions as an HL7 FHIR R4 (4.0.1) Bundle (type `collection`), built with
fhircraft's R4 models, so a hospital record system can take them in.

Why these models: the R4 models are pydantic v2 classes generated from the R4 4.0.1
StructureDefinitions (`fhircraft.fhir.resources.datatypes.R4`), so every resource is
checked as it is built: unknown elements are refused, required elements and cardinalities
enforced, each value's type checked, and the R4 invariants (FHIRPath) evaluated. Nothing
here builds a dictionary by hand. docs/clinic-web.md argues the choice.

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

fhircraft is imported on the first export, not with this module: importing it builds the
models of every FHIR release it ships (R4, R4B, R5), seconds of CPU that a server start
and every page's test would otherwise pay.
"""
from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from pydantic import ValidationError

from homeapp.report import Review

from ..service import ClinicError

if TYPE_CHECKING:   # the real import is in _r4(), on first use
    from fhircraft.fhir.resources.datatypes.R4.core import Bundle

#: The FHIR release the Bundle is, and what the HTTP answer says it is (the mime-type
#: parameter `fhirVersion` names the release by major.minor: R4 4.0.1 is 4.0).
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
    """The sessions cannot be written as valid FHIR R4 (a value the R4 models refuse):
    nothing is exported, and the message names the record and the element."""

    status = 500


def _r4():
    """fhircraft's R4 (4.0.1) resource and data type models, imported on first use."""
    from fhircraft.fhir.resources.datatypes.R4 import complex as types, core as resources
    return resources, types


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join(parts)))


def _instant(text: Any) -> str | None:
    if not text:
        return None
    when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.isoformat(timespec="seconds")


def sessions_bundle(patient_id: str, review: Review, devices: Sequence[Mapping[str, Any]], *,
                    now: dt.datetime | None = None) -> "Bundle":
    """The R4 Bundle of `review`'s sessions and prescriptions (see the module's table).

    Each resource is validated against R4 as it is built; a value the models refuse
    raises NotValidFHIR naming the record and the element (so nothing invalid leaves)."""
    where = [f"patient {patient_id}"]
    try:
        return _build(patient_id, review, devices, now or dt.datetime.now(dt.timezone.utc), where)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            element = ".".join([e.title, *(str(p) for p in err.get("loc", ()))])
            problems.append(f"{element}: {err.get('msg')}")
        raise NotValidFHIR(f"The sessions cannot be written as valid HL7 FHIR R4 ({where[-1]}): "
                           "nothing was exported.", problems) from e


def _build(patient_id: str, review: Review, devices: Sequence[Mapping[str, Any]], now: dt.datetime,
           where: list[str]) -> "Bundle":
    r4, t = _r4()

    def ref(kind: str, ident: str):
        return t.Reference(reference=f"urn:uuid:{ident}", type=kind)

    def text(words: str, code: str | None = None):
        coding = [t.Coding(system=f"{SYSTEM}:code", code=code, display=words)] if code else None
        return t.CodeableConcept(text=words, coding=coding)

    def narrative(line: str):
        return t.Narrative(status="generated",
                           div=f'<div xmlns="http://www.w3.org/1999/xhtml">{html.escape(line, quote=False)}</div>')

    def category(code: str):
        return [t.CodeableConcept(coding=[t.Coding(system=OBS_CATEGORY, code=code)])]

    entries: list = []

    def add(resource) -> None:
        entries.append(r4.BundleEntry(fullUrl=f"urn:uuid:{resource.id}", resource=resource))

    pid = _uuid("patient", patient_id)
    add(r4.Patient(id=pid, text=narrative(f"Patient {patient_id} of the clinic's home NMES service"),
                   identifier=[t.Identifier(system=f"{SYSTEM}:patient-id", value=patient_id)]))
    device_ids: dict[str, str] = {}
    for d in devices:
        where.append(f"device {d['key_id']}")
        ident = _uuid("device", d["key_id"])
        device_ids[d["key_id"]] = ident
        version = d.get("software_version")
        add(r4.Device(
            id=ident, text=narrative(f"Home NMES trainer, key {d['key_id']}"
                                     + (f", software {version}" if version else "")),
            identifier=[t.Identifier(system=f"{SYSTEM}:device-key-id", value=d["key_id"])],
            status="active", type=text("home NMES trainer", "nmes-trainer"),
            version=[r4.DeviceVersion(value=version)] if version else None,
            patient=ref("Patient", pid)))
    device_id = device_ids[devices[-1]["key_id"]] if devices else None

    def device_ref():   # a new Reference each time: fhircraft's models know their parent element
        return ref("Device", device_id) if device_id else None

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
        add(r4.ServiceRequest(
            id=ident, text=narrative(f"Home NMES program {rx_id}: {instruction}"),
            identifier=[t.Identifier(system=f"{SYSTEM}:prescription-id", value=rx_id)],
            status="active", intent="order", code=text("home NMES training program", "nmes-program"),
            subject=ref("Patient", pid), authoredOn=str(src.get("issued")) if src.get("issued") else None,
            occurrencePeriod=t.Period(start=src.get("valid_from") or src.get("issued"), end=src.get("expires")),
            patientInstruction=instruction,
            note=[t.Annotation(text=f"signed by clinician key {sig.get('key_id')}")] if sig.get("key_id") else None))
    for s, row in zip(review.sessions, review.rows):
        sid = str(s.get("id"))
        where.append(f"session {sid}")
        ident = _uuid("session", patient_id, sid)
        status = "completed" if s.get("status") == "completed" else "stopped"
        complications = [text(f"{INCIDENTS[k]} at {float(e.get('t') or 0):.0f} s", k)
                         for e in s.get("events") or () if isinstance(e, Mapping)
                         for k in [e.get("kind")] if k in INCIDENTS]
        rx_ref = orders.get(str(s.get("prescription_id")))
        started, ended = _instant(s.get("started_at")), _instant(s.get("ended_at"))
        add(r4.Procedure(
            id=ident, text=narrative(f"Home NMES session {sid}, {started} to {ended or '?'}: {row.ended}"),
            identifier=[t.Identifier(system=f"{SYSTEM}:session-id", value=sid)],
            status=status,
            statusReason=None if status == "completed" else text(row.ended, str(s.get("status"))),
            code=text("home NMES training session", "nmes-session"),
            subject=ref("Patient", pid),
            performedPeriod=t.Period(start=started, end=ended),
            basedOn=[ref("ServiceRequest", rx_ref)] if rx_ref else None,
            focalDevice=[r4.ProcedureFocalDevice(manipulated=device_ref())] if device_id else None,
            complication=complications or None,
            outcome=text(row.ended),
            note=[t.Annotation(text=f"patient's comment: {row.comment}")] if row.comment else None))

        def base() -> dict[str, Any]:
            return {"status": "final", "subject": ref("Patient", pid), "partOf": [ref("Procedure", ident)],
                    "effectiveDateTime": started, "device": device_ref()}
        if row.pain is not None:
            add(r4.Observation(
                id=_uuid("pain", patient_id, sid), **base(), category=category("survey"),
                text=narrative(f"Pain after session {sid}: {int(row.pain)}/10"),
                code=t.CodeableConcept(coding=[t.Coding(system=LOINC, code="72514-3",
                                                        display="Pain severity - 0-10 verbal numeric rating [Score] - Reported")],
                                       text="pain after the session, 0-10"),
                valueInteger=int(row.pain)))
        if row.effort is not None:
            add(r4.Observation(
                id=_uuid("effort", patient_id, sid), **base(), category=category("survey"),
                text=narrative(f"Perceived effort after session {sid}: {float(row.effort):g} (Borg CR10)"),
                code=text("perceived effort, Borg CR10 (0-10)", "borg-cr10"),
                valueQuantity=t.Quantity(value=float(row.effort), unit="Borg CR10")))
        add(r4.Observation(
            id=_uuid("contractions", patient_id, sid), **base(), category=category("therapy"),
            text=narrative(f"Contractions completed in session {sid}: {int(row.done)} of {row.planned} planned"),
            code=text("contractions completed (most on any channel)", "contractions-completed"),
            valueInteger=int(row.done), note=[t.Annotation(text=f"{row.planned} planned per channel")]))
        for ch, peak in enumerate(row.peak_ma):
            if peak is None:
                continue
            add(r4.Observation(
                id=_uuid("peak", patient_id, sid, str(ch)), **base(), category=category("therapy"),
                text=narrative(f"Highest intensity on channel {ch} in session {sid}: {float(peak):g} mA"),
                code=text(f"highest stimulation intensity, channel {ch}", f"peak-ma-channel-{ch}"),
                valueQuantity=t.Quantity(value=float(peak), unit="mA", system=UCUM, code="mA")))
    where.append("the Bundle")
    return r4.Bundle(id=_uuid("bundle", patient_id, now.isoformat()), type="collection",
                     timestamp=now.isoformat(timespec="seconds"), entry=entries)


def _v(block: Mapping[str, Any], key: str) -> Any:
    x = block.get(key)
    return x.get("value") if isinstance(x, Mapping) else x


def bundle_json(bundle: "Bundle") -> str:
    """The Bundle as FHIR JSON (absent elements left out)."""
    return bundle.model_dump_json(exclude_none=True, indent=1)
