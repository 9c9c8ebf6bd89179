"""What every clinician page shares: the route class that turns refusals into pages, the
signed-in clinician, CSRF protection, templates, the language, static files.

A page module (see docs/clinic-web.md) does:

    from fastapi import Depends, Request
    from clinic.service import Actor
    from clinic.web.core import page_router, render, require_csrf, signed_in

    router = page_router()

    @router.get("/things")
    def things(request: Request, actor: Actor = Depends(signed_in)):
        return render(request, "things.html", items=[...])

    @router.post("/things", dependencies=[Depends(require_csrf)])
    def add_thing(request: Request, actor: Actor = Depends(signed_in)): ...

and its template extends "base.html" and puts `{{ csrf_field() }}` in every form.

Sessions: signing in makes a token of the service (`Clinic.new_api_token`, only its hash
is stored, 12 hours), kept in the cookie `homeapp_session` (HttpOnly, Secure,
SameSite=Strict, Path=/). Signing out deletes the token's row, so a copied cookie is dead
too. CSRF: every POST must carry `csrf_token` (a form field, or the header `X-CSRF-Token`
for a script's fetch) equal to an HMAC of the session token (before sign-in: of a random
pre-session cookie), and an `Origin`, when the browser sends one, of this very host.
SameSite=Strict already keeps other sites' requests cookie-less; the token is the second
lock, for browsers or proxies that do not honour it.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy import delete
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..service import Actor, Clinic, ClinicError, Unauthorized
from . import i18n

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
#: Templates of every page (Jinja2); a page's template extends "base.html".
TEMPLATES_DIR = HERE / "templates"
#: Files served at /static/NAME (CSS, small scripts, icons); no subfolders.
STATIC_DIR = HERE / "static"

SESSION_COOKIE = "homeapp_session"
PRESESSION_COOKIE = "homeapp_presession"
LANG_COOKIE = "homeapp_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: The same lifetime as the service's token (the cookie dies with it).
SESSION_MAX_AGE_S = 12 * 3600

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def url_part(text: object) -> str:
    """`text` as one segment of a URL's path: every reserved character quoted ("#", "?",
    "%", "&", space...; Jinja's `urlencode` leaves "/" as it is). Templates: `|pathpart`."""
    return quote(str(text), safe="")


templates.env.filters["pathpart"] = url_part

#: Headers on every page: no framing, no foreign script or style, no referrer to other sites, no caching
#: of patient data (a shared clinic computer's back button must not show it after sign-out).
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",   # not no-referrer: then a form's Origin is "null"
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in form."""

    def __init__(self, *, expired: bool = False) -> None:
        super().__init__("sign in first")
        self.expired = expired


class CsrfRefused(ClinicError):
    """A POST without the form's token, or from another site."""

    status = 403


def clinic(request: Request) -> Clinic:
    """The Clinic service of the application."""
    return request.app.state.clinic


