"""The clinic's ASGI application (FastAPI, served by uvicorn in clinic/cli.py).

`create_app(db_url)` migrates the database and mounts the routers: the device API and
the clinicians' JSON API (clinic/api/), plus the web pages when the `clinic.web` package
is present (it must expose `router`, a FastAPI APIRouter), or whatever `routers` lists.
The `Clinic` service is `app.state.clinic`; routes get it with `clinic.api.deps.clinic`.

Every error leaves as JSON `{"error": "...", "problems": [...]}` with a 4xx status and a
message a person can act on; nothing leaves as a traceback.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from .db import migrate, open_engine
from .service import Clinic, ClinicError

log = logging.getLogger(__name__)

#: Largest request body accepted (an upload is at most syncproto.MAX_UPLOAD_BYTES).
MAX_BODY_BYTES = 8 * 1024 * 1024


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before it is read whole
    (by its Content-Length, or while it streams in when it has none)."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    await _json(send, 400, "Content-Length is not a number")
                    return
                if too_big:
                    await _json(send, 413, f"request body too large (at most {self.max_bytes} bytes)")
                    return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _json(send, 413, f"request body too large (at most {self.max_bytes} bytes)")


class _TooLarge(Exception):
    pass


async def _json(send: Any, status: int, message: str) -> None:
    import json
    body = json.dumps({"error": message, "problems": []}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def default_routers() -> list[Any]:
    """The device API, the clinicians' JSON API, and `clinic.web.router` when present."""
    from .api import clinician, device
    routers = [device.router, clinician.router]
    if importlib.util.find_spec("clinic.web") is not None:
        routers.append(importlib.import_module("clinic.web").router)
    return routers


def create_app(db: str | Engine | None = None, *, routers: Iterable[Any] | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The application on the database `db` (a URL, an engine, or None for the default
    SQLite file), its schema migrated to the newest version."""
    engine = db if isinstance(db, Engine) else open_engine(db)
    migrate(engine)
    app = FastAPI(title="homeapp clinic", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.clinic = Clinic(engine)
    for router in (default_routers() if routers is None else routers):
        app.include_router(router)

    @app.exception_handler(ClinicError)
    async def _clinic_error(_request: Request, exc: ClinicError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "problems": exc.problems}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return JSONResponse({"error": "bad request", "problems": problems}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such page or API route"
        if exc.status_code == 405:
            message = "this route does not take that method"
        return JSONResponse({"error": message, "problems": []}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse({"error": "internal error in the clinic service (logged on the server)",
                             "problems": []}, status_code=500)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app
