"""One patient: the review over a chosen date range (homeapp/report.py's, as `homeapp
report` makes it), the sessions, the prescription history, the device.

    GET /patients/{patient_id}                      ?from=YYYY-MM-DD&to=YYYY-MM-DD (default: 4 weeks)
    GET /patients/{patient_id}/review.png           the review's charts over the same range
    GET /patients/{patient_id}/sessions/{session}   one session: every contraction and event

Another clinician's patient, or one that does not exist: 404, and an audit row.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from homeapp.report import INCIDENT_KINDS, PAIN_HIGH, rx_source
from homeapp.report_texts import SV as REPORT_SV, WEEKDAYS as REPORT_WEEKDAYS

from .. import timeutil
from ..service import Actor
from . import charts, i18n, overview, review
from .core import clinic, language, page_router, render, signed_in, translator, url_part
from .overview import FlagView
from .patients import _nobreak, explain

router = page_router()

#: Links another page module adds to the patient page's menu: (English label, path with
#: `{patient_id}`), e.g. `PATIENT_LINKS.append(("Program", "/patients/{patient_id}/program"))`.
PATIENT_LINKS: list[tuple[str, str]] = []


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "–"
    return f"{x:.{digits}f}" if digits else str(int(round(x)))


def _when(value: Any) -> str:
    """A stored time, local, to the minute."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = overview._when(value)
        if value is None:
            return ""
    return value.astimezone(timeutil.clinic_zone()).strftime("%Y-%m-%d %H:%M")


