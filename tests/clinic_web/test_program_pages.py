"""The program editor's server side through the in-process client (no browser): the form
round-trips a prescription, the validator's messages land beside their field, only the
clinician's own patients are reachable (404, audited), every POST needs its CSRF token,
and the canonical bytes handed to the page are what schedules/signing.py signs."""
from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re

import pytest
from cryptography.hazmat.primitives import serialization

from clinic.app import create_app
from clinic.service import CLI
from clinic.web.program import draft_from_form, fields_of, known_keys, problems_by_field
from schedules.presets import make_prescription
from schedules.signing import canonical_json, generate_keypair, sign_prescription
from schedules.validate import check_prescription
from tests.clinic.kit import PASSWORD

TODAY = dt.date.today()


@pytest.fixture
def site(tmp_path):
    from fastapi.testclient import TestClient
    app = create_app(f"sqlite:///{tmp_path / 'clinic.db'}")
    clinic = app.state.clinic
    for who, patient in (("alice", "P-1"), ("bob", "P-2")):
        clinic.add_clinician(who, PASSWORD)
        clinic.add_patient(patient, who)
    private, public = generate_keypair()
    clinic.add_clinician_key("alice", public.public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    client = TestClient(app, base_url="https://testserver")
    r = client.get("/signin")
    r = client.post("/signin", data={"username": "alice", "password": PASSWORD, "csrf_token": token(r.text)})
    assert r.status_code == 200 and "/patients" in str(r.url)
    return client, clinic, private


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def form_of(page: str) -> dict[str, str]:
    """The editor form's fields as a browser would send them."""
    form = page.split('class="program"', 1)[1].split("</form>", 1)[0]
    out = {}
    for name, value in re.findall(r'<input [^>]*name="([^"]+)"[^>]*value="([^"]*)"', form):
        out[name] = html.unescape(value)
    for name, body in re.findall(r'<select [^>]*name="([^"]+)">(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected', body)
        out[name] = chosen.group(1) if chosen else re.search(r'<option value="([^"]+)"', body).group(1)
    return out


def test_the_form_round_trips_every_preset():
    for name in ("quadriceps-after-knee-surgery", "atrophied-muscle", "fibre-type-2b"):
        rx = make_prescription(name, patient_id="P-1", clinician_id="alice", issued=TODAY,
                               expires=TODAY + dt.timedelta(days=90))
        form = {**fields_of(rx), "n_channels": str(len(rx["channels"])), "n_blocks": str(len(rx["blocks"]))}
        assert draft_from_form(form, patient_id="P-1") == rx


def test_messages_go_beside_the_field_they_name():
    problems = ["blocks[1].hz: 400 is above the device limit of 150 (allowed 1 to 150 Hz)",
                "blocks[0].on_s.min: missing (an adjustable value needs value, min and max, each 1 to 60 s)",
                "blocks[0]: ramp_up_s + ramp_down_s = 6 is longer than on_s = 4",
                "channels: 3 channels given (allowed 1 to 2)", "something: else"]
    by_field, general = problems_by_field(problems, known_keys(2, 2))
    assert by_field["blocks-1-hz"] == [problems[0]] and by_field["blocks-0-on_s-min"] == [problems[1]]
    assert by_field["blocks-0"] == [problems[2]] and by_field["channels"] == [problems[3]]
    assert general == [problems[4]]


def test_a_checked_program_hands_the_page_the_bytes_signing_py_signs(site):
    client, clinic, private = site
    page = client.get("/patients/P-1/program?start=preset&preset=circulation").text
    form = form_of(page)
    form["channels-0-max_ma"] = "45,5"          # a Swedish decimal comma reads as 45.5
    r = client.post("/patients/P-1/program", data=form)
    assert r.status_code == 200, r.text
    draft = json.loads(html.unescape(re.search(r'name="draft" value="([^"]*)"', r.text).group(1)))
    canonical = base64.b64decode(re.search(r'data-canonical="([^"]+)"', r.text).group(1))
    assert canonical == canonical_json(draft) and draft["channels"][0]["max_ma"] == 45.5
    assert check_prescription(draft, today=dt.date.today()) == []    # read after the page wrote `issued`
    # the signature over those bytes, as the page posts it, publishes
    signature = sign_prescription(draft, private)["signature"]
    r = client.post("/patients/P-1/program/publish", data={"draft": json.dumps(draft), "signature": json.dumps(signature),
                                                          "csrf_token": token(r.text)})
    assert r.status_code == 200 and "/program/status" in str(r.url)
    assert [p["id"] for p in clinic.prescriptions(CLI, "P-1")] == [draft["id"]]
    # a draft changed after signing is refused by the service, naming why
    altered = dict(draft, sessions_per_week=4)
    r = client.post("/patients/P-1/program/publish", data={"draft": json.dumps(altered),
                                                          "signature": json.dumps(signature), "csrf_token": token(r.text)})
    assert r.status_code == 422 and "altered after signing" in r.text


def test_an_invalid_program_is_refused_with_the_validators_words(site):
    client, clinic, _ = site
    form = form_of(client.get("/patients/P-1/program?start=preset&preset=circulation").text)
    form.update({"blocks-0-hz": "fast", "blocks-0-on_s-min": "3", "sessions_per_week": "30"})
    r = client.post("/patients/P-1/program", data=form)
    assert r.status_code == 422
    assert 'id="e-blocks-0-hz"' in r.text and "blocks[0].hz.value: &#34;fast&#34; is not a number" in r.text
    assert 'id="e-blocks-0-on_s"' in r.text and "blocks[0].on_s.max: missing" in r.text
    assert "sessions_per_week: 30 is above the limit of 21" in r.text
    assert "data-canonical" not in r.text            # nothing to sign


def test_another_clinicians_patient_is_not_found_on_every_route_and_audited(site):
    client, clinic, _ = site
    csrf = token(client.get("/patients/P-1/program").text)
    routes = [("get", "/patients/P-2/program", {}), ("get", "/patients/P-2/program/status", {}),
              ("post", "/patients/P-2/program", {"csrf_token": csrf}),
              ("post", "/patients/P-2/program/unsigned", {"csrf_token": csrf, "draft": "{}"}),
              ("post", "/patients/P-2/program/publish", {"csrf_token": csrf, "draft": "{}", "signature": "{}"})]
    for method, url, data in routes:
        r = getattr(client, method)(url, **({"data": data} if method == "post" else {}))
        assert r.status_code == 404, (url, r.status_code)
        assert "P-2" in r.text and "among your patients" in r.text
    r = client.post("/patients/P-2/program/upload", data={"csrf_token": csrf}, files={"file": ("x.json", b"{}")})
    assert r.status_code == 404
    denied = [a for a in clinic.audit_entries(patient_ref="P-2") if a["outcome"] == "denied"]
    assert len(denied) == len(routes) + 1


def test_every_post_needs_its_csrf_token(site):
    client, clinic, _ = site
    form = form_of(client.get("/patients/P-1/program").text)
    form["csrf_token"] = "forged"
    for url in ("/patients/P-1/program", "/patients/P-1/program/unsigned", "/patients/P-1/program/publish"):
        r = client.post(url, data=form)
        assert r.status_code == 403, url
    assert clinic.prescriptions(CLI, "P-1") == []


def test_without_a_published_program_the_editor_starts_from_a_preset_and_says_why(site):
    client, clinic, _ = site
    r = client.get("/patients/P-1/program?start=suggestion")
    assert r.status_code == 200 and "start from a preset" in r.text
    assert 'aria-current="true"' not in r.text.split("preset-pick")[0] or "start=preset" in r.text


def test_every_reason_the_rules_give_reads_in_swedish():
    import ast
    import inspect

    from clinic.web import program
    from schedules import progression
    codes = {node.args[0].value for node in ast.walk(ast.parse(inspect.getsource(progression)))
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Reason"
             and isinstance(node.args[0], ast.Constant)}
    codes |= {f"{c}_{end}" for c in ("lengthen_contraction", "shorten_rest") for end in ("at_limit", "adjustable")}
    # these two quote the validator's own English messages, so they stay as the rules wrote them
    codes -= {"rx_invalid", "invalid_step"}
    source = inspect.getsource(program._sv_reason)
    assert codes and all(f'"{code}"' in source for code in codes), sorted(c for c in codes if f'"{c}"' not in source)
