"""The device API: every request is signed with the device's Ed25519 key (homeapp/syncproto.py).

    POST /api/device/pair                 {"code", "public_key", "software_version"?}
    GET  /api/device/state                how far the clinic holds this device's chain
    POST /api/device/log                  chained records + signed end line (JSON lines)
    GET  /api/device/chain?after=N&limit=M  the chain the clinic holds after record N (to resume)
    GET  /api/device/prescription         the newest published prescription (204: none)
    POST /api/device/prescription/status  {"sha256", "status", "reason"?}
"""
from __future__ import annotations

import asyncio
import functools

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from homeapp import syncproto

from ..service import ClinicError
from .deps import clinic, json_object, path_with_query

router = APIRouter(prefix="/api/device")

#: Uploads whose work (in a thread: parsing, checking, the database) runs at once in one
#: service process; the others wait in the event loop, at no cost. PostgreSQL: fewer than
#: the connections its engine pools (db.open_engine: 10), since each upload beyond them had
#: the pool open a connection, and PostgreSQL start a backend, for that one upload, and the
#: threads only took the interpreter from each other; eight still overlap their waits on
#: the database. SQLite: two (one parses while the other commits), since it has one writer,
#: and a thread waiting for the file's lock sleeps in steps (the bench, alternating runs:
#: 160 to 170 uploads/s with two, 145 to 165 with one or four, 120 to 150 with forty).
UPLOAD_THREADS = {"postgresql": 8, "sqlite": 2}


def _upload_limiter(request: Request) -> anyio.CapacityLimiter:
    """The application's limiter of uploads at work, made in the event loop that serves
    it (on first use, and again should another loop serve the application later)."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    held = getattr(state, "upload_limiter", None)
    if held is None or held[0] is not loop:
        held = state.upload_limiter = (loop, anyio.CapacityLimiter(
            UPLOAD_THREADS.get(clinic(request).engine.dialect.name, 2)))
    return held[1]


async def _as_device(request: Request, body: bytes, work, *args):
    """Authenticate, then `work(device_request, *args)`, in one trip to the thread pool (the
    database work runs there: the event loop keeps serving other devices)."""
    svc = clinic(request)
    method, path, headers = request.method, path_with_query(request), request.headers

    def run():
        req = svc.authenticate_device(method=method, path=path, headers=headers, body=body)
        return work(req, *args)
    return await run_in_threadpool(run)


@router.post("/pair")
async def pair(request: Request) -> dict:
    body = await request.body()
    data = await json_object(request)
    for field in ("code", "public_key"):
        if not isinstance(data.get(field), str):
            raise ClinicError(f"{field}: required, as text")
    try:
        public_key = syncproto.public_key_from_b64(data["public_key"])
    except ValueError as e:
        raise ClinicError(f"public_key: {e}") from None
    svc = clinic(request)
    version = data.get("software_version")
    method, path, headers = request.method, path_with_query(request), request.headers

    def run():
        req = svc.authenticate_device(method=method, path=path, headers=headers, body=body, public_key=public_key)
        return svc.pair_device(data["code"], public_key, req=req,
                               software_version=version if isinstance(version, str) else None)
    return await run_in_threadpool(run)


@router.get("/state")
async def state(request: Request) -> dict:
    return await _as_device(request, await request.body(), clinic(request).device_state)


async def upload(request: Request) -> Response:
    """POST /api/device/log. A plain Starlette route, not FastAPI's: it takes the request
    as it is, so FastAPI's parameter solving (reading the cookies among others) is skipped
    on the one route every device calls after every session."""
    body = await request.body()
    svc = clinic(request)
    # authentication and storage in one transaction (the service audits every refusal)
    work = functools.partial(svc.receive_upload, method=request.method, path=path_with_query(request),
                             headers=request.headers, body=body)
    answer = await anyio.to_thread.run_sync(work, limiter=_upload_limiter(request))
    return JSONResponse(answer)     # as it is: no response model to validate it against


router.add_route(router.prefix + "/log", upload, methods=["POST"])   # add_route takes the whole path


@router.get("/chain")
async def chain(request: Request) -> dict:
    try:
        after = int(request.query_params.get("after", "-1"))
        limit = int(request.query_params.get("limit", str(syncproto.MAX_RECORDS_PER_UPLOAD)))
    except ValueError:
        raise ClinicError("after and limit are whole numbers") from None
    return await _as_device(request, await request.body(),
                            functools.partial(clinic(request).device_chain, after=after, limit=limit))


@router.get("/prescription")
async def prescription(request: Request) -> Response:
    found = await _as_device(request, await request.body(), clinic(request).prescription_for_device)
    return Response(status_code=204) if found is None else JSONResponse(found)


@router.post("/prescription/status")
async def prescription_status(request: Request) -> dict:
    body = await request.body()
    data = await json_object(request)
    sha, status, reason = data.get("sha256"), data.get("status"), data.get("reason")
    if not isinstance(sha, str) or not isinstance(status, str):
        raise ClinicError("sha256 and status are required, as text")
    if reason is not None and not isinstance(reason, str):
        raise ClinicError("reason: text or null")
    await _as_device(request, body, clinic(request).prescription_status, sha, status, reason)
    return {"ok": True}


__all__ = ["router"]