def language(request: Request) -> str:
    """The request's language ("en" or "sv"): the header switch's cookie, else the browser's."""
    lang = getattr(request.state, "lang", None)
    if lang is None:
        lang = i18n.choose(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
        request.state.lang = lang
    return lang


def translator(request: Request) -> Callable[..., str]:
    """`_(text, **values)` in the request's language (for Python code building messages)."""
    lang = language(request)

    def _(text: str, /, **values: Any) -> str:
        return i18n.gettext(lang, text, **values)
    _.lang = lang   # type: ignore[attr-defined]  # for words built from codes (e.g. progression reasons)
    return _


# --------------------------------------------------------------------------- sessions

def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def signed_in(request: Request) -> Actor:
    """The signed-in clinician (a FastAPI dependency of every page with patient data).
    Without a valid session the page redirects to the sign-in form and comes back after."""
    actor = getattr(request.state, "actor", None)
    if actor is not None:
        return actor
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    try:
        actor = clinic(request).actor_for_token(token)
    except Unauthorized:
        raise SignInRequired(expired=True) from None
    request.state.actor, request.state.session_token = actor, token
    from .overview import ensure_warmer
    ensure_warmer(clinic(request))
    return actor


def start_session(request: Request, response: Response, actor: Actor) -> None:
    """Sign `actor` in: a new service token in the session cookie (the pre-session one goes)."""
    token, _expires = clinic(request).new_api_token(actor)
    set_cookie(response, SESSION_COOKIE, token, max_age=SESSION_MAX_AGE_S)
    response.delete_cookie(PRESESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    request.state.actor, request.state.session_token = actor, token


def end_session(request: Request, response: Response) -> None:
    """Sign out: the token's row is deleted (the cookie is worthless everywhere) and the cookie cleared."""
    from ..models import ApiToken
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with clinic(request).Session.begin() as db:
            db.execute(delete(ApiToken).where(ApiToken.token_sha256 == _token_sha256(token)))
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def set_cookie(response: Response, name: str, value: str, *, max_age: int | None = None,
               httponly: bool = True) -> None:
    """A cookie as every cookie of these pages is set: Secure, SameSite=Strict, Path=/,
    HttpOnly unless said otherwise. (Browsers keep Secure cookies of http://localhost and
    127.0.0.1 too, so a clinic of one on loopback works without TLS.)"""
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=httponly, samesite="strict")


# --------------------------------------------------------------------------- CSRF

def csrf_token(request: Request) -> str:
    """The token every form of this session must send back (HMAC of the session token;
    before sign-in, of the pre-session cookie, made here when missing)."""
    secret = getattr(request.state, "session_token", None) or request.cookies.get(SESSION_COOKIE)
    if not secret:
        secret = request.cookies.get(PRESESSION_COOKIE) or getattr(request.state, "new_presession", None)
        if not secret:
            secret = secrets.token_urlsafe(32)
            request.state.new_presession = secret   # render() sets the cookie
    return hmac.new(secret.encode(), b"homeapp clinic csrf", hashlib.sha256).hexdigest()


def csrf_field(request: Request) -> Markup:
    """The hidden input a form needs (templates call `{{ csrf_field() }}`)."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf_token(request)}">')


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:   # older browsers, same-site navigations: the token decides
        return True
    host = request.headers.get("host", "")
    try:
        return urlsplit(origin).netloc.lower() == host.lower()
    except ValueError:
        return False


async def require_csrf(request: Request) -> None:
    """Dependency of every POST page route: refuses (403) a request whose CSRF token is
    missing or wrong, or whose Origin is another site."""
    if not _same_origin(request):
        raise CsrfRefused("refused: the form was sent from another site")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    secret = request.cookies.get(SESSION_COOKIE) or request.cookies.get(PRESESSION_COOKIE)
    if not sent or not secret:
        raise CsrfRefused("refused: the form carries no valid token (it expired, or came from another site)")
    expected = hmac.new(secret.encode(), b"homeapp clinic csrf", hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sent, expected):
        raise CsrfRefused("refused: the form carries no valid token (it expired, or came from another site)")


# --------------------------------------------------------------------------- pages

def render(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    """The page `template` with `context`, plus what every page uses: `_` (translate),
    `lang`, `languages`, `actor` (None before sign-in), `csrf_field()`, `path` (this page,
    for "come back here" links), `query` (its query parameters)."""
    lang = language(request)
    context.setdefault("actor", getattr(request.state, "actor", None))
    response = templates.TemplateResponse(request, template, {
        "_": lambda text, /, **values: i18n.gettext(lang, text, **values),
        "lang": lang, "languages": i18n.LANGUAGES,
        "csrf_field": lambda: csrf_field(request),
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "query": request.query_params,
        **context}, status_code=status_code)
    fresh = getattr(request.state, "new_presession", None)
    if fresh:
        set_cookie(response, PRESESSION_COOKIE, fresh, max_age=SESSION_MAX_AGE_S)
    return response


def error_page(request: Request, status_code: int, title: str, message: str,
               problems: list[str] | None = None) -> Response:
    """An error as a page of the site (not JSON), with its HTTP status."""
    return render(request, "error.html", status_code=status_code, title=title, message=message,
                  problems=problems or [])


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/patients"
    return target


class WebRoute(APIRoute):
    """A page route: refusals become pages of the site (a service refusal keeps its
    status and message; a missing session redirects to the sign-in form), and every
    response carries SECURITY_HEADERS."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as e:
                wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = "/signin?next=" + quote(wanted if request.method == "GET" else "/patients", safe="")
                if e.expired:
                    target += "&expired=1"
                response = RedirectResponse(target, status_code=303)
            except CsrfRefused:
                _ = translator(request)
                response = error_page(request, 403, _("Refused"), _(
                    "The form expired or came from another site. Reload the page and try again."))
            except ClinicError as e:
                _ = translator(request)
                title = _("Page not found") if e.status == 404 else _("Refused")
                response = error_page(request, e.status, title, _service_message(e.message, _), e.problems)
            except RequestValidationError as e:
                problems = [f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in e.errors()]
                response = error_page(request, 400, translator(request)("Refused"), "bad request", problems)
            except StarletteHTTPException as e:
                _ = translator(request)
                response = error_page(request, e.status_code,
                                      _("Page not found") if e.status_code == 404 else _("Refused"), str(e.detail))
            except Exception:
                log.exception("internal error on %s", request.url.path)
                _ = translator(request)
                response = error_page(request, 500, _("Refused"), _(
                    "Something went wrong in the clinic service (it is logged on the server)."))
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page


#: The service's refusals a page shows most, in the reader's language (others stay as the service words them).
_SERVICE_MESSAGES = (
    (re.compile(r"^no patient '(?P<id>.*)' among your patients$"), "No patient {id} among your patients."),
    (re.compile(r"^patient '(?P<id>.*)': no log uploaded yet$"), "Patient {id}: no log uploaded yet."),
)


def _service_message(message: str, _: Callable[..., str]) -> str:
    for pattern, text in _SERVICE_MESSAGES:
        found = pattern.match(message)
        if found:
            return _(text, **found.groupdict())
    return message


def page_router() -> APIRouter:
    """A router for a module of pages: its routes are WebRoutes (see above)."""
    return APIRouter(route_class=WebRoute)


# --------------------------------------------------------------------------- static files

router = page_router()
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".png": "image/png",
                 ".ico": "image/x-icon", ".woff2": "font/woff2"}


@router.get("/static/{name}")
def static(name: str) -> Response:
    """A file of STATIC_DIR by its plain name (no path, so nothing outside it can be asked for)."""
    path = STATIC_DIR / name
    if "/" in name or "\\" in name or name.startswith(".") or path.suffix not in _STATIC_TYPES \
            or not path.is_file():
        raise ClinicError(f"no static file {name!r}", status=404)
    response = FileResponse(path, media_type=_STATIC_TYPES[path.suffix])
    response.headers["Cache-Control"] = "no-cache"
    return response
