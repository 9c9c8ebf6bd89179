"""Patient ids with URL-reserved characters: every address the pages build quotes the id
("#", "?", "%", "&", "+", space...), so the links lead to that patient; a slash, a
backslash or a dot segment, which no quoting can carry through the routes, is refused
when the patient is added, on the command line and so for the pages and the JSON API."""
from __future__ import annotations

import html as h
import io
import re
import sys

import pytest

from clinic import cli
from clinic.service import ClinicError
from clinic.web import demo

from .webkit import csrf_of, demo_app, sign_in

ODD = "P#1 ?&%+x;é"


@pytest.fixture(scope="module")
def made_app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ids")
    app, made = demo_app(folder, patients=3, days=14)
    app.state.clinic.add_patient(ODD, demo.DEMO_CLINICIAN)
    return app, folder


def _hrefs(page: str) -> list[str]:
    return [h.unescape(x) for x in re.findall(r'(?:href|action)="(/patients/[^"]*)"', page)]


def test_every_link_to_a_patient_with_reserved_characters_reaches_that_patient(made_app):
    app, _ = made_app
    web = sign_in(app)
    listing = web.get("/patients").text
    link = next(x for x in _hrefs(listing) if "P%231" in x)
    assert link == "/patients/P%231%20%3F%26%25%2Bx%3B%C3%A9"
    page = web.get(link)
    assert page.status_code in (200, 404), page.status_code
    assert h.escape(ODD) in page.text or ODD in h.unescape(page.text)
    program = web.get(link + "/program")
    assert program.status_code == 200, program.text[:300]
    assert h.unescape(re.search(r"<h1>(.*?)</h1>", program.text).group(1)).endswith(ODD)
    targets = [x for x in _hrefs(program.text) if x.startswith("/patients/P")]
    assert targets and all(x.startswith(link + "/program") for x in targets), targets
    for target in {x for x in targets if "?" in x or x.endswith("/program")}:
        assert web.get(target).status_code == 200, target
    # a form posted to its action reaches the same patient (the editor's check)
    r = web.post(link + "/program", data={"csrf_token": csrf_of(program.text)})
    assert r.status_code in (200, 422) and ODD in h.unescape(r.text)


def test_the_json_api_takes_the_same_quoted_id(made_app):
    app, _ = made_app
    from .webkit import client
    c = client(app)
    token = c.post("/api/login", json={"username": demo.DEMO_CLINICIAN, "password": demo.DEMO_PASSWORD}).json()
    r = c.get("/api/patients/" + "P%231%20%3F%26%25%2Bx%3B%C3%A9",
              headers={"Authorization": f"Bearer {token['token']}"})
    assert r.status_code == 200 and r.json()["patient_id"] == ODD, r.text


@pytest.mark.parametrize("bad", ["A/B", "2024/0042", "A\\B", ".", ".."])
def test_an_id_no_address_can_carry_is_refused_when_added(made_app, bad, monkeypatch, capsys):
    app, folder = made_app
    with pytest.raises(ClinicError, match="not allowed"):
        app.state.clinic.add_patient(bad, demo.DEMO_CLINICIAN)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = cli.main(["patient", "add", bad, "--clinician", demo.DEMO_CLINICIAN,
                     "--db", f"sqlite:///{folder / 'clinic.db'}"])
    err = capsys.readouterr().err
    assert code == 2 and "'/' and '\\' are not allowed" in err and "Traceback" not in err, err
