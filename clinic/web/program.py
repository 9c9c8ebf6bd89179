"""A new program from the browser: edit a patient's prescription, sign it in the browser,
publish it, and see when the device installed it.

    GET  /patients/{id}/program                 the editor, started from ?start=current (the
                                                prescription in force), suggestion (the
                                                progression rules) or preset (&preset=NAME)
    POST /patients/{id}/program                 check the form with the validator; when valid,
                                                offer signing (the canonical bytes to sign)
    POST /patients/{id}/program/unsigned        the checked draft as a file (for `homeapp rx sign`)
    POST /patients/{id}/program/publish         the draft and the browser's signature -> published
    POST /patients/{id}/program/upload          a file signed elsewhere (`homeapp rx sign`) -> published
    GET  /patients/{id}/program/status          what was published and what the device did with it

Nothing is checked twice in two languages: the form's values become a prescription dict,
and `schedules.validate.check_prescription` judges it; its messages are shown beside the
field they name. The page never sees a private key: the server hands it the exact bytes
`schedules.signing.canonical_json` makes of the checked draft (base64), static/sign.js
signs them with WebCrypto's Ed25519, and the server publishes the draft with that
signature through `Clinic.publish_prescription`, which verifies it against the keys
registered to the patient's clinician, exactly as the command line's `rx publish`.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from typing import Any, Mapping

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from homeapp.report import INCIDENT_KINDS, rx_source
from homeapp.report_texts import SV as REPORT_SV
from schedules.limits import (BLOCK_NUMERIC_FIELDS, CHANNELS_MAX, DEVICE_LIMITS, FORMAT, PATTERNS, SCHEDULE_LIMITS,
                              SUPERVISION)
from schedules.presets import PRESETS, make_prescription, preset_text
from schedules.progression import Reason, suggest
from schedules.signing import SIGNATURE_FIELD, canonical_json
from schedules.validate import PrescriptionError, check_prescription, json_object_from_bytes

from .. import timeutil
from ..models import ClinicianKey, Patient, PublishedPrescription
from ..service import Actor, ClinicError, Refused
from . import i18n, program_messages
from .core import clinic, csrf_token, language, page_router, render, require_csrf, signed_in, translator, url_part

router = page_router()

#: New programs run this long unless the clinician changes `expires`.
DEFAULT_LENGTH = dt.timedelta(days=90)
SCHEDULE_FIELDS = ("sessions_per_week", "max_sessions_per_day", "min_hours_between")
#: A block field's name for a person (translated in the template).
FIELD_NAMES = {"minutes": "Block length", "hz": "Frequency", "pulse_us": "Pulse width per phase",
               "on_s": "Contraction", "off_s": "Rest", "ramp_up_s": "Ramp up", "ramp_down_s": "Ramp down",
               "max_ma": "Amplitude cap", "sessions_per_week": "Sessions per week",
               "max_sessions_per_day": "Sessions per day at most", "min_hours_between": "Hours between sessions"}


def today() -> dt.date:
    """The clinic's today, in its time zone ($HOMEAPP_CLINIC_TZ, else this machine's):
    a new program's issued and valid_from, and the day the rules judge up to."""
    return timeutil.clinic_today()


# --------------------------------------------------------------------------- the form

def _number(text: str) -> Any:
    """A form's number: int when whole, else float; a decimal comma is read as a point
    (Swedish); anything else stays text, so the validator names it ("is not a number")."""
    t = text.strip().replace(",", ".")
    try:
        return int(t)
    except ValueError:
        pass
    try:
        value = float(t)
    except ValueError:
        return text.strip()
    return value if math.isfinite(value) else text.strip()


