"""The device API: every request is signed with the device's Ed25519 key (homeapp/syncproto.py).

    POST /api/device/pair                 {"code", "public_key", "software_version"?}
    GET  /api/device/state                how far the clinic holds this device's chain
    POST /api/device/log                  chained records + signed end line (JSON lines)
    GET  /api/device/prescription         the newest published prescription (204: none)
    POST /api/device/prescription/status  {"sha256", "status", "reason"?}
"""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from homeapp import syncproto

from ..service import ClinicError, Refused
from .deps import clinic, json_object, path_with_query

router = APIRouter(prefix="/api/device")


async def _device(request: Request, body: bytes):
    # the database work runs on the thread pool: the event loop keeps serving other devices
    return await run_in_threadpool(clinic(request).authenticate_device, method=request.method,
                                   path=path_with_query(request), headers=request.headers, body=body)


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
    await run_in_threadpool(svc.authenticate_device, method=request.method, path=path_with_query(request),
                            headers=request.headers, body=body, public_key=public_key)
    version = data.get("software_version")
    return await run_in_threadpool(svc.pair_device, data["code"], public_key,
                                   software_version=version if isinstance(version, str) else None)


@router.get("/state")
async def state(request: Request) -> dict:
    device = await _device(request, await request.body())
    return await run_in_threadpool(clinic(request).device_state, device)


@router.post("/log")
async def upload(request: Request) -> dict:
    body = await request.body()
    device = await _device(request, body)
    svc = clinic(request)
    try:
        return await run_in_threadpool(svc.ingest, device, body)
    except ClinicError as e:
        await run_in_threadpool(svc.refuse_upload_audited, device, e)
        raise


@router.get("/prescription")
async def prescription(request: Request) -> Response:
    device = await _device(request, await request.body())
    found = await run_in_threadpool(clinic(request).prescription_for_device, device)
    return Response(status_code=204) if found is None else JSONResponse(found)


@router.post("/prescription/status")
async def prescription_status(request: Request) -> dict:
    body = await request.body()
    device = await _device(request, body)
    data = await json_object(request)
    sha, status, reason = data.get("sha256"), data.get("status"), data.get("reason")
    if not isinstance(sha, str) or not isinstance(status, str):
        raise ClinicError("sha256 and status are required, as text")
    if reason is not None and not isinstance(reason, str):
        raise ClinicError("reason: text or null")
    await run_in_threadpool(clinic(request).prescription_status, device, sha, status, reason)
    return {"ok": True}


__all__ = ["router", "Refused"]
