"""The signing keys page: the signed-in clinician registers the public key file of a key
made in the browser (or by `homeapp rx keygen`), confirmed with their password, audited,
for their own account only; its key id shown for comparison. A malformed file, a private
key, a key that is not Ed25519, a key of another clinician: refused, saying what to give."""
from __future__ import annotations

import html
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clinic.models import AuditEntry, ClinicianKey
from clinic.web import demo
from clinic.web.core import LANG_COOKIE
from schedules.signing import generate_keypair, key_id

from .webkit import alert, csrf_of, demo_app, sign_in


def _pem(public) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def made_app(tmp_path_factory):
    return demo_app(tmp_path_factory.mktemp("keys"), patients=2, days=7)


def _post(web, content: bytes | None, password: str = demo.DEMO_PASSWORD, name: str = "clinician.pub"):
    page = web.get("/account/keys")
    files = {"keyfile": (name, content, "application/octet-stream")} if content is not None else None
    return web.post("/account/keys", data={"csrf_token": csrf_of(page.text), "password": password}, files=files)


def _audit(app, action: str) -> list[AuditEntry]:
    with app.state.clinic.Session() as db:
        return list(db.query(AuditEntry).filter(AuditEntry.action == action).order_by(AuditEntry.id))


def _keys_of(app, username: str) -> set[str]:
    from clinic.models import Clinician
    with app.state.clinic.Session() as db:
        cid = db.query(Clinician.id).filter(Clinician.username == username).scalar()
        return {k.key_id for k in db.query(ClinicianKey).filter(ClinicianKey.clinician_id == cid)}


def test_a_browser_made_key_is_registered_with_the_password_and_its_id_shown(made_app):
    app, _ = made_app
    web = sign_in(app)
    private, public = generate_keypair()
    kid = key_id(public)
    wrong = _post(web, _pem(public), password="not my password")
    assert wrong.status_code == 401 and "Wrong password" in alert(wrong.text)
    assert kid not in _keys_of(app, demo.DEMO_CLINICIAN)
    r = _post(web, _pem(public))
    assert r.status_code == 200, r.text[:500]
    assert f"Key {kid} is registered to you" in html.unescape(r.text)
    assert kid in _keys_of(app, demo.DEMO_CLINICIAN)
    added = _audit(app, "clinician_key_add")[-1]
    assert added.actor == str(web_actor(app)) and json.loads(added.detail_json)["key_id"] == kid
    assert _audit(app, "web_key_add")[-1].outcome == "denied"      # the wrong password before
    again = _post(web, _pem(public))
    assert "was already registered to you" in html.unescape(again.text)
    # the page lists it, and the program page links here
    assert f"<code>{kid}</code>" in web.get("/account/keys").text


def web_actor(app):
    return app.state.clinic.clinician(demo.DEMO_CLINICIAN)


@pytest.mark.parametrize("content, name, says", [
    (None, "", "Choose the public key file"),
    (b"hello, this is not a key\n", "notes.txt", "That file is not a public key"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "clinician.pub", "That file is not a public key"),
    ("private", "clinician.key", "That is a private key"),
    ("ecdsa", "other.pub", "not an Ed25519 key"),
    ("another's", "clinician.pub", "already registered to another clinician"),
])
def test_refusals_say_what_to_give_and_are_audited(made_app, content, name, says):
    app, made = made_app
    web = sign_in(app)
    if content == "private":
        private, _ = generate_keypair()
        content = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    elif content == "ecdsa":
        content = _pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    elif content == "another's":
        _, public = generate_keypair()
        app.state.clinic.add_clinician_key(demo.OTHER_CLINICIAN, _pem(public))
        content = _pem(public)
    before = _keys_of(app, demo.DEMO_CLINICIAN)
    refusals = len(_audit(app, "web_key_add"))
    r = _post(web, content, name=name)
    assert r.status_code in (400, 409) and says in alert(r.text), (r.status_code, alert(r.text))
    assert "Traceback" not in r.text and "PRIVATE KEY" not in r.text
    assert _keys_of(app, demo.DEMO_CLINICIAN) == before
    assert len(_audit(app, "web_key_add")) == refusals + 1


def test_the_page_is_csrf_protected_signed_in_only_and_in_swedish(made_app):
    app, _ = made_app
    web = sign_in(app)
    _, public = generate_keypair()
    r = web.post("/account/keys", data={"password": demo.DEMO_PASSWORD},
                 files={"keyfile": ("clinician.pub", _pem(public), "application/octet-stream")})
    assert r.status_code == 403 and key_id(public) not in _keys_of(app, demo.DEMO_CLINICIAN)
    from .webkit import client
    anonymous = client(app).get("/account/keys")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")
    web.cookies.set(LANG_COOKIE, "sv")
    page = web.get("/account/keys").text
    assert "Dina signeringsnycklar" in page and "Registrera nyckeln" in page
    r = _post(web, b"nonsense")
    assert "Filen är ingen publik nyckel" in alert(r.text)
