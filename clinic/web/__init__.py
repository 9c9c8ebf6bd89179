"""The clinician's web pages (server-rendered, Jinja2 templates): sign-in, the patients,
one patient's review and exports, and whatever other page modules this package holds.

`router` is what clinic/app.py mounts. It gathers the `router` of every module of this
package that has one (core's static files, auth, patients, ...), so a new page module is
added by creating it (clinic/web/NAME.py with `router = page_router()`), with no edit here.
See docs/clinic-web.md.
"""
from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter

#: Modules mounted first, in this order (the rest follow by name).
_FIRST = ("core", "auth")


def _page_modules() -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.ispkg and not m.name.startswith("_"))
    return [n for n in _FIRST if n in names] + [n for n in names if n not in _FIRST]


def _build() -> APIRouter:
    combined = APIRouter()
    for name in _page_modules():
        module = importlib.import_module(f"{__name__}.{name}")
        sub = getattr(module, "router", None)
        if isinstance(sub, APIRouter):
            combined.include_router(sub)
    return combined


router = _build()

__all__ = ["router"]
