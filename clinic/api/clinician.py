"""The clinicians' JSON API (bearer token from POST /api/login). Every route that names
a patient answers 404 for another clinician's patient, exactly as for one that does not
exist, and the audit table records the attempt.

    POST /api/login                                {"username", "password"} -> {"token", "expires_at"}
    GET  /api/patients                             the clinician's patients
    GET  /api/patients/{patient_id}                one patient: devices, prescriptions
    GET  /api/patients/{patient_id}/export         ?format=json|csv: as `homeapp log export`
    GET  /api/patients/{patient_id}/bundle         the device-signed log bundle
    POST /api/patients/{patient_id}/pairing-code   a one-time code for the device
    GET  /api/patients/{patient_id}/prescriptions  published prescriptions and the device's answer
    POST /api/patients/{patient_id}/prescriptions  publish a signed prescription (the file as the body)
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from ..service import Actor, ClinicError
from ..timeutil import iso
from .deps import clinic, json_object, signed_in_clinician

router = APIRouter(prefix="/api")


@router.post("/login")
async def login(request: Request) -> dict:
    data = await json_object(request)
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ClinicError("username and password are required, as text")
    svc = clinic(request)
    actor = svc.authenticate(username, password)
    token, expires = svc.new_api_token(actor)
    return {"token": token, "expires_at": iso(expires)}


@router.get("/patients")
def patients(request: Request, actor: Actor = Depends(signed_in_clinician)) -> list:
    return clinic(request).patients(actor)


@router.get("/patients/{patient_id}")
def patient(patient_id: str, request: Request, actor: Actor = Depends(signed_in_clinician)) -> dict:
    return clinic(request).patient(actor, patient_id)


@router.get("/patients/{patient_id}/export")
def export(patient_id: str, request: Request, format: str = "json",
           actor: Actor = Depends(signed_in_clinician)) -> Response:
    text = clinic(request).export(actor, patient_id, format)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    return Response(text, media_type=media)


@router.get("/patients/{patient_id}/bundle")
def bundle(patient_id: str, request: Request, actor: Actor = Depends(signed_in_clinician)) -> Response:
    return Response(clinic(request).bundle(actor, patient_id), media_type="application/x-ndjson")


@router.post("/patients/{patient_id}/pairing-code")
def pairing_code(patient_id: str, request: Request, actor: Actor = Depends(signed_in_clinician)) -> dict:
    code, expires = clinic(request).new_pairing_code(actor, patient_id)
    return {"code": code, "expires_at": iso(expires)}


@router.get("/patients/{patient_id}/prescriptions")
def prescriptions(patient_id: str, request: Request, actor: Actor = Depends(signed_in_clinician)) -> list:
    return clinic(request).prescriptions(actor, patient_id)


@router.post("/patients/{patient_id}/prescriptions")
async def publish(patient_id: str, request: Request, actor: Actor = Depends(signed_in_clinician)) -> dict:
    body = await request.body()
    return clinic(request).publish_prescription(actor, patient_id, body)
