"""Every word the review's charts and PDF show, in English and Swedish: one table, for the
device's `homeapp report` and the clinic's web pages alike (homeapp/report.py).

    text("sv", "Incidents")                       # -> "Händelser"
    text("sv", "{n} reports", n=1)                # plural entries pick their form by `n`
    day_month(dt.date(2026, 12, 5), "sv", weekday=True)   # -> "lör 5 dec"

Keyed by the English text, like the clinic's page catalogue (clinic/web/i18n.py), and with
the same Swedish words it and the device's translations use for the same things (pass,
ordination, följsamhet, smärta, ansträngning, nödstopp, tak, ...): one thing, one word.
An English text missing from the table is a programming error (KeyError), never a
silently English word on a Swedish page: the tests draw every chart in both languages.
Month and weekday names are written here, not taken from the machine's locale.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

#: The languages the review is written in (the first is the default).
LANGUAGES = ("en", "sv")
DEFAULT = LANGUAGES[0]

WEEKDAYS = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
            "sv": ("mån", "tis", "ons", "tor", "fre", "lör", "sön")}
MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
          "sv": ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")}

#: Texts whose form depends on a number `n`: English key -> language -> (one, many).
PLURALS: dict[str, dict[str, tuple[str, str]]] = {
    "{n} reports": {"en": ("{n} report", "{n} reports"), "sv": ("{n} rapport", "{n} rapporter")},
    "{n} completed": {"en": ("{n} completed", "{n} completed"), "sv": ("{n} genomfört", "{n} genomförda")},
    "{n} stopped": {"en": ("{n} stopped", "{n} stopped"), "sv": ("{n} stoppat", "{n} stoppade")},
    "{n} aborted": {"en": ("{n} aborted", "{n} aborted"), "sv": ("{n} avbrutet", "{n} avbrutna")},
    "{n} aborted/interrupted": {"en": ("{n} aborted/interrupted", "{n} aborted/interrupted"),
                                "sv": ("{n} avbrutet", "{n} avbrutna")},
    "{n} interrupted": {"en": ("{n} interrupted", "{n} interrupted"),
                        "sv": ("{n} avbrutet av appen", "{n} avbrutna av appen")},
    "VERIFICATION FAILED ({n} problems): do not rely on this data without checking with the device.": {
        "en": ("VERIFICATION FAILED ({n} problem): do not rely on this data without checking with the device.",
               "VERIFICATION FAILED ({n} problems): do not rely on this data without checking with the device."),
        "sv": ("VERIFIERINGEN MISSLYCKADES ({n} problem): lita inte på dessa data utan att kontrollera med enheten.",
               "VERIFIERINGEN MISSLYCKADES ({n} problem): lita inte på dessa data utan att kontrollera med "
               "enheten.")},
    "Pain {high}/10 or more after {n} sessions (highest {top}/10), {dates}": {
        "en": ("Pain {high}/10 or more after {n} session (highest {top}/10), {dates}",
               "Pain {high}/10 or more after {n} sessions (highest {top}/10), {dates}"),
        "sv": ("Smärta {high}/10 eller mer efter {n} pass (högst {top}/10), {dates}",
               "Smärta {high}/10 eller mer efter {n} pass (högst {top}/10), {dates}")},
    "{n} times": {"en": ("{n} time", "{n} times"), "sv": ("{n} gång", "{n} gånger")},
    "{n} sessions": {"en": ("{n} session", "{n} sessions"), "sv": ("{n} pass", "{n} pass")},
    "n/a (no session due in {n} days; {done} done)": {
        "en": ("n/a (no session due in {n} day; {done} done)", "n/a (no session due in {n} days; {done} done)"),
        "sv": ("– (inget pass ordinerat på {n} dag; {done} gjorda)",
               "– (inget pass ordinerat på {n} dagar; {done} gjorda)")},
}

#: English -> Swedish, for everything else.
SV: dict[str, str] = {
    # the charts
    "Session duration (min): {ended}\n(colours as in the calendar)":
        "Passens längd (min): {ended}\n(färger som i kalendern)",
    "no sessions": "inga pass",
    "Contractions per session: dot done (most on any channel),\ndash planned":
        "Kontraktioner per pass: punkt gjorda (flest på någon kanal),\nstreck planerade",
    "channel {n}": "kanal {n}",
    "ch {n} {label}: highest of the session": "kanal {n} {label}: passets högsta",
    "ch {n} cap {cap} mA": "kanal {n} tak {cap} mA",
    "Highest intensity per channel (mA): dots each session, line 7-session average, dotted cap":
        "Högsta intensitet per kanal (mA): punkt varje pass, linje medel av 7 pass, prickat tak",
    "pain 0-10 (shaded: {high} or more)": "smärta 0–10 (skuggat: {high} eller mer)",
    "effort (Borg CR10)": "ansträngning (Borg CR10)",
    "Pain and effort after sessions ({reported} of {n} sessions reported)":
        "Smärta och ansträngning efter passen (rapporterat efter {reported} av {n} pass)",
    "e-stop": "nödstopp",
    "fault": "fel",
    "watchdog": "vakthundsstopp",
    "electrode off": "elektrod lossnade",
    "refused": "nekad",
    "Incidents": "Händelser",
    "no sessions in this bundle": "inga pass i loggen",
    "Calendar {first} to {last}, each day by its best session:\n"
    "green completed · amber stopped early · red aborted/interrupted · grey no session · "
    "white outside the prescription":
        "Kalender {first} till {last}, varje dag efter dagens bästa pass:\n"
        "grönt genomfört · gult stoppat i förtid · rött avbrutet · grått inget pass · "
        "vitt utanför ordinationen",
    "Sessions completed each week / due that week (black line; prorated for part of a week)":
        "Genomförda pass per vecka / ordinerade den veckan (svart linje; i proportion för del av vecka)",
    # the PDF's head
    "NMES home training review: patient {patient}   sessions {period}":
        "NMES-hemträning, översikt: patient {patient}   pass {period}",
    "NOT VERIFIED: no device key was given. The hash chain is intact, but completeness and origin are "
    "unknown (the bundle names device key {key}).":
        "INTE VERIFIERAD: ingen enhetsnyckel angavs. Hashkedjan är hel, men fullständighet och ursprung "
        "är okända (loggpaketet anger enhetsnyckel {key}).",
    "Verified: complete, unaltered and signed by device key {key}.":
        "Verifierad: fullständig, oförändrad och signerad med enhetsnyckel {key}.",
    "; and {n} more": "; och {n} till",
    "Nothing flagged (pain, adherence, e-stops, faults, electrodes).":
        "Inget flaggat (smärta, följsamhet, nödstopp, fel, elektroder).",
    "{sessions} ({completed}, {stopped}, {aborted}).": "{sessions} ({completed}, {stopped}, {aborted}).",
    "Adherence {adherence} over {period}.": "Följsamhet {adherence}, {period}.",
    "Pain {trend}": "Smärta {trend}",
    # figures and periods
    "{first} to {last}": "{first} till {last}",
    "no day of the prescription": "ingen dag av ordinationen",
    "{percent}% ({done} of {due} due{more})": "{percent} % ({done} av {due} ordinerade{more})",
    "; {n} more done, beyond what was due": "; {n} extra pass utöver de ordinerade",
    "n/a (no day of the prescription in this period)": "– (ingen dag av ordinationen under perioden)",
    "the last {days} days against the {days} days before": "de senaste {days} dagarna mot de {days} dagarna före",
    "the last quarter of the reports against the first quarter":
        "sista fjärdedelen av rapporterna mot den första fjärdedelen",
    "no reports": "inga rapporter",
    "{mean} ({days}, {reports})": "{mean} ({days}, {reports})",
    # the flags (the clinic's pages word the same flags: clinic/web/patients.py)
    "on {days}": "{days}",
    "last on {days} ({n} days)": "senast {days} ({n} dagar)",
    "Pain rising: {change} ({how})": "Ökande smärta: {change} ({how})",
    "Adherence {adherence} over {period}: under {threshold}%":
        "Följsamhet {adherence}, {period}: under {threshold} %",
    "E-stop pressed": "Nödstopp",
    "Fault": "Fel",
    "Electrode came off": "En elektrod lossnade",
    "{what} {times} in {sessions}, {dates}": "{what} {times} under {sessions}, {dates}",
    # the sessions at the foot of the PDF
    "Sessions with a comment or a problem (newest first)": "Pass med kommentar eller problem (senaste först)",
    "{date} {ended}; pain {pain}": "{date} {ended}; smärta {pain}",
    "no session with a comment or a problem": "inget pass med kommentar eller problem",
    "… {n} more in the list of sessions": "… {n} till i listan över pass",
    "completed": "genomfört",
    "stopped": "stoppat",
    "aborted": "avbrutet",
    "interrupted": "avbrutet av appen",
    "interrupted (the app stopped during the session)": "avbrutet (appen stannade under passet)",
    "{status}: {reason}": "{status}: {reason}",
    "stopped by the patient": "stoppat av patienten",
    "stopped by the caregiver": "stoppat av vårdaren",
    "stopped by the clinician": "stoppat av behandlaren",
    "e-stop pressed": "nödstopp tryckt",
    # the prescription in force
    "Prescription in force": "Gällande ordination",
    "no prescription in this bundle": "ingen ordination i loggen",
    "{id} for {patient} by {clinician}, valid {issued} to {expires}{start}":
        "{id} för {patient} av {clinician}, giltig {issued} till {expires}{start}",
    ", sessions from {day}": ", pass från {day}",
    "{per_week} sessions/week, at most {per_day}/day, {hours} h apart; supervision {supervision}; {signed}":
        "{per_week} pass/vecka, högst {per_day}/dag, {hours} h emellan; tillsyn {supervision}; {signed}",
    "signed by key {key}": "signerad med nyckel {key}",
    "UNSIGNED": "OSIGNERAD",
    "channel {n} {label}: cap {cap} mA": "kanal {n} {label}: tak {cap} mA",
    "{label}: {minutes} min, {hz} Hz, {pulse} µs, on {on} s / off {off} s, ramps {up}/{down} s, {pattern}":
        "{label}: {minutes} min, {hz} Hz, {pulse} µs, på {on} s / av {off} s, ramper {up}/{down} s, {pattern}",
    "block": "block",
    # the HTML page (`homeapp report`)
    "NMES review: {patient}, {period}": "NMES-översikt: {patient}, {period}",
    "NMES home training review: patient {patient}": "NMES-hemträning, översikt: patient {patient}",
    "Sessions {period} · bundle {name} made {created}": "Pass {period} · loggpaket {name} skapat {created}",
    "(sessions since {since})": "(pass sedan {since})",
    "(whole log)": "(hela loggen)",
    "device key {key}": "enhetsnyckel {key}",
    "… and {n} more": "… och {n} till",
    "Needs attention": "Behöver uppmärksamhet",
    "Nothing flagged": "Inget flaggat",
    "No pain of {high}/10 or more, no rising pain, adherence not under {threshold}%, no e-stop, fault or "
    "electrode problem.":
        "Ingen smärta på {high}/10 eller mer, ingen ökande smärta, följsamhet inte under {threshold} %, "
        "inget nödstopp, fel eller elektrodproblem.",
    "sessions ({n} completed)": "pass ({n} genomförda)",
    "adherence {period}": "följsamhet {period}",
    "adherence {period} (last 4 weeks)": "följsamhet {period} (senaste 4 veckorna)",
    "stopped early": "stoppade i förtid",
    "aborted / interrupted": "avbrutna",
    "e-stops": "nödstopp",
    "faults": "fel",
    "electrode problems": "elektrodproblem",
    "refused requests": "nekade begäranden",
    "pain 0-10: {how}": "smärta 0–10: {how}",
    "pain 0-10, mean": "smärta 0–10, medel",
    "effort (Borg CR10): {how}": "ansträngning (Borg CR10): {how}",
    "effort (Borg CR10), mean": "ansträngning (Borg CR10), medel",
    "calendar and weekly sessions, session duration and contractions, intensity per channel, pain and effort, "
    "incidents":
        "kalender och pass per vecka, passens längd och kontraktioner, intensitet per kanal, smärta och "
        "ansträngning, händelser",
    "Sessions, newest first (shaded: pain {high}/10 or more, e-stop, fault or electrode problem)":
        "Pass, senaste först (skuggat: smärta {high}/10 eller mer, nödstopp, fel eller elektrodproblem)",
    "date": "datum",
    "duration": "längd",
    "highest ch {n}": "högsta kanal {n}",
    "contractions": "kontraktioner",
    "pain": "smärta",
    "effort": "ansträngning",
    "patient's comment": "patientens kommentar",
    "how it ended": "hur det slutade",
    "{done} of {planned}": "{done} av {planned}",
    "Also in this bundle: {ids}": "Också i loggpaketet: {ids}",
    "Latest incidents": "Senaste händelser",
    "when": "när",
    "what": "vad",
    "session": "pass",
    "detail": "detalj",
    "no incidents": "inga händelser",
    "Made by homeapp report from a homeapp.log-bundle/1 file. Days are local to the computer\n"
    "that made this report. Adherence: completed sessions of those due, from the prescription's first day\n"
    "(or the bundle's start) to the day the bundle was made, prorated for partial weeks; at most the\n"
    "prescription's daily limit counts a day, so it never exceeds 100%. Pain and effort compare windows\n"
    "that share no session. Check the device key id above against the one recorded when the device was set up.":
        "Skapad av homeapp report från en homeapp.log-bundle/1-fil. Dagarna är lokala för datorn\n"
        "som skapade rapporten. Följsamhet: genomförda pass av de ordinerade, från ordinationens första dag\n"
        "(eller loggpaketets början) till dagen loggpaketet skapades, i proportion för delar av veckor; högst\n"
        "ordinationens dagsgräns räknas per dag, så den blir aldrig över 100 %. Smärta och\n"
        "ansträngning jämför perioder som inte delar något pass. Jämför enhetsnyckelns id ovan med det som antecknades när enheten\n"
        "ställdes in.",
}

#: A prescription's own words (codes from the file) -> Swedish; other codes are shown as written.
SV_CODES = {"none": "ingen", "caregiver": "anhörig/vårdare", "synchronous": "synkront",
            "alternating": "alternerande"}


def check_language(lang: str) -> str:
    """`lang` if the review is written in it; ValueError naming the languages otherwise."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: the review is written in {' or '.join(LANGUAGES)}")
    return lang