def draft_from_form(form: Mapping[str, str], *, patient_id: str) -> dict[str, Any]:
    """The prescription dict the form's fields describe. Empty fields are left out (the
    validator then says "missing" and what is allowed)."""
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    d: dict[str, Any] = {"format": FORMAT, "id": text("id"), "patient_id": patient_id,
                         "clinician_id": text("clinician_id"), "issued": text("issued"), "expires": text("expires")}
    if text("valid_from"):
        d["valid_from"] = text("valid_from")
    for name in SCHEDULE_FIELDS:
        if text(name):
            d[name] = _number(text(name))
    d["supervision"] = text("supervision")
    channels = []
    for i in range(_count(form, "n_channels", 1)):
        ch: dict[str, Any] = {}
        if text(f"channels-{i}-label"):
            ch["label"] = text(f"channels-{i}-label")
        if text(f"channels-{i}-max_ma"):
            ch["max_ma"] = _number(text(f"channels-{i}-max_ma"))
        channels.append(ch)
    d["channels"] = channels
    blocks = []
    for i in range(_count(form, "n_blocks", 1)):
        b: dict[str, Any] = {}
        if text(f"blocks-{i}-label"):
            b["label"] = text(f"blocks-{i}-label")
        for name in BLOCK_NUMERIC_FIELDS:
            value, lo, hi = (text(f"blocks-{i}-{name}{suffix}") for suffix in ("", "-min", "-max"))
            if lo or hi:   # the patient may adjust it: {value, min, max}
                b[name] = {k: _number(v) for k, v in (("value", value), ("min", lo), ("max", hi)) if v}
            elif value:
                b[name] = _number(value)
        b["pattern"] = text(f"blocks-{i}-pattern") or "synchronous"
        blocks.append(b)
    d["blocks"] = blocks
    return d


def _count(form: Mapping[str, str], name: str, default: int) -> int:
    try:
        return max(0, min(20, int(str(form.get(name, default)))))
    except ValueError:
        return default


