"""A patient's exports for the clinic's own records.

    GET /patients/{patient_id}/export.csv    the whole log, exactly `homeapp-clinic export --format csv`
    GET /patients/{patient_id}/review.pdf    ?from&to: the review's PDF (homeapp/report.py's), its
                                             verification line from checking the device-signed bundle
    GET /patients/{patient_id}/fhir.json     ?from&to: the sessions as an HL7 FHIR R4 (4.0.1) Bundle (clinic/web/fhir.py)
"""
from __future__ import annotations

import re

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from homeapp import syncproto
from homeapp.bundle import parse_bundle, verify_bundle
from homeapp.report import review_pdf

from ..models import Device
from ..service import Actor
from . import fhir, review
from .core import clinic, language, page_router, signed_in

router = page_router()


def _filename(patient_id: str, what: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", patient_id)[:64] + what


def _download(body: bytes | str, media: str, name: str) -> Response:
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "Cache-Control": "private, no-store"})


@router.get("/patients/{patient_id}/export.csv")
def export_csv(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    text = clinic(request).export(actor, patient_id, "csv")
    return _download(text, "text/csv; charset=utf-8", _filename(patient_id, "-log.csv"))


@router.get("/patients/{patient_id}/review.pdf")
async def export_pdf(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rng = review.parse_range(request.query_params.get("from"), request.query_params.get("to"))
    svc = clinic(request)
    lang = language(request)          # the reader's language, as the page that links here

    def build() -> bytes:
        data = review.load(svc, actor, patient_id, rng, contractions=False, action="web_review_pdf")
        text = svc.bundle(actor, patient_id)        # the newest device's signed chain (404: none yet)
        bundle = parse_bundle(text.encode("utf-8"), name=f"patient {patient_id!r}'s log")
        with svc.Session() as db:
            key_b64 = db.scalar(select(Device.public_key_b64).where(Device.key_id == bundle.device_key_id))
        key = syncproto.public_key_from_b64(key_b64) if key_b64 else None
        problems = verify_bundle(bundle, key)
        return review_pdf(bundle, data.review, verified=None if key is None else not problems, problems=problems,
                          lang=lang)
    pdf = await run_in_threadpool(build)
    return _download(pdf, "application/pdf",
                     _filename(patient_id, f"-review-{rng.first.isoformat()}-{rng.last.isoformat()}.pdf"))


@router.get("/patients/{patient_id}/fhir.json")
def export_fhir(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rng = review.parse_range(request.query_params.get("from"), request.query_params.get("to"))
    data = review.load(clinic(request), actor, patient_id, rng, contractions=False, action="web_fhir_export")
    bundle = fhir.sessions_bundle(patient_id, data.review, data.devices)
    return _download(fhir.bundle_json(bundle), fhir.MEDIA_TYPE,
                     _filename(patient_id, f"-sessions-{rng.first.isoformat()}-{rng.last.isoformat()}.fhir.json"))
