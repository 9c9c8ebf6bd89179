"""The sessions as an HL7 FHIR R4 (4.0.1) Bundle: built with fhir.resources' R4B models, the
export of a realistic demo patient is served as R4, parses and validates with fhircraft's R4
models (unknown elements refused, required elements, cardinalities, types and the R4
invariants checked), and says what the log says; the R4 models refuse what is not R4, so the
check can fail; a value fhir.resources refuses is a clear message, not a file; another
clinician's patient is a 404 with an audit row; the application never imports fhircraft.

fhircraft (a test-only dependency) is imported inside the tests, so only these tests pay
its import (seconds of CPU: it builds the models of R4, R4B and R5)."""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from clinic.service import CLI
from clinic.web import demo, fhir

from .webkit import alert, demo_app, sign_in

R4_MODULE = "fhircraft.fhir.resources.datatypes.R4.core"


@pytest.fixture(scope="module")
def clinic_app(tmp_path_factory):
    return demo_app(tmp_path_factory.mktemp("fhir"), patients=10, days=28)[0]


@pytest.fixture(scope="module")
def web(clinic_app):
    return sign_in(clinic_app)


@pytest.fixture(scope="module")
def exported(web):
    """The FHIR export of DEMO-008 (e-stops and faults among its sessions) over 28 days."""
    today = dt.datetime.now().astimezone().date()
    first = today - dt.timedelta(days=27)
    r = web.get(f"/patients/DEMO-008/fhir.json?from={first}&to={today}")
    assert r.status_code == 200, r.text[:500]
    return r, first, today


def r4_bundle(text: str):
    """The Bundle read by fhircraft's R4 models, every R4 warning (a `should`) an error too."""
    from fhircraft.fhir.resources.datatypes.R4.core import Bundle
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Bundle.model_validate_json(text)


def r4_resource(resource: dict):
    """One resource read by its own R4 model: the error names the element (the Bundle's
    own error only says the entry did not validate)."""
    import fhircraft.fhir.resources.datatypes.R4.core as r4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return getattr(r4, resource["resourceType"]).model_validate(resource)


def test_the_export_is_served_as_r4_and_validates_with_the_r4_models(clinic_app, exported):
    r, first, today = exported
    assert r.headers["content-type"] == "application/fhir+json; fhirVersion=4.0"
    assert 'filename="DEMO-008-sessions-' in r.headers["content-disposition"]
    bundle = r4_bundle(r.text)
    assert bundle.type == "collection" and bundle.entry
    doc = json.loads(r.text)
    by_type: dict[str, list] = {}
    for entry, raw in zip(bundle.entry, doc["entry"]):
        resource = entry.resource
        # each entry became the R4 model of its own type, and validates alone too
        assert type(resource).__module__.startswith(R4_MODULE), type(resource)
        assert type(resource).__name__ == raw["resource"]["resourceType"]
        assert type(r4_resource(raw["resource"])) is type(resource)
        assert entry.fullUrl == f"urn:uuid:{resource.id}"
        by_type.setdefault(type(resource).__name__, []).append(resource)
    assert set(by_type) == {"Patient", "Device", "ServiceRequest", "Procedure", "Observation"}
    # what the log says
    export = json.loads(clinic_app.state.clinic.export(CLI, "DEMO-008"))
    sessions = [s for s in export["sessions"]
                if first <= dt.datetime.fromisoformat(s["started_at"]).astimezone().date() <= today]
    procedures = by_type["Procedure"]
    assert len(procedures) == len(sessions)
    assert {p.identifier[0].value for p in procedures} == {s["id"] for s in sessions}
    assert by_type["Patient"][0].identifier[0].value == "DEMO-008"
    assert len(by_type["ServiceRequest"]) == 1 and len(by_type["Device"]) == 1
    estops = [p for p in procedures if p.complication and any(c.coding[0].code == "estop" for c in p.complication)]
    assert estops and all(p.status == "stopped" for p in estops)
    pains = [o for o in by_type["Observation"] if o.code.coding and o.code.coding[0].code == "72514-3"]
    assert {o.valueInteger for o in pains} == {s["report"]["pain"] for s in sessions if s["report"]}
    peaks = [o for o in by_type["Observation"] if o.valueQuantity is not None and o.valueQuantity.unit == "mA"]
    assert peaks and all(o.valueQuantity.system == "http://unitsofmeasure.org" for o in peaks)
    ids = {f"urn:uuid:{e.resource.id}" for e in bundle.entry}
    for o in by_type["Observation"]:   # every reference resolves inside the Bundle
        assert o.partOf[0].reference in ids and o.subject.reference in ids and o.device.reference in ids
    for p in procedures:
        assert p.basedOn[0].reference in ids and p.focalDevice[0].manipulated.reference in ids
    # every resource says in one line what it is (the narrative R4 asks for)
    assert all(e.resource.text.status == "generated" and e.resource.text.div.startswith("<div") for e in bundle.entry)


