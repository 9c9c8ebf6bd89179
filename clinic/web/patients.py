"""The patients page (the landing page after sign-in): one row per patient of the
signed-in clinician, searchable and sortable on the server (query parameters `q`,
`sort`, `dir`, `flagged`), with the flags of clinic/web/overview.py, each named and
explained in words on the page (and in its title, for a pointer's hover)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import Response

from .. import timeutil
from ..service import Actor
from . import i18n, overview
from .core import clinic, page_router, render, signed_in, translator

router = page_router()

#: Columns the list sorts by: (sort key, heading).
COLUMNS = (("patient", "Patient"), ("attention", "Needs attention"), ("week", "This week"),
           ("last_session", "Last session"), ("last_contact", "Last sync"))


def _plural(_: Callable[..., str], n: int, one: str, many: str, **values: Any) -> str:
    return _(one if n == 1 else many, n=n, **values)


def _nobreak(value: Any) -> Any:
    """A date that never wraps at its hyphens (non-breaking hyphens)."""
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return value.replace("-", "\u2011")
    return value


def explain(flag: overview.FlagView, _: Callable[..., str]) -> tuple[str, str]:
    """(short name, one-sentence explanation) of a flag in the reader's language."""
    v = {key: _nobreak(value) for key, value in flag.values.items()}
    k = flag.kind
    if k == "no_device":
        return _("No device"), _("No device is paired for this patient yet: give them a pairing code.")
    if k == "no_sync":
        if not v.get("since"):
            return _("Device not syncing"), _("The device has never reached the clinic.")
        return _("Device not syncing"), _(
            "The device has not reached the clinic for {days} days (last on {since}). The patient may be "
            "training: the sessions arrive when it syncs again.", days=v["days"], since=v["since"])
    if k == "no_training":
        if not v.get("last_session"):
            return _("Not training"), _("The device synced on {synced}, but no session in the last {window} days.",
                                        synced=v["synced"], window=overview.WINDOW_DAYS)
        return _("Not training"), _("The device synced on {synced}, but the last session was on {last} "
                                    "({days} days ago).", synced=v["synced"], last=v["last_session"], days=v["days"])
    if k == "pain_high":
        return (_("Pain {threshold}/10 or more", threshold=v["threshold"]),
                _plural(_, v["sessions"], "Pain {threshold}/10 or more after {n} session (highest {highest}/10), "
                                          "last on {last}.",
                        "Pain {threshold}/10 or more after {n} sessions (highest {highest}/10), last on {last}.",
                        threshold=v["threshold"], highest=v["highest"], last=v["last"]))
    if k == "pain_rising":
        return _("Pain rising"), _("Mean pain rose from {earlier} ({earlier_from} to {earlier_to}) to {later} "
                                   "({later_from} to {later_to}).",
                                   **{x: v[x] for x in ("earlier", "later", "earlier_from", "earlier_to", "later_from",
                                                        "later_to")})
    if k == "adherence_low":
        return _("Low adherence"), _("{done} of {due} sessions due were done, {first} to {last} ({percent}%; "
                                     "under {threshold}%).", **{x: v[x] for x in ("done", "due", "first", "last",
                                                                                  "percent", "threshold")})
    if k in ("estop", "fault", "electrode"):
        name = {"estop": _("E-stop"), "fault": _("Fault"), "electrode": _("Electrode problem")}[k]
        what = {"estop": ("E-stop pressed once, on {last}.", "E-stop pressed {n} times, last on {last}."),
                "fault": ("A stimulator fault once, on {last}.", "Stimulator faults {n} times, last on {last}."),
                "electrode": ("An electrode came off once, on {last}.",
                              "An electrode came off {n} times, last on {last}.")}[k]
        return name, _plural(_, v["times"], *what, last=v["last"])
    if k == "ended_early":
        return _("Ended early"), _plural(
            _, v["sessions"], "{n} session in the last {days} days ended early (stopped or aborted), last on {last}.",
            "{n} sessions in the last {days} days ended early (stopped or aborted), last on {last}.",
            days=v["days"], last=v["last"])
    if k == "progress":
        coded = flag.values.get("coded")
        if coded is not None:
            lang = getattr(_, "lang", "en")
            return _("Ready to progress"), " ".join(overview.reason_words(r, lang) for r in coded)
        return _("Ready to progress"), " ".join(v.get("reasons") or [v.get("summary", "")])
    return k, ""


@router.get("/patients")
def patients(request: Request, q: str = "", sort: str = "attention", dir: str = "", flagged: int = 0,
             actor: Actor = Depends(signed_in)) -> Response:
    descending = {"asc": False, "desc": True}.get(dir)
    now = timeutil.utcnow()
    rows = overview.patient_rows(clinic(request), actor, now=now, tz=timeutil.clinic_zone())
    shown = overview.sort_and_filter(rows, sort=sort, descending=descending, search=q[:64],
                                     flagged_only=bool(flagged))
    sort = sort if sort in overview.SORTS else "attention"
    current_desc = descending if descending is not None else sort == "attention"
    _ = translator(request)

    def sort_link(key: str) -> str:
        # a second click on the column sorts the other way
        desc = (not current_desc) if key == sort else key in ("attention", "last_session", "last_contact")
        params = {"sort": key, "dir": "desc" if desc else "asc"}
        if q:
            params["q"] = q
        if flagged:
            params["flagged"] = 1
        return "/patients?" + urlencode(params)

    today = now.astimezone(timeutil.clinic_zone()).date()
    return render(request, "patients.html", rows=[
        {"row": r, "flags": [(f.level, *explain(f, _)) for f in r.flags]} for r in shown],
        total=len(rows), q=q, sort=sort, descending=current_desc, flagged=bool(flagged), columns=COLUMNS,
        sort_link=sort_link, today=today, fmt_day=_day)