def fields_of(d: Mapping[str, Any]) -> dict[str, str]:
    """The form's field values (text) for a prescription dict: the inverse of draft_from_form."""
    def show(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    out = {k: show(d.get(k)) for k in ("id", "clinician_id", "issued", "expires", "valid_from", "supervision",
                                       *SCHEDULE_FIELDS)}
    for i, ch in enumerate(d.get("channels") or ()):
        if isinstance(ch, Mapping):
            out[f"channels-{i}-label"] = show(ch.get("label"))
            out[f"channels-{i}-max_ma"] = show(ch.get("max_ma"))
    for i, b in enumerate(d.get("blocks") or ()):
        if not isinstance(b, Mapping):
            continue
        out[f"blocks-{i}-label"] = show(b.get("label"))
        out[f"blocks-{i}-pattern"] = show(b.get("pattern", "synchronous"))
        for name in BLOCK_NUMERIC_FIELDS:
            v = b.get(name)
            if isinstance(v, Mapping):
                out[f"blocks-{i}-{name}"] = show(v.get("value"))
                out[f"blocks-{i}-{name}-min"] = show(v.get("min"))
                out[f"blocks-{i}-{name}-max"] = show(v.get("max"))
            else:
                out[f"blocks-{i}-{name}"] = show(v)
    return out


def field_key(path: str) -> str:
    """The form's name for a validator path: `blocks[1].hz.min` -> `blocks-1-hz-min`."""
    return re.sub(r"\[(\d+)\]", r"-\1", path).replace(".", "-")


def problems_by_field(problems: list[str], known: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The validator's messages under the form field they name (the longest field key the
    message's path starts with: `blocks-1-hz`, else `blocks-1`, `blocks`), and those that
    name none of them (shown above the form). The message keeps its own words."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for line in problems:
        path, sep, text = line.partition(": ")
        key = field_key(path) if sep else ""
        parts = key.split("-") if key else []
        for n in range(len(parts), 0, -1):
            candidate = "-".join(parts[:n])
            if candidate in known:
                by_field.setdefault(candidate, []).append(line)
                break
        else:
            general.append(line)
    return by_field, general


def known_keys(n_channels: int, n_blocks: int) -> set[str]:
    keys = {"id", "clinician_id", "issued", "expires", "valid_from", "supervision", "patient_id", "format",
            "channels", "blocks", "signature", *SCHEDULE_FIELDS}
    for i in range(n_channels):
        keys |= {f"channels-{i}", f"channels-{i}-label", f"channels-{i}-max_ma"}
    for i in range(n_blocks):
        keys |= {f"blocks-{i}", f"blocks-{i}-label", f"blocks-{i}-pattern"}
        for name in BLOCK_NUMERIC_FIELDS:
            keys |= {f"blocks-{i}-{name}", f"blocks-{i}-{name}-value", f"blocks-{i}-{name}-min",
                     f"blocks-{i}-{name}-max"}
    return keys


# --------------------------------------------------------------------------- the patient's programs

def published(request: Request, actor: Actor, patient_id: str) -> list[dict[str, Any]]:
    """The prescriptions published for the patient, oldest first, each with its JSON
    (`source`). The service's own call comes first: it refuses (404, audited) a patient who
    is not this clinician's, and audits the read."""
    rows = clinic(request).prescriptions(actor, patient_id)
    with clinic(request).Session() as db:
        pk = db.scalar(select(Patient.id).where(Patient.patient_id == patient_id))
        sources = {r.sha256: json.loads(r.source_json) for r in db.scalars(
            select(PublishedPrescription).where(PublishedPrescription.patient_id == pk))}
    return [{**r, "source": sources.get(r["sha256"])} for r in rows]


def in_force(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest prescription the device reported installed, else None."""
    for r in reversed(rows):
        if r["device_status"] == "installed" and r["source"] is not None:
            return r
    return None


def registered_keys(request: Request, actor: Actor) -> list[str]:
    """The key ids registered to the signed-in clinician (the clinic accepts only these)."""
    with clinic(request).Session() as db:
        return list(db.scalars(select(ClinicianKey.key_id).where(ClinicianKey.clinician_id == actor.clinician_id)
                               .order_by(ClinicianKey.key_id)))


def fresh_draft(rx: Mapping[str, Any], day: dt.date) -> dict[str, Any]:
    """A prescription in force as the start of a new one: new id, issued today, the same
    length (at least DEFAULT_LENGTH when unknown), no signature, no valid_from."""
    from schedules.progression import new_id
    d = json.loads(json.dumps(rx))
    d.pop(SIGNATURE_FIELD, None)
    d.pop("valid_from", None)
    try:
        length = dt.date.fromisoformat(d["expires"]) - dt.date.fromisoformat(d["issued"])
    except (KeyError, TypeError, ValueError):
        length = DEFAULT_LENGTH
    d["id"] = new_id(str(d.get("id", "rx")), day)
    d["issued"], d["expires"] = day.isoformat(), (day + length).isoformat()
    return d


# --------------------------------------------------------------------------- the suggestion's reasons

#: The incidents in the words of the review and its PDF.
_INCIDENTS_SV = {kind: REPORT_SV[word] for kind, word in INCIDENT_KINDS.items()}
_SOURCE_SV = {"the guidance": "riktlinjerna"}


def _n(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return f"{x:g}" if isinstance(x, float) else str(x)


def _pct(ratio: Any) -> str:
    return "–" if ratio is None else f"{100 * ratio:.0f} %"


def _sv_reason(code: str, v: Mapping[str, Any]) -> str | None:
    """A progression reason in Swedish, from its code and values (None: show the English)."""
    def src(x: str) -> str:
        return _SOURCE_SV.get(x, x.replace("preset ", "mallen "))

    def block(i: Any) -> str:
        return f"block {int(i) + 1}"

    texts = {
        "raise_cap": lambda: "Höj maxintensiteten: " + "; ".join(
            f"kanal {int(re.search(r'[0-9]+', p).group()) + 1} {_n(o)} → {_n(n)} mA" for p, o, n in v["changes"])
            + " (cirka 10 %, inom enhetens gräns 100 mA).",
        "cap_reached": lambda: (f"Kanal {v['channel'] + 1} ({v['label']}) nådde sin maxintensitet {_n(v['cap_ma'])} mA "
                                f"i {v['hits']} av de senaste {v['sessions']} passen."),
        "tolerated": lambda: (f"Smärta högst {_n(v['pain'])}/10 under de senaste {v['sessions']} passen och "
                              f"följsamhet {_pct(v['adherence'])} ({v['done']} av {v['due']} planerade)."),
        "below_cap": lambda: ("Ingen kanal nådde sin maxintensitet i de flesta av de senaste passen: patienten kan "
                              "fortfarande höja intensiteten inom programmet (högst: " + ", ".join(
                                  f"{'-' if h is None else _n(round(h, 1))} av {_n(c)} mA"
                                  for h, c in zip(v["highest_ma"], v["caps_ma"])) + ")."),
        "pain_high": lambda: (f"Smärtan nådde {_n(v['pain'])}/10 efter ett pass de senaste 14 dagarna "
                              f"({v['limit']}/10 eller mer): ingen progression."),
        "pain_rising": lambda: f"Smärtan ökar: från {v['earlier']} till {v['later']} av 10 i genomsnitt.",
        "adherence_low": lambda: (f"Följsamhet {_pct(v['adherence'])} ({v['done']} av {v['due']} planerade), under "
                                  f"{_pct(v['limit'])}: programmet har inte prövats som ordinerat."),
        "incidents": lambda: ("De senaste 14 dagarna: " + ", ".join(_INCIDENTS_SV.get(k, k) for k in v["kinds"])
                              + ". Ta reda på varför innan programmet ändras."),
        "ended_early": lambda: f"{v['sessions']} pass avslutades i förtid.",
        "cut_short": lambda: f"Kontraktioner avbröts i {v['sessions']} pass.",
        "effort_hard": lambda: (f"Patienten upplever arbetet som tungt (ansträngning {v['effort']}/10 i genomsnitt, "
                                f"{_n(v['limit'])} eller mer)."),
        "too_few_sessions": lambda: (f"Bara {v['sessions']} pass med programmet de senaste {v['days']} dagarna: "
                                     f"minst {v['needed']} behövs för att bedöma det."),
        "too_early": lambda: (f"Programmet har gällt i {v['days']} dagar: ge det minst {v['needed']} dagar innan "
                              f"det ändras."),
        "pain_not_low": lambda: f"Inte alla de senaste passen har en smärtrapport på {v['limit']}/10 eller lägre.",
        "lengthen_contraction": lambda: (f"Förläng kontraktionen i {block(v['block'])}: on_s {_n(v['old'])} → "
                                         f"{_n(v['new'])} s (inom {src(v['source'])}: {_n(v['low'])} till "
                                         f"{_n(v['high'])} s), eftersom maxintensiteten är vid enhetens gräns."),
        "shorten_rest": lambda: (f"Korta vilan i {block(v['block'])}: off_s {_n(v['old'])} → {_n(v['new'])} s "
                                 f"(inom {src(v['source'])}: {_n(v['low'])} till {_n(v['high'])} s), eftersom "
                                 f"maxintensiteten är vid enhetens gräns."),
        "cap_at_device_limit": lambda: f"Maxintensiteten är vid enhetens gräns {_n(v['limit_ma'])} mA.",
        "lengthen_contraction_at_limit": lambda: (f"{block(v['block'])}: kontraktionen är redan vid gränsen för "
                                                  f"{src(v['source'])} ({_n(v['low'])} till {_n(v['high'])} s)."),
        "shorten_rest_at_limit": lambda: (f"{block(v['block'])}: vilan är redan vid gränsen för {src(v['source'])} "
                                          f"({_n(v['low'])} till {_n(v['high'])} s)."),
        "lengthen_contraction_adjustable": lambda: (f"{block(v['block'])}: patienten justerar redan kontraktionen "
                                                    f"inom ett intervall; det lämnas åt dig."),
        "shorten_rest_adjustable": lambda: (f"{block(v['block'])}: patienten justerar redan vilan inom ett "
                                            f"intervall; det lämnas åt dig."),
        "at_limits": lambda: ("Patienten har vuxit ur programmet, men varje steg reglerna tar är vid sin gräns: "
                              "bedöm det själv."),
    }
    make = texts.get(code)
    try:
        return make() if make else None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def reason_text(reason: Any, lang: str) -> str:
    """The reason in the page's language (Swedish where written, else the rules' English)."""
    if lang == "sv":
        return _sv_reason(reason.code, reason.values) or reason.text
    return reason.text


def changed_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, str]:
    """Form field -> the value in force, for every field the draft changes (shown as "was")."""
    return {field_key(path.replace(".value", "")): before for path, before, _after in _changes(old, new)}


# --------------------------------------------------------------------------- the patients page's flag

class ReadyToProgress:
    """What the patients page shows for a patient the progression rules would move on:
    `summary` (the proposed step) and `reasons` (why), in the rules' words."""

    def __init__(self, suggestion: Any) -> None:
        self.summary = suggestion.reasons[0].text
        self.reasons = [r.text for r in suggestion.reasons[1:]]
        self.suggestion = suggestion
        #: what the patient list caches: codes and values (worded per reader by `coded_words`)
        self.coded = [{"code": r.code, "values": dict(r.values), "text": r.text} for r in suggestion.reasons]

    def __bool__(self) -> bool:
        return True


def progression_rule(review: Any) -> ReadyToProgress | None:
    """The progression rules over a patient's review (clinic/web/overview.py asks every
    registered rule): a flag when they propose a step, nothing when they hold."""
    rx = review.rx_in_force
    if not isinstance(rx, Mapping):
        return None
    source = rx_source(rx)
    day = review.end_day or today()
    s = suggest({"sessions": review.sessions}, source, today=day, tz=timeutil.clinic_zone())
    return ReadyToProgress(s) if s.change else None


def _register() -> None:
    from . import overview
    overview.register_progression(progression_rule, words=coded_words)


def coded_words(reason: Mapping[str, Any], lang: str) -> str:
    """A reason the patient list cached ({"code", "values", "text"}) in `lang`."""
    return reason_text(Reason(str(reason.get("code", "")), str(reason.get("text", "")),
                              reason.get("values") or {}), lang)


_register()


# --------------------------------------------------------------------------- pages

@router.get("/patients/{patient_id}/program")
def editor(patient_id: str, request: Request, start: str = "", preset: str = "",
           actor: Actor = Depends(signed_in)) -> Response:
    rows = published(request, actor, patient_id)
    current = in_force(rows)
    day = today()
    lang = language(request)
    suggestion = None
    notice = None
    _ = translator(request)
    if not start:
        start = "current" if current else "preset"
    if start == "suggestion" and current is not None:
        export = json.loads(clinic(request).export(actor, patient_id, "json"))
        suggestion = suggest(export, current["source"], today=day, tz=timeutil.clinic_zone())
        draft = suggestion.proposed if suggestion.change else fresh_draft(current["source"], day)
    elif start in ("current", "suggestion") and current is not None:
        draft = fresh_draft(current["source"], day)
    else:
        if start in ("current", "suggestion"):
            notice = _("No prescription published here has been installed on the device yet: start from a preset.")
        start = "preset"
        name = preset if preset in PRESETS else "fibre-all-types"
        draft = make_prescription(name, patient_id=patient_id, clinician_id=actor.name, issued=day,
                                  expires=day + DEFAULT_LENGTH, lang=lang)
        preset = name
    return _editor_page(request, actor, patient_id, draft, rows=rows, current=current, start=start,
                        preset=preset, suggestion=suggestion, notice=notice, problems=None)


def _editor_page(request: Request, actor: Actor, patient_id: str, draft: dict[str, Any], *, rows, current,
                 start: str, preset: str, suggestion, notice, problems: list[str] | None,
                 refused: list[str] | None = None, status_code: int = 200) -> Response:
    n_channels, n_blocks = len(draft.get("channels") or ()), len(draft.get("blocks") or ())
    lang = language(request)
    shown = [program_messages.translate(line, lang) for line in problems or []]
    by_field, general = problems_by_field(shown, known_keys(n_channels, n_blocks))
    checked = problems is not None and not problems
    changes = _changes(current["source"] if current else None, draft)
    return render(
        request, "program.html", status_code=status_code, patient_id=patient_id, draft=draft,
        values=fields_of(draft), errors=by_field, general=general, checked=checked, n_channels=n_channels,
        n_blocks=n_blocks, current=current, rows=rows, start=start, preset=preset, suggestion=suggestion,
        notice=notice, refused=[program_messages.translate(line, lang) for line in refused or []], error_links=_error_links(by_field, translator(request)),
        changes=[(path_label(p, translator(request)), o, n) for p, o, n in changes],
        presets=[(name, preset_text(name, lang).title) for name in PRESETS],
        preset_rationale=preset_text(preset, lang).rationale if start == "preset" and preset in PRESETS else None,
        limits=DEVICE_LIMITS, schedule_limits=SCHEDULE_LIMITS, numeric=BLOCK_NUMERIC_FIELDS,
        schedule_fields=SCHEDULE_FIELDS, field_names=FIELD_NAMES, patterns=PATTERNS, supervision=SUPERVISION,
        channels_max=CHANNELS_MAX,
        draft_json=json.dumps(draft, ensure_ascii=False) if checked else "",
        canonical_b64=base64.b64encode(canonical_json(draft)).decode("ascii") if checked else "",
        keys=registered_keys(request, actor), csrf_token=csrf_token(request),
        limit_text=lambda limit: _limit_text(translator(request), limit),
        reason_text=lambda reason: reason_text(reason, lang),
        was=changed_fields(current["source"] if current else None, draft))


def _error_links(by_field: Mapping[str, list[str]], _: Any) -> list[tuple[str, str]]:
    """(anchor, what) for the summary above the form: each refused field or part, linked."""
    out = []
    for key in by_field:
        base = re.sub(r"-(value|min|max)$", "", key)
        path = re.sub(r"-(\d+)", r"[\1]", base).replace("-", ".")
        anchor = f"f-{base}" if re.search(r"[a-z_]$", base) and base not in ("channels", "blocks") else f"part-{base}"
        out.append((anchor, path_label(path, _)))
    return out


def _limit_text(_: Any, limit: Any) -> str:
    """`allowed 1 to 150 Hz` in the page's language (the numbers from schedules.limits)."""
    return _("allowed {range}", range=_("{low} to {high}", low=_n(limit.low), high=_n(limit.high))
             + (f" {limit.unit}" if limit.unit else ""))


def _changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(field path, old, new) of what a draft changes in the prescription in force, for a
    person to read before signing (ids and dates left out: they always change)."""
    if old is None:
        return []
    skip = {"id", "issued", "expires", "valid_from", SIGNATURE_FIELD}
    out: list[tuple[str, str, str]] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping) and not ({"value", "min", "max"} >= set(a) | set(b)):
            for k in list(dict.fromkeys([*a, *b])):
                if not path and k in skip:
                    continue
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        elif isinstance(a, list) and isinstance(b, list):
            for i in range(max(len(a), len(b))):
                walk(a[i] if i < len(a) else None, b[i] if i < len(b) else None, f"{path}[{i}]")
        elif a != b:
            out.append((path, _show(a), _show(b)))

    walk(old, new, "")
    return out


def path_label(path: str, _: Any) -> str:
    """A validator path as a person reads it: `blocks[1].hz` -> "Block 2 · Frequency"."""
    m = re.fullmatch(r"(channels|blocks)\[(\d+)\](?:\.(\w+))?", path)
    if m is None:
        name = FIELD_NAMES.get(path) or TOP_NAMES.get(path)
        return _(name) if name else path
    part = _("Channel {n}" if m.group(1) == "channels" else "Block {n}", n=int(m.group(2)) + 1)
    field = m.group(3)
    if field is None:
        return part
    name = FIELD_NAMES.get(field) or {"label": "Label", "pattern": "Pattern"}.get(field)
    return f"{part} · {_(name) if name else field}"


TOP_NAMES = {"clinician_id": "Clinician id", "supervision": "Supervision", "patient_id": "Patient"}


def _show(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, Mapping) and "label" in v and ("hz" in v or "max_ma" in v):
        # a whole block or channel added or removed: its label and numbers, in the form's order
        units = {k: DEVICE_LIMITS[k].unit for k in DEVICE_LIMITS}
        rest = [f"{_show(v[k])} {units[k]}" for k in (*BLOCK_NUMERIC_FIELDS, "max_ma") if k in v]
        return f"{v['label']}: " + ", ".join(rest)
    if isinstance(v, Mapping) and set(v) <= {"value", "min", "max"}:
        return f"{_show(v.get('value'))} ({_show(v.get('min'))}–{_show(v.get('max'))})"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


@router.post("/patients/{patient_id}/program", dependencies=[Depends(require_csrf)])
async def check(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rows = published(request, actor, patient_id)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    action = form.get("action", "check")
    draft = draft_from_form(form, patient_id=patient_id)
    m = re.fullmatch(r"(add|remove)_(block|channel)(?:-(\d+))?", action)
    if m:
        # the form changes shape; nothing is judged until the clinician checks it
        kind = "blocks" if m.group(2) == "block" else "channels"
        items = draft[kind]
        if m.group(1) == "add":
            items.append(json.loads(json.dumps(items[-1])) if items else {})
        elif m.group(3) is not None and int(m.group(3)) < len(items) and len(items) > 1:
            items.pop(int(m.group(3)))
        problems = None
    else:
        problems = check_prescription(draft, today=today())
    return _editor_page(request, actor, patient_id, draft, rows=rows, current=in_force(rows),
                        start=form.get("start", ""), preset=form.get("preset", ""), suggestion=None, notice=None,
                        problems=problems, status_code=200 if not problems else 422)


def _draft_field(form: Mapping[str, Any], patient_id: str) -> dict[str, Any]:
    raw = form.get("draft")
    if not isinstance(raw, str) or not raw.strip():
        raise ClinicError("no program was sent: check the program first, then sign it")
    try:
        draft = json_object_from_bytes(raw.encode("utf-8"), name="the program")
    except PrescriptionError as e:
        raise ClinicError("the program sent is not readable", e.problems) from None
    if draft.get("patient_id") != patient_id:
        raise ClinicError(f"the program sent is written for {draft.get('patient_id')!r}, not for {patient_id!r}")
    return draft


@router.post("/patients/{patient_id}/program/unsigned", dependencies=[Depends(require_csrf)])
async def unsigned(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    published(request, actor, patient_id)  # only this clinician's patient (404 and audited otherwise)
    draft = _draft_field(await request.form(), patient_id)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", str(draft.get("id", "prescription")))[:80] or "prescription"
    return Response(json.dumps(draft, indent=2, ensure_ascii=False) + "\n", media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}.json"'})


@router.post("/patients/{patient_id}/program/publish", dependencies=[Depends(require_csrf)])
async def publish(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rows = published(request, actor, patient_id)  # only this clinician's patient (404 and audited otherwise)
    form = await request.form()
    draft = _draft_field(form, patient_id)
    raw_sig = form.get("signature")
    try:
        signature = json.loads(raw_sig) if isinstance(raw_sig, str) else None
    except ValueError:
        signature = None
    if not isinstance(signature, dict):
        raise ClinicError("the program was not signed: sign it in the browser first (or upload a signed file)")
    draft.pop(SIGNATURE_FIELD, None)
    try:
        result = clinic(request).publish_prescription(
            actor, patient_id, json.dumps({**draft, SIGNATURE_FIELD: signature}, ensure_ascii=False))
    except Refused as e:
        # the same program again, ready to sign, with the clinic's reasons above the signing
        problems = check_prescription(draft, today=today())
        return _editor_page(request, actor, patient_id, draft, rows=rows, current=in_force(rows),
                            start=str(form.get("start", "")), preset="", suggestion=None, notice=None,
                            problems=problems, refused=[e.message, *e.problems], status_code=422)
    return RedirectResponse(f"/patients/{url_part(patient_id)}/program/status?published={result['sha256']}",
                            status_code=303)


@router.post("/patients/{patient_id}/program/upload", dependencies=[Depends(require_csrf)])
async def upload(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    published(request, actor, patient_id)  # only this clinician's patient (404 and audited otherwise)
    form = await request.form()
    file = form.get("file")
    if file is None or isinstance(file, str):
        raise ClinicError("no file was chosen: choose the signed prescription file (from `homeapp rx sign`)")
    raw = await file.read(512 * 1024 + 1)
    result = clinic(request).publish_prescription(actor, patient_id, raw)
    return RedirectResponse(f"/patients/{url_part(patient_id)}/program/status?published={result['sha256']}",
                            status_code=303)


@router.get("/patients/{patient_id}/program/status")
def status(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rows = published(request, actor, patient_id)
    sha = request.query_params.get("published", "")
    newest = rows[-1] if rows else None
    waiting = newest is not None and newest["device_status"] in ("pending", "deferred")
    return render(request, "program_status.html", patient_id=patient_id, rows=rows,
                  just=sha, newest=newest, waiting=waiting)


i18n.add("sv", {
    "New program": "Nytt program",
    "New program for {patient}": "Nytt program för {patient}",
    "Start from": "Utgå från",
    "the prescription in force": "ordinationen som gäller",
    "the progression suggestion": "förslaget om progression",
    "a preset": "en mall",
    "Use this preset": "Använd mallen",
    "Preset": "Mall",
    "No prescription published here has been installed on the device yet: start from a preset.":
        "Ingen ordination som publicerats här har installerats på enheten än: utgå från en mall.",
    "Suggestion": "Förslag",
    "The rules propose:": "Reglerna föreslår:",
    "No change proposed:": "Ingen ändring föreslås:",
    "The form below holds the proposal; nothing changes until you sign and publish it.":
        "Formuläret nedan innehåller förslaget; inget ändras förrän du signerar och publicerar det.",
    "Prescription": "Ordination",
    "Program id": "Program-id",
    "Clinician id": "Behandlar-id",
    "Issued": "Utfärdad",
    "Expires": "Upphör",
    "Valid from (optional)": "Giltig från (valfritt)",
    "Schedule": "Schema",
    "Sessions per week": "Pass per vecka",
    "Sessions per day at most": "Högst antal pass per dag",
    "Hours between sessions": "Timmar mellan passen",
    "Supervision": "Tillsyn",
    "none": "ingen",
    "caregiver": "anhörig/vårdare",
    "Channels": "Kanaler",
    "Channel {n}": "Kanal {n}",
    "Label": "Benämning",
    "Amplitude cap": "Maxintensitet",
    "Blocks": "Block",
    "Block {n}": "Block {n}",
    "Block length": "Blocklängd",
    "Frequency": "Frekvens",
    "Pulse width per phase": "Pulsbredd per fas",
    "Contraction": "Kontraktion",
    "Rest": "Vila",
    "Ramp up": "Upprampning",
    "Ramp down": "Nedrampning",
    "Pattern": "Mönster",
    "synchronous": "synkront",
    "alternating": "alternerande",
    "value": "värde",
    "Patient may adjust": "Patienten får justera",
    "from": "från",
    "to": "till",
    "allowed {range}": "tillåtet {range}",
    "{low} to {high}": "{low} till {high}",
    "Add a block": "Lägg till ett block",
    "Remove this block": "Ta bort blocket",
    "Add a channel": "Lägg till en kanal",
    "Remove this channel": "Ta bort kanalen",
    "Check the program": "Kontrollera programmet",
    "The validator refused the program: {n} problem(s), each shown beside its field.":
        "Valideringen underkände programmet: {n} problem, vart och ett visas vid sitt fält.",
    "The program is valid. Sign it to publish it.": "Programmet är giltigt. Signera det för att publicera det.",
    "Changes from the prescription in force": "Ändringar mot ordinationen som gäller",
    "Field": "Fält",
    "Now": "Nu",
    "New": "Nytt",
    "No change from the prescription in force.": "Ingen ändring mot ordinationen som gäller.",
    "Sign and publish": "Signera och publicera",
    "Your private key never leaves this computer: the browser signs the program, and only the signature is sent.":
        "Din privata nyckel lämnar aldrig datorn: webbläsaren signerar programmet och bara signaturen skickas.",
    "Your signing key file (clinician.key from homeapp rx keygen)":
        "Din signeringsnyckel (clinician.key från homeapp rx keygen)",
    "Keys registered to you at the clinic:": "Nycklar registrerade för dig på kliniken:",
    "none yet": "inga än",
    "Sign in the browser": "Signera i webbläsaren",
    "Publish to the device": "Publicera till enheten",
    "Make a new key in this browser": "Skapa en ny nyckel i webbläsaren",
    "This browser cannot sign with Ed25519 (WebCrypto). Download the unsigned file, sign it with homeapp rx sign, and upload the signed file below.":
        "Webbläsaren kan inte signera med Ed25519 (WebCrypto). Ladda ned den osignerade filen, signera den med homeapp rx sign och ladda upp den signerade filen nedan.",
    "Choose your key file first.": "Välj din nyckelfil först.",
    "This is a public key; signing needs the private key (clinician.key).":
        "Det här är en publik nyckel; signering kräver den privata nyckeln (clinician.key).",
    "This file is not an unencrypted PEM Ed25519 private key.":
        "Filen är ingen okrypterad PEM Ed25519 privat nyckel.",
    "Signed with key {key}. Publish it to send it to the device.":
        "Signerad med nyckel {key}. Publicera den för att skicka den till enheten.",
    "Key {key} is not registered to you at the clinic: the clinic will refuse this signature.":
        "Nyckel {key} är inte registrerad för dig på kliniken: kliniken kommer att neka signaturen.",
    "New key {key} made. Two files were downloaded: keep clinician.key secret; register clinician.pub with homeapp-clinic clinician key and add it to the device with homeapp rx trust add.":
        "Ny nyckel {key} skapad. Två filer laddades ned: håll clinician.key hemlig; registrera clinician.pub med homeapp-clinic clinician key och lägg till den på enheten med homeapp rx trust add.",
    "Without signing in the browser": "Utan signering i webbläsaren",
    "Download the unsigned file": "Ladda ned den osignerade filen",
    "Sign it on your computer:": "Signera den på din dator:",
    "Signed file": "Signerad fil",
    "Upload and publish": "Ladda upp och publicera",
    "Published programs": "Publicerade program",
    "Published": "Publicerad",
    "Signed by key": "Signerad med nyckel",
    "On the device": "På enheten",
    "installed": "installerad",
    "refused": "nekad",
    "Nothing published yet.": "Inget publicerat än.",
    "Program status": "Programstatus",
    "Published {id}. The device installs it at its next sync; this page updates by itself.":
        "{id} är publicerad. Enheten installerar den vid nästa synkning; sidan uppdateras av sig själv.",
    "The device installed {id} on {when}.": "Enheten installerade {id} {when}.",
    "The device refused {id}: {reason}": "Enheten nekade {id}: {reason}",
    "Edit the program again": "Redigera programmet igen",
    "Program": "Program",
    "was {value}": "var {value}",
    "The clinic refused to publish it:": "Kliniken vägrade publicera det:",
    "What you sign": "Det här signerar du",
    "week": "vecka",
    "day": "dag",
    "The program to sign cannot be read: reload the page.": "Programmet som ska signeras kan inte läsas: ladda om sidan.",
})