def _definitions():
    """The R4 4.0.1 StructureDefinitions that fhircraft ships (HL7's own files)."""
    from fhircraft.fhir.resources.definitions.registry import DEFINITIONS_DIR
    cache: dict[str, dict[str, dict]] = {}

    def elements(type_name: str) -> dict[str, dict]:
        if type_name not in cache:
            sd = json.loads((DEFINITIONS_DIR / "R4" / "entries" / f"{type_name.lower()}.json").read_text())
            assert sd["fhirVersion"] == fhir.FHIR_VERSION == "4.0.1"
            cache[type_name] = {e["path"]: e for e in sd["snapshot"]["element"]}
        return cache[type_name]
    return elements


def test_ids_and_required_codes_are_those_of_r4(exported):
    """What the models leave unchecked, checked against the R4 StructureDefinitions: every
    id matches R4's id pattern, and every code of an element with a required binding is one
    the element's definition lists (its short text names the value set's codes)."""
    elements = _definitions()
    id_rule = next(x["valueString"] for t in elements("id")["id.value"]["type"]
                   for x in t.get("extension", ()) if x["url"].endswith("/regex"))
    checked: set[tuple[str, str]] = set()

    def walk(obj: dict, type_name: str, path: str) -> None:
        defs = elements(type_name)
        for key, value in obj.items():
            if key == "resourceType":
                continue
            element = defs.get(f"{path}.{key}") or next(
                (e for p, e in defs.items() if p.endswith("[x]") and f"{path}.{key}".startswith(p[:-3])), None)
            assert element is not None, f"{path}.{key} is not an element of R4's {type_name}"
            codes = [t["code"] for t in element.get("type", ())]
            for item in value if isinstance(value, list) else [value]:
                if key == "id" and path.count(".") == 0:
                    assert re.fullmatch(id_rule, item), (path, item)
                binding = element.get("binding") or {}
                if codes == ["code"] and binding.get("strength") == "required":
                    allowed = [c.strip() for c in element["short"].split("|")]
                    assert item in allowed, f"{element['path']} = {item!r}: R4 allows {allowed}"
                    checked.add((element["path"], item))
                if isinstance(item, dict):
                    if "resourceType" in item:
                        walk(item, item["resourceType"], item["resourceType"])
                    elif codes in (["BackboneElement"], ["Element"]):   # part of this resource
                        walk(item, type_name, element["path"])
                    else:                                       # a data type: its own definition
                        kind = next(c for c in codes if key.endswith(c[0].upper() + c[1:]) or len(codes) == 1)
                        walk(item, kind, kind)

    walk(json.loads(exported[0].text), "Bundle", "Bundle")
    assert {("Bundle.type", "collection"), ("Procedure.status", "completed"), ("Procedure.status", "stopped"),
            ("Observation.status", "final"), ("ServiceRequest.intent", "order"),
            ("Device.status", "active"), ("Narrative.status", "generated")} <= checked