@router.get("/patients/{patient_id}")
def patient_page(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rng = review.parse_range(request.query_params.get("from"), request.query_params.get("to"))
    data = review.load(clinic(request), actor, patient_id, rng, contractions=False)
    # the charts' picture is of this same review: start drawing it for the browser's next request
    charts.prepare(charts.chart_key(clinic(request), data, zone=timeutil.clinic_zone(), lang=language(request)),
                   data.review)
    _ = translator(request)
    today = timeutil.clinic_today()
    r = data.review
    statuses = Counter(s.get("status") for s in r.sessions)
    incidents = Counter(k for _w, _s, k, _d in r.incidents)
    live = overview.sync_flags(devices=len(data.devices), last_contact=data.last_contact,
                               last_session=data.latest_session, now=timeutil.utcnow(),
                               tz=timeutil.clinic_zone())
    flags = [(f.level, *explain(f, _)) for f in live] + [
        (f["level"], *explain(FlagView(f["kind"], f["level"], f["values"]), _)) for f in overview.review_flag_views(r)]
    rx_channels = []
    if r.rx_in_force:
        src = rx_source(r.rx_in_force)
        rx_channels = [c.get("label", _("Channel {n}", n=i + 1)) for i, c in enumerate(src.get("channels") or ())]
    n_channels = max([len(row.peak_ma) for row in r.rows] + [len(rx_channels), 1])
    presets = [(_("4 weeks"), 28), (_("3 months"), 91), (_("6 months"), 182), (_("1 year"), 365)]
    return render(
        request, "patient.html", patient_id=patient_id, data=data, r=r, statuses=statuses, incidents=incidents,
        flags=flags, rx_channels=rx_channels, incident_names={k: _(v) for k, v in INCIDENT_KINDS.items()},
        ended=lambda row: _ended(row, _), started=lambda when: _started(when, _), n_channels=n_channels, fmt=_fmt, when=_when, nobreak=_nobreak,
        pain_high=PAIN_HIGH, rx_lines=_rx_lines(r.rx_in_force, _), today=today,
        presets=[(label, (today - dt.timedelta(days=days - 1)).isoformat(), today.isoformat())
                 for label, days in presets],
        links=[(label, path.replace("{patient_id}", _quote(patient_id))) for label, path in PATIENT_LINKS],
        png=f"/patients/{_quote(patient_id)}/review.png?{rng.query()}",
        exports={"csv": f"/patients/{_quote(patient_id)}/export.csv",
                 "pdf": f"/patients/{_quote(patient_id)}/review.pdf?{rng.query()}",
                 "fhir": f"/patients/{_quote(patient_id)}/fhir.json?{rng.query()}"})


STATUS_WORDS = {"completed": "completed", "stopped": "stopped", "aborted": "aborted", "interrupted": "interrupted"}
WEEKDAYS = REPORT_WEEKDAYS["en"]


def _ended(row: Any, _) -> str:
    """How a session ended: the status in the reader's language, then the device's own reason."""
    status = _(STATUS_WORDS[row.status]) if row.status in STATUS_WORDS else row.status
    if row.status == "interrupted":
        return _("interrupted (the app stopped during the session)")
    prefix = f"{row.status}: "
    return f"{status}: {row.ended[len(prefix):]}" if row.ended.startswith(prefix) else status


def _started(when: dt.datetime, _) -> str:
    return f"{_(WEEKDAYS[when.weekday()])} {when:%Y-%m-%d %H:%M}"


def _quote(text: str) -> str:
    return url_part(text)


def _rx_lines(rx: dict[str, Any] | None, _) -> list[str]:
    """The prescription in force, a line per part, in the reader's language."""
    if not rx:
        return [_("No prescription in the log yet.")]
    src = rx_source(rx)
    lines = [_("{id}, valid {issued} to {expires}", id=src.get("id", "?"), issued=src.get("issued", "?"),
               expires=src.get("expires", "?")),
             _("{per_week} sessions a week, at most {per_day} a day, {hours} h apart",
               per_week=src.get("sessions_per_week", "?"), per_day=src.get("max_sessions_per_day", "?"),
               hours=src.get("min_hours_between", "?"))]
    for i, c in enumerate(src.get("channels") or ()):
        # numbered from 1, as the program editor and the device's screens number channels
        lines.append(_("Channel {n} ({label}): cap {cap} mA", n=i + 1, label=c.get("label", ""),
                       cap=c.get("max_ma", "?")))
    for b in src.get("blocks") or ():
        def v(k: str) -> str:
            x = b.get(k)
            return str(x.get("value")) if isinstance(x, dict) else str(x)
        lines.append(_("{label}: {minutes} min, {hz} Hz, {pulse} µs, on {on} s / off {off} s",
                       label=b.get("label", ""), minutes=v("minutes"), hz=v("hz"), pulse=v("pulse_us"), on=v("on_s"),
                       off=v("off_s")))
    return lines


@router.get("/patients/{patient_id}/review.png")
async def review_chart(patient_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    rng = review.parse_range(request.query_params.get("from"), request.query_params.get("to"))
    svc = clinic(request)
    lang = language(request)

    def draw() -> bytes:
        # loaded (access checked, audited) on every request; drawn once per log (charts.py)
        data = review.load(svc, actor, patient_id, rng, contractions=False, action="web_review_chart")
        return charts.png(charts.chart_key(svc, data, zone=timeutil.clinic_zone(), lang=lang), data.review)
    png = await run_in_threadpool(draw)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@router.get("/patients/{patient_id}/sessions/{session_id}")
def session_page(patient_id: str, session_id: str, request: Request, actor: Actor = Depends(signed_in)) -> Response:
    s = review.session_detail(clinic(request), actor, patient_id, session_id)
    return render(request, "session.html", patient_id=patient_id, s=s, when=_when, fmt=_fmt,
                  incident_kinds=INCIDENT_KINDS, back=request.query_params.get("back", ""))


i18n.add("sv", {
    # the incidents, how sessions ended and the weekdays in the words of the review and its PDF
    **{word: REPORT_SV[word] for word in INCIDENT_KINDS.values()},
    **{word: REPORT_SV[word] for word in (*STATUS_WORDS.values(), "interrupted (the app stopped during the session)")},
    **dict(zip(REPORT_WEEKDAYS["en"], REPORT_WEEKDAYS["sv"])),
    "Patient {id}": "Patient {id}",
    "Review": "Översikt",
    "Sessions": "Pass",
    "Prescriptions": "Ordinationer",
    "Device": "Enhet",
    "Exports": "Exporter",
    "From": "Från",
    "To": "Till",
    "Show": "Visa",
    "4 weeks": "4 veckor",
    "3 months": "3 månader",
    "6 months": "6 månader",
    "1 year": "1 år",
    "Days {first} to {last}": "Dagarna {first} till {last}",
    "Needs attention": "Behöver uppmärksamhet",
    "Nothing flagged in these days.": "Inget flaggat dessa dagar.",
    "sessions": "pass",
    "{n} completed": "{n} genomförda",
    "stopped early": "stoppade i förtid",
    "aborted or interrupted": "avbrutna",
    "e-stops": "nödstopp",
    "faults": "fel",
    "electrode problems": "elektrodproblem",
    "adherence": "följsamhet",
    "pain, mean": "smärta, medel",
    "{done} of {due} due": "{done} av {due} ordinerade",
    "no session due": "inga pass ordinerade",
    "Charts: calendar, sessions a week, duration, contractions, intensity per channel, pain and effort, incidents":
        "Diagram: kalender, pass per vecka, längd, kontraktioner, intensitet per kanal, smärta och ansträngning, "
        "händelser",
    "Sessions, newest first": "Pass, senaste först",
    "Date": "Datum",
    "Duration": "Längd",
    "Highest, {label}": "Högsta, {label}",
    "Contractions": "Kontraktioner",
    "Pain": "Smärta",
    "Effort": "Ansträngning",
    "Patient's comment": "Patientens kommentar",
    "How it ended": "Hur det slutade",
    "No session in these days.": "Inga pass dessa dagar.",
    "{n} min": "{n} min",
    "{done} of {planned}": "{done} av {planned}",
    "Prescription in force": "Gällande ordination",
    "No prescription in the log yet.": "Ingen ordination i loggen än.",
    "{id}, valid {issued} to {expires}": "{id}, giltig {issued} till {expires}",
    "{per_week} sessions a week, at most {per_day} a day, {hours} h apart":
        "{per_week} pass i veckan, högst {per_day} per dag, {hours} h emellan",
    "Channel {n} ({label}): cap {cap} mA": "Kanal {n} ({label}): tak {cap} mA",
    "Channel {n}": "Kanal {n}",
    "{label}: {minutes} min, {hz} Hz, {pulse} µs, on {on} s / off {off} s":
        "{label}: {minutes} min, {hz} Hz, {pulse} µs, på {on} s / av {off} s",
    "Prescription history": "Ordinationshistorik",
    "Prescription": "Ordination",
    "Valid": "Giltig",
    "Signed by": "Signerad av",
    "Published": "Publicerad",
    "On the device": "På enheten",
    "Sessions under it": "Pass med den",
    "installed": "installerad",
    "pending": "väntar",
    "deferred": "uppskjuten",
    "key {key}": "nyckel {key}",
    "None yet.": "Inga än.",
    "Key id": "Nyckel-id",
    "Paired": "Parkopplad",
    "Last sync": "Senaste synk",
    "Last upload": "Senaste uppladdning",
    "Software": "Programvara",
    "Records": "Poster",
    "No device is paired.": "Ingen enhet är parkopplad.",
    "The log as CSV": "Loggen som CSV",
    "The review as PDF": "Översikten som PDF",
    "The sessions as HL7 FHIR R4 (JSON)": "Passen som HL7 FHIR R4 (JSON)",
    "whole log": "hela loggen",
    "these days": "dessa dagar",
    "Session {id}": "Pass {id}",
    "Adherence counts up to {day}, the last day the device reached the clinic.":
        "Följsamheten räknas till {day}, sista dagen enheten nådde kliniken.",
    "Back to patient {id}": "Tillbaka till patient {id}",
    "Started": "Start",
    "Ended": "Slut",
    "Status": "Status",
    "Report": "Rapport",
    "Events": "Händelser",
    "Time (s)": "Tid (s)",
    "Event": "Händelse",
    "Detail": "Detalj",
    "Channel": "Kanal",
    "Start (s)": "Start (s)",
    "End (s)": "Slut (s)",
    "Peak (mA)": "Topp (mA)",
    "Completed": "Fullföljd",
    "yes": "ja",
    "no": "nej",
    "No report.": "Ingen rapport.",
    "pain {pain}/10, effort {effort}": "smärta {pain}/10, ansträngning {effort}",
    "Planned contractions per channel: {n}": "Planerade kontraktioner per kanal: {n}",
})
