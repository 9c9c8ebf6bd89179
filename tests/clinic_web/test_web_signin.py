"""Signing in and out of the clinician's pages: the argon2id check of the service, the
session cookie's flags, CSRF on every form, throttling, and the security headers."""
from __future__ import annotations

import http.cookies

import pytest

from clinic.web import auth
from clinic.web.core import SESSION_COOKIE

from .webkit import alert, client, csrf_of, demo_app, sign_in

PASSWORD = "a long test password"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from clinic.app import create_app
    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('signin') / 'clinic.db'}")
    for name in ("alice", "bob", "carol", "dave"):
        app.state.clinic.add_clinician(name, PASSWORD)
    return app


def _cookie_flags(set_cookie: str) -> dict[str, str]:
    jar = http.cookies.SimpleCookie()
    jar.load(set_cookie)
    (name, morsel), = jar.items()
    return {"name": name, "value": morsel.value, "httponly": morsel["httponly"], "secure": morsel["secure"],
            "samesite": morsel["samesite"], "path": morsel["path"]}


def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(app):
    c = client(app)
    r = c.get("/patients?q=P-1")
    assert r.status_code == 303 and r.headers["location"] == "/signin?next=%2Fpatients%3Fq%3DP-1"
    page = c.get(r.headers["location"])
    assert page.status_code == 200 and 'name="next" value="/patients?q=P-1"' in page.text
    r = c.post("/signin", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text),
                                "next": "/patients?q=P-1"})
    assert r.status_code == 303 and r.headers["location"] == "/patients?q=P-1"


def test_the_session_cookie_is_httponly_secure_samesite_strict(app):
    c = client(app)
    page = c.get("/signin")
    pre = _cookie_flags(page.headers["set-cookie"])
    assert pre["httponly"] and pre["secure"] and pre["samesite"].lower() == "strict"
    r = c.post("/signin", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    session = [_cookie_flags(v) for v in r.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "=")]
    assert len(session) == 1
    flags = session[0]
    assert flags["httponly"] is True and flags["secure"] is True and flags["samesite"].lower() == "strict"
    assert flags["path"] == "/" and len(flags["value"]) >= 40
    assert c.get("/patients").status_code == 200


def test_wrong_password_and_unknown_user_read_the_same(app):
    for name, password in (("alice", "not the password"), ("nobody-here", PASSWORD)):
        c = client(app)
        page = c.get("/signin")
        r = c.post("/signin", data={"username": name, "password": password, "csrf_token": csrf_of(page.text)})
        assert r.status_code == 401 and alert(r.text) == "Wrong username or password."
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")


@pytest.mark.parametrize("form", [{}, {"csrf_token": "0" * 64}], ids=["no token", "wrong token"])
def test_a_post_without_the_forms_token_is_refused(app, form):
    c = sign_in(app, "bob", PASSWORD)
    r = c.post("/signout", data=form)
    assert r.status_code == 403 and "form expired or came from another site" in alert(r.text)
    assert c.get("/patients").status_code == 200          # still signed in: the sign-out was refused
    anon = client(app)
    page = anon.get("/signin")
    r = anon.post("/signin", data={"username": "bob", "password": PASSWORD, **form})
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    r = anon.post("/language", data={"lang": "sv", **form})
    assert r.status_code == 403
    assert csrf_of(page.text)  # the page did offer a token


def test_a_post_from_another_site_is_refused_even_with_a_token(app):
    c = sign_in(app, "bob", PASSWORD)
    token = csrf_of(c.get("/patients").text)
    r = c.post("/signout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = c.post("/signout", data={"csrf_token": token}, headers={"Origin": "https://testserver"})
    assert r.status_code == 303


def test_the_token_of_one_session_does_not_serve_another(app):
    a, b = sign_in(app, "alice", PASSWORD), sign_in(app, "bob", PASSWORD)
    token_a = csrf_of(a.get("/patients").text)
    assert b.post("/signout", data={"csrf_token": token_a}).status_code == 403


def test_sign_out_ends_the_session_everywhere(app):
    c = sign_in(app, "carol", PASSWORD)
    stolen = c.cookies.get(SESSION_COOKIE)
    r = c.post("/signout", data={"csrf_token": csrf_of(c.get("/patients").text)})
    assert r.status_code == 303 and r.headers["location"] == "/signin?out=1"
    assert stolen
    r = client(app).get("/patients", headers={"Cookie": f"{SESSION_COOKIE}={stolen}"})
    assert r.status_code == 303 and "expired=1" in r.headers["location"]


def test_the_next_page_after_sign_in_stays_on_this_site(app):
    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example"):
        c = client(app)
        page = c.get("/signin")
        r = c.post("/signin", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text),
                                    "next": evil})
        assert r.headers["location"] == "/patients"