def test_the_r4_models_refuse_what_is_not_r4(exported):
    """The check can fail: each change below makes the export invalid R4, and the R4 models
    refuse it (the Bundle as a whole, and the resource alone with the element named)."""
    from pydantic import ValidationError
    doc = json.loads(exported[0].text)
    first = {}
    for i, e in enumerate(doc["entry"]):
        first.setdefault(e["resource"]["resourceType"], i)
    proc, obs = first["Procedure"], first["Observation"]
    peak = next(i for i, e in enumerate(doc["entry"]) if e["resource"].get("valueQuantity", {}).get("code") == "mA")

    def res(d, i):
        return d["entry"][i]["resource"]

    breaks = {
        # R4B and R5 only: a resource type R4 does not have, R5's name for Procedure.performed[x]
        "an R4B-only resource": (lambda d: d["entry"].append({"fullUrl": "urn:uuid:0d6e3a52-4a39-4bd4-9d0e-1f0c2b7e5a11",
                                 "resource": {"resourceType": "NutritionProduct", "status": "active"}}), None, None),
        "an R5 element": (lambda d: res(d, proc).update(occurrencePeriod=res(d, proc).pop("performedPeriod")),
                          proc, "occurrencePeriod"),
        "an unknown element": (lambda d: res(d, proc).update(painScore=3), proc, "painScore"),
        "a required element missing": (lambda d: res(d, proc).pop("subject"), proc, "subject"),
        "a list where R4 has 0..1": (lambda d: res(d, proc).update(subject=[res(d, proc)["subject"]]), proc, "subject"),
        "a wrong type": (lambda d: res(d, obs).update(valueInteger="seven"), obs, "valueInteger"),
        "a fraction for an integer": (lambda d: res(d, obs).update(valueInteger=2.5), obs, "valueInteger"),
        "not a dateTime": (lambda d: res(d, proc)["performedPeriod"].update(start="yesterday"), proc, "start"),
        "two values (value[x] is 0..1)": (lambda d: res(d, obs).update(valueString="x"), obs, "value[x]"),
        "a unit code without its system (qty-3)": (lambda d: res(d, peak)["valueQuantity"].pop("system"), peak, "qty-3"),
        "a period ending before it starts (per-1)": (lambda d: res(d, proc)["performedPeriod"].update(
            start="2026-03-02T10:00:00+00:00", end="2026-03-01T10:00:00+00:00"), proc, "per-1"),
        "an empty element (ele-1)": (lambda d: res(d, proc).update(identifier=[{}]), proc, "ele-1"),
        "a script in the narrative (txt-1)": (lambda d: res(d, proc)["text"].update(
            div='<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>'), proc, "txt-1"),
        "two entries with one fullUrl (bdl-7)": (lambda d: d["entry"][obs].update(fullUrl=d["entry"][proc]["fullUrl"]),
                                                 None, "bdl-7"),
    }
    # an element R4B has and R4 has not (Evidence.certainty): R4B's models take it, R4's refuse it
    import fhircraft.fhir.resources.datatypes.R4B.core as r4b
    narrative = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">evidence</div>'}
    r4b.Evidence.model_validate({"resourceType": "Evidence", "status": "active", "certainty": [{"description": "low"}],
                                 "variableDefinition": [{"variableRole": {"text": "population"}}], "text": narrative})
    evidence = {"resourceType": "Evidence", "status": "active", "exposureBackground": {"reference": "urn:uuid:1"},
                "text": narrative}
    r4_resource(evidence)
    breaks["an R4B-only element"] = (lambda d: d["entry"].append({
        "fullUrl": "urn:uuid:6a0f3d2e-8f1b-4c55-9d3e-2b7a1c0e9f42",
        "resource": {**evidence, "certainty": [{"description": "low"}]}}), len(doc["entry"]), "certainty")
    r4_bundle(json.dumps(doc))          # as exported: valid
    for name, (change, index, named) in breaks.items():
        broken = copy.deepcopy(doc)
        change(broken)
        with pytest.raises(ValidationError) as refused:
            r4_bundle(json.dumps(broken))
        if index is None:
            if named:
                assert named in str(refused.value), (name, str(refused.value)[:500])
            continue
        with pytest.raises(ValidationError) as alone:
            r4_resource(res(broken, index))
        assert named in str(alone.value), (name, str(alone.value)[:500])


def test_an_export_the_models_refuse_is_a_clear_message_and_no_file():
    """A value that is not FHIR (here a prescription issued `next week`) stops the export
    with a message naming the record, the element and the value, instead of a file a
    hospital refuses."""
    from homeapp.report import review_of_export
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    rx = {"id": "rx-1", "patient_id": "P-1", "issued": "next week", "sessions_per_week": 5,
          "max_sessions_per_day": 1, "blocks": [], "channels": []}
    session = {"id": "S-1", "prescription_id": "rx-1", "status": "completed", "events": [],
               "started_at": start.isoformat(), "ended_at": (start + dt.timedelta(minutes=20)).isoformat(),
               "contractions": 60, "report": {"pain": 2, "effort": 4, "comment": ""}}
    review = review_of_export({"sessions": [session], "prescriptions": [rx]})
    with pytest.raises(fhir.NotValidFHIR) as refused:
        fhir.sessions_bundle("P-1", review, [{"key_id": "k1", "software_version": "1.0"}])
    assert refused.value.status == 500
    assert "prescription rx-1" in refused.value.message and "nothing was exported" in refused.value.message
    assert any(re.match(r"(ServiceRequest|Period)\.\w+: .*DateTime.*\(given: 'next week'\)", p)
               for p in refused.value.problems), refused.value.problems
    # and with an R4 date it goes through
    rx["issued"] = "2026-03-01"
    bundle = fhir.sessions_bundle("P-1", review_of_export({"sessions": [session], "prescriptions": [rx]}),
                                  [{"key_id": "k1", "software_version": "1.0"}])
    assert type(bundle).__module__.startswith("fhir.resources.R4B.")    # built with fhir.resources
    assert [type(e.resource).__name__ for e in bundle.entry][:4] == ["Patient", "Device", "ServiceRequest", "Procedure"]
    r4_bundle(fhir.bundle_json(bundle))