def text(lang: str, english: str, /, **values: Any) -> str:
    """`english` in `lang`, then `.format(**values)`; plural entries choose by `values["n"]`."""
    check_language(lang)
    if english in PLURALS:
        one, many = PLURALS[english][lang]
        out = one if values.get("n") == 1 else many
    elif english in SV:
        out = english if lang == DEFAULT else SV[english]
    else:
        raise KeyError(f"no entry for {english!r} in homeapp/report_texts.py")
    return out.format(**values) if values else out


def code_word(lang: str, code: Any) -> str:
    """A code from the prescription (supervision, pattern) in `lang`."""
    check_language(lang)
    word = str(code)
    return SV_CODES.get(word, word) if lang == "sv" else word


def day_month(day: dt.date, lang: str, *, weekday: bool = False, year: bool = False) -> str:
    """`5 Dec`, `Sat 5 Dec`, `5 Dec 2026` (`lör 5 dec` in Swedish): no locale involved."""
    check_language(lang)
    out = f"{day.day} {MONTHS[lang][day.month - 1]}"
    if weekday:
        out = f"{WEEKDAYS[lang][day.weekday()]} {out}"
    return f"{out} {day.year}" if year else out


def month(day: dt.date, lang: str, *, year: bool = False) -> str:
    """`Dec` or `Dec 2026` (`dec 2026`)."""
    check_language(lang)
    name = MONTHS[lang][day.month - 1]
    return f"{name} {day.year}" if year else name


def english_texts() -> list[str]:
    """Every English text of the table, each form of the plurals included (for the tests)."""
    return list(SV) + [form for forms in PLURALS.values() for form in forms["en"]]
