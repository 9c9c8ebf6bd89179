"""Helpers of the web pages' tests: a demo clinic in-process, and a client that signs in
through the form (the CSRF token read from the page, as a browser has it)."""
from __future__ import annotations

import re
import warnings

from clinic.app import create_app
from clinic.web import demo

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def demo_app(folder, *, patients: int = 10, days: int = 35):
    """The application on a new SQLite file filled by `homeapp-clinic demo`'s generator."""
    app = create_app(f"sqlite:///{folder / 'clinic.db'}")
    made = demo.fill(app.state.clinic, patients=patients, days=days)
    return app, made


def client(app) -> TestClient:
    """An https client (so the Secure cookies travel, as in a browser), following no redirects."""
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(app, username: str = demo.DEMO_CLINICIAN, password: str = demo.DEMO_PASSWORD) -> TestClient:
    c = client(app)
    page = c.get("/signin")
    r = c.post("/signin", data={"username": username, "password": password, "csrf_token": csrf_of(page.text),
                                "next": "/patients"})
    assert r.status_code == 303 and r.headers["location"] == "/patients", r.text[:500]
    return c


def alert(html: str) -> str:
    """The text of the page's alert (error) paragraph."""
    import html as h
    found = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    return h.unescape(found.group(1)) if found else ""


def all_routes(routes, prefix: str = ""):
    """(path, route) of every route, into included routers (FastAPI keeps them nested)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from all_routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "path"):
            yield prefix + route.path, route