def _day(when: dt.datetime | None) -> str:
    return when.astimezone(timeutil.clinic_zone()).date().isoformat() if when else ""


i18n.add("sv", {
    "Patient": "Patient",
    "Needs attention": "Behöver uppmärksamhet",
    "This week": "Denna vecka",
    "Last session": "Senaste pass",
    "Last sync": "Senaste synk",
    "Search by patient id": "Sök på patient-id",
    "Search": "Sök",
    "Only patients with flags": "Bara patienter med flaggor",
    "Show all": "Visa alla",
    "{shown} of {total} patients": "{shown} av {total} patienter",
    "sorted by": "sorterat på",
    "ascending": "stigande",
    "descending": "fallande",
    "No patient matches.": "Ingen patient matchar.",
    "You have no patients yet.": "Du har inga patienter än.",
    "{done} of {per_week}": "{done} av {per_week}",
    "{due} due by today": "{due} ordinerade hittills",
    "no prescription": "ingen ordination",
    "never": "aldrig",
    "nothing to flag": "inget att flagga",
    "Adherence, last {days} days": "Följsamhet, senaste {days} dagarna",
    # flags
    "No device": "Ingen enhet",
    "No device is paired for this patient yet: give them a pairing code.":
        "Ingen enhet är parkopplad för patienten än: ge dem en parkopplingskod.",
    "Device not syncing": "Enheten synkar inte",
    "The device has never reached the clinic.": "Enheten har aldrig nått kliniken.",
    "The device has not reached the clinic for {days} days (last on {since}). The patient may be training: "
    "the sessions arrive when it syncs again.":
        "Enheten har inte nått kliniken på {days} dagar (senast {since}). Patienten kan träna ändå: "
        "passen kommer när den synkar igen.",
    "Not training": "Tränar inte",
    "The device synced on {synced}, but no session in the last {window} days.":
        "Enheten synkade {synced}, men inget pass de senaste {window} dagarna.",
    "The device synced on {synced}, but the last session was on {last} ({days} days ago).":
        "Enheten synkade {synced}, men senaste passet var {last} (för {days} dagar sedan).",
    "Pain {threshold}/10 or more": "Smärta {threshold}/10 eller mer",
    "Pain {threshold}/10 or more after {n} session (highest {highest}/10), last on {last}.":
        "Smärta {threshold}/10 eller mer efter {n} pass (högst {highest}/10), senast {last}.",
    "Pain {threshold}/10 or more after {n} sessions (highest {highest}/10), last on {last}.":
        "Smärta {threshold}/10 eller mer efter {n} pass (högst {highest}/10), senast {last}.",
    "Pain rising": "Ökande smärta",
    "Mean pain rose from {earlier} ({earlier_from} to {earlier_to}) to {later} ({later_from} to {later_to}).":
        "Medelsmärtan steg från {earlier} ({earlier_from} till {earlier_to}) till {later} ({later_from} till "
        "{later_to}).",
    "Low adherence": "Låg följsamhet",
    "{done} of {due} sessions due were done, {first} to {last} ({percent}%; under {threshold}%).":
        "{done} av {due} ordinerade pass gjordes, {first} till {last} ({percent} %; under {threshold} %).",
    "E-stop": "Nödstopp",
    "Fault": "Fel",
    "Electrode problem": "Elektrodproblem",
    "E-stop pressed once, on {last}.": "Nödstopp en gång, {last}.",
    "E-stop pressed {n} times, last on {last}.": "Nödstopp {n} gånger, senast {last}.",
    "A stimulator fault once, on {last}.": "Fel i stimulatorn en gång, {last}.",
    "Stimulator faults {n} times, last on {last}.": "Fel i stimulatorn {n} gånger, senast {last}.",
    "An electrode came off once, on {last}.": "En elektrod lossnade en gång, {last}.",
    "An electrode came off {n} times, last on {last}.": "En elektrod lossnade {n} gånger, senast {last}.",
    "Ended early": "Avbrutet i förtid",
    "{n} session in the last {days} days ended early (stopped or aborted), last on {last}.":
        "{n} pass de senaste {days} dagarna avslutades i förtid (stoppat eller avbrutet), senast {last}.",
    "{n} sessions in the last {days} days ended early (stopped or aborted), last on {last}.":
        "{n} pass de senaste {days} dagarna avslutades i förtid (stoppade eller avbrutna), senast {last}.",
    "Ready to progress": "Redo att öka",
})
