"""The patients page (the landing page after sign-in): the signed-in clinician's patients."""
from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import Response

from ..service import Actor
from .core import clinic, page_router, render, signed_in

router = page_router()


@router.get("/patients")
def patients(request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rows = clinic(request).patients(actor)
    return render(request, "patients.html", rows=rows)
