"""Signing in and out, and the language switch.

    GET  /            the patients when signed in, else the sign-in form
    GET  /signin      the form (?next=PATH: where to go after)
    POST /signin      username, password (argon2id, `Clinic.authenticate`); throttled
    POST /signout     ends the session everywhere (its token is deleted)
    POST /language    lang=en|sv, next=PATH

Throttling, both kept in the audit table (so they hold across restarts and every worker):
the service refuses a username after LOGIN_FAILURES wrong passwords within LOGIN_WINDOW;
this module refuses a client address after ADDRESS_FAILURES failed sign-ins (any
usernames) within the same window, which stops one machine guessing across many names.
The address is the TCP peer's: behind a reverse proxy that is the proxy, so put the limit
on the proxy too (uvicorn does not trust X-Forwarded-For unless told to).
"""
from __future__ import annotations

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from ..models import AuditEntry
from ..service import LOGIN_WINDOW, ClinicError, TooMany, Unauthorized
from ..timeutil import utcnow
from . import i18n
from .core import (LANG_COOKIE, SignInRequired, clinic, end_session, page_router, render, require_csrf, safe_next,
                   set_cookie, signed_in, start_session, translator)

router = page_router()

#: Failed sign-ins from one client address within LOGIN_WINDOW before it must wait.
ADDRESS_FAILURES = 20
_WINDOW_MIN = int(LOGIN_WINDOW.total_seconds() // 60)


def _address(request: Request) -> str:
    return (request.client.host if request.client else "unknown")[:100]


def address_failures(request: Request) -> int:
    """Failed sign-ins from this request's address within the window."""
    since = utcnow() - LOGIN_WINDOW
    with clinic(request).Session() as db:
        return db.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "web_signin", AuditEntry.outcome == "denied", AuditEntry.at >= since,
            AuditEntry.actor == f"address:{_address(request)}"))


@router.get("/")
def home(request: Request) -> Response:
    try:
        signed_in(request)
    except SignInRequired:
        return RedirectResponse("/signin", status_code=303)
    return RedirectResponse("/patients", status_code=303)


@router.get("/signin")
def signin_form(request: Request, next: str = "/patients", expired: int = 0, out: int = 0) -> Response:
    try:
        signed_in(request)
        return RedirectResponse(safe_next(next), status_code=303)
    except SignInRequired:
        pass
    _ = translator(request)
    notice = (_("You are signed out.") if out else
              _("Your sign-in expired or you signed out. Sign in again.") if expired else None)
    return render(request, "signin.html", next=safe_next(next), notice=notice, error=None, username="")


@router.post("/signin", dependencies=[Depends(require_csrf)])
def signin(request: Request, username: str = Form(""), password: str = Form(""),
           next: str = Form("/patients")) -> Response:
    _ = translator(request)
    username = username.strip()[:64]

    def again(error: str, status: int) -> Response:
        return render(request, "signin.html", status_code=status, next=safe_next(next), notice=None, error=error,
                      username=username)

    if not username or not password:
        return again(_("Give your username and password."), 400)
    if address_failures(request) >= ADDRESS_FAILURES:
        clinic(request).audit_denied(f"address:{_address(request)}", "web_signin_throttled", None,
                                     f"address throttled (username {username!r})")
        return again(_("Too many failed sign-ins from this computer's address. Try again in {minutes} minutes.",
                       minutes=_WINDOW_MIN), 429)
    svc = clinic(request)
    try:
        actor = svc.authenticate(username, password[:1024])
    except TooMany:
        return again(_("Too many failed sign-ins for this username. Try again in {minutes} minutes.",
                       minutes=_WINDOW_MIN), 429)
    except (Unauthorized, ClinicError):
        svc.audit_denied(f"address:{_address(request)}", "web_signin", None, f"failed for username {username!r}")
        return again(_("Wrong username or password."), 401)
    response = RedirectResponse(safe_next(next), status_code=303)
    start_session(request, response, actor)
    return response


@router.post("/signout", dependencies=[Depends(require_csrf)])
def signout(request: Request) -> Response:
    response = RedirectResponse("/signin?out=1", status_code=303)
    end_session(request, response)
    return response


@router.post("/language", dependencies=[Depends(require_csrf)])
def switch_language(request: Request, lang: str = Form(...), next: str = Form("/patients")) -> Response:
    if lang not in i18n.LANGUAGES:
        raise ClinicError(f"language {lang!r}: choose one of {', '.join(i18n.LANGUAGES)}")
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(response, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    return response