def test_sign_in_is_throttled_per_username(app):
    c = client(app)
    for _ in range(5):
        page = c.get("/signin")
        r = c.post("/signin", data={"username": "dave", "password": "wrong password!", "csrf_token": csrf_of(page.text)},
                   headers={"X-Forwarded-For": "ignored"})
        assert r.status_code == 401
    page = c.get("/signin")
    r = c.post("/signin", data={"username": "dave", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 429
    assert alert(r.text) == "Too many failed sign-ins for this username. Try again in 15 minutes."
    # another clinician is not locked out by dave's failures
    assert sign_in(app, "alice", PASSWORD)


def test_sign_in_is_throttled_per_client_address(tmp_path, monkeypatch):
    from clinic.app import create_app
    app = create_app(f"sqlite:///{tmp_path / 'clinic.db'}")
    app.state.clinic.add_clinician("erin", PASSWORD)
    monkeypatch.setattr(auth, "ADDRESS_FAILURES", 6)   # the same rule, fewer slow argon2 checks
    c = client(app)
    for n in range(6):   # a different username each time: the per-username limit never trips
        page = c.get("/signin")
        r = c.post("/signin", data={"username": f"guess{n}", "password": "x" * 12, "csrf_token": csrf_of(page.text)})
        assert r.status_code == 401
    page = c.get("/signin")
    r = c.post("/signin", data={"username": "erin", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 429
    assert alert(r.text) == "Too many failed sign-ins from this computer's address. Try again in 15 minutes."
    denied = [e for e in app.state.clinic.audit_entries() if e["actor"] == "address:testclient"]
    assert len(denied) == 7 and denied[0]["action"] == "web_signin_throttled"


def test_every_page_carries_the_security_headers(app):
    c = sign_in(app, "alice", PASSWORD)
    for path in ("/patients", "/signin", "/patients/nobody", "/static/clinic.css"):
        r = c.get(path)
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert "script-src 'self'" in r.headers["content-security-policy"], path
        assert r.headers["x-content-type-options"] == "nosniff", path
    assert c.get("/patients").headers["cache-control"] == "no-store"
    assert c.get("/static/..%2Fcore.py").status_code == 404
    assert c.get("/static/core.py").status_code == 404


def test_the_language_switch_turns_the_pages_swedish(app):
    c = sign_in(app, "alice", PASSWORD)
    page = c.get("/patients")
    assert "<h1>Patients</h1>" in page.text and 'lang="en"' in page.text
    r = c.post("/language", data={"lang": "sv", "next": "/patients", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/patients"
    page = c.get("/patients")
    assert "<h1>Patienter</h1>" in page.text and '<html lang="sv">' in page.text and "Logga ut" in page.text
    r = c.post("/language", data={"lang": "de", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 400 and "choose one of en, sv" in alert(r.text)
    anon = client(app).get("/signin", headers={"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"})
    assert "<h1>Logga in</h1>" in anon.text


def test_over_the_tls_server_the_secure_cookie_travels(tmp_path):
    """The real `homeapp-clinic serve` process behind TLS (a throwaway CA): the session
    cookie is set Secure and comes back with each request over https."""
    import httpx
    import trustme

    from clinic.db import migrate, open_engine
    from clinic.service import Clinic

    from .browser import Served
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(str(ca_file))
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine = open_engine(url)
    migrate(engine)
    Clinic(engine).add_clinician("alice", PASSWORD)
    engine.dispose()
    with Served(url, tls=(chain, key)) as served:
        assert served.url.startswith("https://")
        import ssl
        context = ssl.create_default_context(cafile=str(ca_file))
        with httpx.Client(base_url=served.url, verify=context, follow_redirects=False) as c:
            page = c.get("/signin")
            r = c.post("/signin", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
            flags = _cookie_flags(next(v for v in r.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)))
            assert flags["secure"] and flags["httponly"] and flags["samesite"].lower() == "strict"
            assert c.get("/patients").status_code == 200      # the cookie came back over TLS