def test_another_clinicians_patients_export_is_a_404_with_an_audit_row(clinic_app, web):
    svc = clinic_app.state.clinic
    before = len(svc.audit_entries(patient_ref="OTHER-001"))
    r = web.get("/patients/OTHER-001/fhir.json")
    assert r.status_code == 404 and not r.headers["content-type"].startswith("application/fhir+json")
    assert alert(r.text) == "No patient OTHER-001 among your patients."
    entries = svc.audit_entries(patient_ref="OTHER-001")
    assert len(entries) == before + 1
    assert entries[0]["outcome"] == "denied" and entries[0]["actor"] == "clinician:demo", entries[0]
    # the other clinician gets it
    mine = sign_in(clinic_app, demo.OTHER_CLINICIAN).get("/patients/OTHER-001/fhir.json")
    assert mine.status_code == 200 and r4_bundle(mine.text).entry


def test_the_application_never_imports_fhircraft():
    """fhircraft is only the tests' R4 check: the application starts, and makes an export,
    without importing it (it costs seconds of CPU to import, and is not installed with the
    clinic extra)."""
    code = ("import datetime as dt, sys\n"
            "from clinic.app import create_app\n"
            "import clinic.web\n"
            "from clinic.web import fhir\n"
            "from homeapp.report import review_of_export\n"
            "start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)\n"
            "rx = {'id': 'rx-1', 'patient_id': 'P-1', 'issued': '2026-03-01', 'sessions_per_week': 5,"
            " 'max_sessions_per_day': 1, 'blocks': [], 'channels': []}\n"
            "s = {'id': 'S-1', 'prescription_id': 'rx-1', 'status': 'completed', 'events': [],"
            " 'started_at': start.isoformat(), 'ended_at': (start + dt.timedelta(minutes=20)).isoformat(),"
            " 'contractions': 60, 'report': {'pain': 2, 'effort': 4, 'comment': ''}}\n"
            "review = review_of_export({'sessions': [s], 'prescriptions': [rx]})\n"
            "text = fhir.bundle_json(fhir.sessions_bundle('P-1', review, [{'key_id': 'k1'}]))\n"
            "assert '\"Procedure\"' in text\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fhircraft'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    # and no module of the clinic imports it, not even lazily inside a function
    clinic_dir = Path(__file__).resolve().parents[2] / "clinic"
    importing = re.compile(r"^\s*(from|import)\s+fhircraft\b|import_module\(\s*[\"']fhircraft", re.M)
    assert [str(p) for p in clinic_dir.rglob("*.py") if importing.search(p.read_text())] == []


def test_the_export_page_says_what_is_not_r4_instead_of_sending_a_file(tmp_path):
    """Through the web page: a prescription whose `issued` is not an R4 dateTime (changed in
    the clinic's own copy) is a page naming it, with no FHIR file."""
    from sqlalchemy import select, update

    from clinic.models import Patient, WebSessionDigest
    app = demo_app(tmp_path, patients=2, days=7)[0]
    web = sign_in(app)
    assert web.get("/patients/DEMO-001/fhir.json").status_code == 200     # the digests are made
    svc = app.state.clinic
    with svc.Session() as db:
        pk = db.scalar(select(Patient.id).where(Patient.patient_id == "DEMO-001"))
        row = db.scalars(select(WebSessionDigest).where(WebSessionDigest.patient_id == pk,
                                                        WebSessionDigest.kind == "prescription")).first()
        digest = json.loads(row.digest_json)
        src = digest["source"] if isinstance(digest.get("source"), dict) else digest
        src["issued"] = "next week"
        db.execute(update(WebSessionDigest).where(WebSessionDigest.id == row.id).values(digest_json=json.dumps(digest)))
        db.commit()
    r = web.get("/patients/DEMO-001/fhir.json")
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in r.headers
    assert alert(r.text).startswith("The sessions cannot be written as valid HL7 FHIR R4 (prescription ")
    assert "(given: &#39;next week&#39;)" in r.text or "(given: 'next week')" in r.text


def test_a_session_time_that_is_no_time_is_a_clear_message_and_no_file():
    """A session whose end is not a time stops the export with NotValidFHIR naming the
    session, the element and the value (not a ValueError's traceback)."""
    from homeapp.report import review_of_export
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
    rx = {"id": "rx-1", "patient_id": "P-1", "issued": "2026-03-01", "sessions_per_week": 5,
          "max_sessions_per_day": 1, "blocks": [], "channels": []}
    session = {"id": "S-1", "prescription_id": "rx-1", "status": "completed", "events": [],
               "started_at": start.isoformat(), "ended_at": "later",
               "contractions": 60, "report": {"pain": 2, "effort": 4, "comment": ""}}
    review = review_of_export({"sessions": [session], "prescriptions": [rx]})
    with pytest.raises(fhir.NotValidFHIR) as refused:
        fhir.sessions_bundle("P-1", review, [{"key_id": "k1", "software_version": "1.0"}])
    assert "session S-1" in refused.value.message and "nothing was exported" in refused.value.message
    assert any(re.match(r"(Procedure|Period)\.\w+.*\(given: 'later'\)", p) for p in refused.value.problems), \
        refused.value.problems
