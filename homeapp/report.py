"""The clinician's review: what a bundle says about a patient's training, as plain data
(for the report page here and for the clinic's web pages), and its rendering as one
self-contained HTML page and a one-page PDF, readable offline, taken in within a minute.

Data (no HTML, no plotting; call these from a web page):
- `review_of_bundle(bundle)` / `review_of_export(export)`: a `Review` with everything below.
- `adherence_over(...)`: sessions done of sessions due over a stated period, never above 100%.
- `compare_reports(rows, "pain")`: the patient's reports, later against earlier, in two
  windows that never share a session.
- `review_flags(review)`: what should worry a clinician, each with its reason.
- `session_rows(...)`: the table of sessions (date, duration, highest intensity per
  channel, contractions done of planned, pain, effort, comment, how it ended).

Rendering (`build_report`): top to bottom, in the order a clinician asks: can I trust this
file (verification, prominently), what needs attention (the flags, in red), is the patient
doing the sessions (adherence over the stated period, calendar and weekly counts), how do
the sessions go, is the patient progressing, the sessions one by one with the patient's
own words, what went wrong, what was prescribed. Plots are matplotlib (Agg backend, no
display, no network), embedded as base64 PNG. Every string from the bundle is HTML-escaped:
a bundle is data, never markup.

Languages: the page, the charts and the PDF take `lang` ("en", the default, or "sv"); every
text they show is in homeapp/report_texts.py, month and weekday names included (never the
machine's locale). The plain data (`Review`, `Flag.reason` of `review.flags`) stays English;
`review_flags(review, lang=...)` (or `review.flags_in(lang)`) words the flags again in another language.

Where the issue is silent:
- Days are the local days of the machine making the report (bundles store UTC).
- Adherence follows `schedules.adherence` (completed sessions only, at most the daily limit
  a day, partial weeks prorated) from the first day of each prescription (or the bundle's
  `since` day, when later) to the bundle's creation day; a later prescription takes over
  from its own first day. The period is always stated beside the figure.
- Pain and effort compare the last 14 days of reports against the 14 days before when
  both hold at least 2 reports, else the last quarter of the reports against the first.
- A session's contractions are the most any channel completed, against the planned count
  per channel; its intensity is each channel's highest set-point (`peak_ma`).
- "Faults" counts `fault` and `watchdog` events; "electrode problems" counts `lead_off`.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on a clinician's laptop or in CI

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from schedules.adherence import PeriodAdherence, WeekAdherence, period_adherence  # noqa: E402

from .bundle import Bundle, BundleError, parse_when, read_bundle, verify_bundle  # noqa: E402
from .report_texts import DEFAULT as DEFAULT_LANGUAGE, WEEKDAYS  # noqa: E402
from .report_texts import check_language, code_word, day_month, month  # noqa: E402
from .report_texts import text as _t  # noqa: E402

INCIDENT_KINDS = {"estop": "e-stop", "fault": "fault", "watchdog": "watchdog",
                  "lead_off": "electrode off", "refused": "refused"}
STATUS_COLORS = {"completed": "#2e7d32", "stopped": "#f9a825", "aborted": "#c62828",
                 "interrupted": "#6a1b9a"}
CHANNEL_COLORS = ("#1565c0", "#ef6c00")

#: Pain at or above this (0-10) is flagged.
PAIN_HIGH = 6
#: Mean pain (or effort) this much higher in the later window than the earlier is "rising".
RISE_POINTS = 1.0
#: Adherence below this is flagged, over a period of at least ADHERENCE_MIN_DAYS days.
ADHERENCE_LOW = 0.8
ADHERENCE_MIN_DAYS = 7
#: The report comparison: two windows of this many days, or quarters of the reports.
WINDOW_DAYS = 14
MIN_REPORTS_PER_WINDOW = 2


# --- data for any front end ---------------------------------------------------------------

@dataclass(frozen=True)
class SessionRow:
    """One line of the table of sessions."""

    session_id: str
    started: dt.datetime           # local, aware
    duration_min: float | None
    peak_ma: tuple[float | None, ...]   # highest intensity per channel (None: no data)
    done: int                      # contractions, the most any channel completed
    planned: int                   # contractions planned per channel
    pain: int | None               # 0-10, None: not reported
    effort: float | None           # Borg CR10, None: not reported
    comment: str | None            # the patient's own words (also a comment typed before Skip)
    status: str                    # completed, stopped, aborted, interrupted
    ended: str                     # how it ended, in words ("aborted: e-stop pressed")
    problems: tuple[str, ...]      # incident kinds in this session (estop, fault, lead_off, ...)

    @property
    def worrying(self) -> bool:
        """Pain at or above PAIN_HIGH, or an e-stop, fault or electrode problem."""
        return (self.pain is not None and self.pain >= PAIN_HIGH) or any(
            k in ("estop", "fault", "watchdog", "lead_off") for k in self.problems)


@dataclass(frozen=True)
class Window:
    """Reports from `first_day` to `last_day`: their mean and how many there were."""

    first_day: dt.date
    last_day: dt.date
    mean: float
    n: int

    def describe(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return _t(lang, "{mean} ({days}, {reports})", mean=f"{self.mean:.1f}",
                  days=_span(self.first_day, self.last_day, lang), reports=_t(lang, "{n} reports", n=self.n))


@dataclass(frozen=True)
class Comparison:
    """A reported value (pain or effort), later against earlier, in windows that share no
    session. `how` says which windows."""

    what: str
    how: str
    earlier: Window
    later: Window

    @property
    def change(self) -> float:
        return self.later.mean - self.earlier.mean

    def describe(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return f"{self.earlier.describe(lang)} → {self.later.describe(lang)}"

    def how_in(self, lang: str = DEFAULT_LANGUAGE) -> str:
        """`how` in `lang`."""
        if self.how == _HOW_QUARTERS:
            return _t(lang, _HOW_QUARTERS)
        return _t(lang, _HOW_WINDOWS, days=WINDOW_DAYS)


_HOW_WINDOWS = "the last {days} days against the {days} days before"
_HOW_QUARTERS = "the last quarter of the reports against the first quarter"


def _span(first: dt.date, last: dt.date, lang: str) -> str:
    """`2026-11-05 to 2026-12-04`, or one day."""
    if first == last:
        return first.isoformat()
    return _t(lang, "{first} to {last}", first=first.isoformat(), last=last.isoformat())


def adherence_text(a: PeriodAdherence, lang: str = DEFAULT_LANGUAGE) -> str:
    """`71% (10 of 14 due)`, or why there is no percentage (`PeriodAdherence.describe` in `lang`)."""
    if a.ratio is None:
        if a.days == 0:
            return _t(lang, "n/a (no day of the prescription in this period)")
        return _t(lang, "n/a (no session due in {n} days; {done} done)", n=a.days, done=a.done + a.extra)
    more = _t(lang, "; {n} more done, beyond what was due", n=a.extra) if a.extra else ""
    return _t(lang, "{percent}% ({done} of {due} due{more})", percent=f"{100 * a.ratio:.0f}", done=a.done,
              due=a.due, more=more)


def adherence_period(a: PeriodAdherence, lang: str = DEFAULT_LANGUAGE) -> str:
    """The days an adherence figure covers (`PeriodAdherence.period` in `lang`)."""
    if a.first_day is None or a.last_day is None:
        return _t(lang, "no day of the prescription")
    return _span(a.first_day, a.last_day, lang)


@dataclass(frozen=True)
class Flag:
    """Something that should worry a clinician, with the reason in one line."""

    kind: str                      # pain_high, pain_rising, adherence_low, estop, fault, electrode
    reason: str
    session_ids: tuple[str, ...] = ()


@dataclass
class Review:
    """Everything the review shows, computed once from a bundle (or a log export)."""

    sessions: list[dict[str, Any]]          # the export's sessions, oldest first
    starts: list[dt.datetime]               # their local, aware starts
    rows: list[SessionRow]
    prescriptions: list[dict[str, Any]]
    rx_in_force: dict[str, Any] | None
    incidents: list[tuple[dt.datetime, str, str, str]]  # (when, session id, kind, detail)
    weeks: list[WeekAdherence]
    adherence: PeriodAdherence
    adherence_recent: PeriodAdherence       # the last four weeks of the period
    pain: Comparison | None
    effort: Comparison | None
    end_day: dt.date | None                 # the bundle's day (the last day adherence counts)
    flags: list[Flag] = field(default_factory=list)

    @property
    def patient_id(self) -> str:
        return str(rx_source(self.rx_in_force).get("patient_id") or "?") if self.rx_in_force else "?"

    @property
    def period(self) -> str:
        """The days the sessions span: `2026-11-05 to 2026-12-04`, one day, or none."""
        return self.period_in(DEFAULT_LANGUAGE)

    def period_in(self, lang: str) -> str:
        """`period` in `lang`."""
        if not self.starts:
            return _t(lang, "no sessions")
        return _span(self.starts[0].date(), self.starts[-1].date(), lang)

    def flags_in(self, lang: str) -> list[Flag]:
        """`flags`, their reasons in `lang`."""
        return self.flags if lang == DEFAULT_LANGUAGE else review_flags(self, lang=lang)


def review_of_bundle(bundle: Bundle, *, tz: dt.tzinfo | None = None) -> Review:
    """The review of a read bundle (not verified here: see bundle.verify_bundle)."""
    return review_of_export(bundle.export(skip_kinds=("contraction",)),  # per-session counts suffice
                            created_at=bundle.header.get("created_at"), since=bundle.header.get("since"),
                            tz=tz)


def review_of_export(export: Mapping[str, Any], *, created_at: str | None = None, since: str | None = None,
                     tz: dt.tzinfo | None = None) -> Review:
    """The review of a log export (contract.md's shape, with `prescriptions`).
    `created_at`: when it was exported (adherence counts up to that day; default: the
    last session's day). `since`: the export holds no session before this day."""
    sessions = sorted((s for s in export.get("sessions") or () if isinstance(s, dict) and s.get("started_at")),
                      key=lambda s: s["started_at"])
    starts = [parse_when(s["started_at"]).astimezone(tz) for s in sessions]
    incidents = []
    for s, start in zip(sessions, starts):
        for e in s.get("events") or ():
            if isinstance(e, Mapping) and e.get("kind") in INCIDENT_KINDS:
                when = start + dt.timedelta(seconds=_maybe(e.get("t")) or 0.0)
                incidents.append((when, str(s.get("id")), e["kind"], _detail(e.get("detail"))))
    prescriptions = [p for p in export.get("prescriptions") or () if isinstance(p, dict)]
    last_rx_id = sessions[-1].get("prescription_id") if sessions else None
    in_force = [p for p in prescriptions if rx_source(p).get("id") == last_rx_id] or prescriptions
    rx_in_force = in_force[-1] if in_force else None
    end_day = _day(created_at, tz)
    if end_day is None and starts:
        end_day = starts[-1].date()
    if end_day is not None and starts and starts[-1].date() > end_day:
        end_day = starts[-1].date()  # a session after the export's stamp: a clock was wrong; count it
    rx_channels = rx_source(rx_in_force).get("channels", []) if rx_in_force else []
    rows = session_rows(sessions, starts, n_channels=max([len(s.get("channels") or ()) for s in sessions]
                                                           + [len(rx_channels), 1]))
    weeks = adherence_weeks(sessions, prescriptions, end_day=end_day, since=_day(since, tz), tz=tz)
    recent_from = end_day - dt.timedelta(days=27) if end_day else None
    review = Review(
        sessions=sessions, starts=starts, rows=rows, prescriptions=prescriptions, rx_in_force=rx_in_force,
        incidents=incidents, weeks=weeks, adherence=period_adherence(weeks),
        adherence_recent=period_adherence([w for w in weeks if recent_from and w.first_day >= recent_from]
                                          or weeks[-1:]),
        pain=compare_reports(rows, "pain"), effort=compare_reports(rows, "effort"), end_day=end_day)
    review.flags = review_flags(review)
    return review


def _day(text: Any, tz: dt.tzinfo | None) -> dt.date | None:
    if not text:
        return None
    try:
        return parse_when(str(text)).astimezone(tz).date()
    except ValueError:
        return None


def rx_source(p: Mapping[str, Any] | None) -> dict[str, Any]:
    """The prescription as the clinician wrote it: the store keeps it under `source` (a log's
    `prescription` record); anything else is taken as the source itself ({} for None)."""
    if p is None:
        return {}
    src = p.get("source")
    return src if isinstance(src, dict) else dict(p)


def _detail(detail: Any) -> str:
    if not isinstance(detail, Mapping) or not detail:
        return ""
    return ", ".join(f"{k} {v}" for k, v in detail.items())


def adherence_weeks(sessions: Sequence[Mapping[str, Any]], prescriptions: Sequence[Mapping[str, Any]], *,
                    end_day: dt.date | None, since: dt.date | None = None,
                    tz: dt.tzinfo | None = None) -> list[WeekAdherence]:
    """Weekly adherence rows over every prescription the log holds, each from its first
    day until the next prescription's first day (or `end_day`), never before `since`.
    `adherence_over(...)` / `period_adherence(rows)` sums them over a stated period."""
    from schedules.adherence import weekly_adherence
    from schedules.validate import PrescriptionError, parse_prescription

    if end_day is None:
        return []
    latest: dict[str, Any] = {}
    for p in prescriptions:  # the latest version of each id
        src = rx_source(p)
        try:
            issued = dt.date.fromisoformat(str(src.get("issued")))
            latest[str(src.get("id"))] = parse_prescription(src, today=issued)
        except (PrescriptionError, ValueError):
            continue  # shown as "prescription unreadable"; no adherence rather than a wrong one
    ordered = sorted(latest.values(), key=lambda rx: rx.starts_on)
    rows: list[WeekAdherence] = []
    for i, rx in enumerate(ordered):
        until = end_day
        if i + 1 < len(ordered):
            until = min(until, ordered[i + 1].starts_on - dt.timedelta(days=1))
        starts = [(parse_when(s["started_at"]), s.get("status", "")) for s in sessions
                  if s.get("prescription_id") == rx.id]
        rows.extend(weekly_adherence(rx, starts, today=until, tz=tz, from_day=since))
    rows.sort(key=lambda w: w.first_day)
    return rows


def adherence_over(sessions: Sequence[Mapping[str, Any]], prescriptions: Sequence[Mapping[str, Any]], *,
                   end_day: dt.date, since: dt.date | None = None,
                   tz: dt.tzinfo | None = None) -> PeriodAdherence:
    """Sessions done of sessions due from the prescriptions' first day (or `since`) to
    `end_day`; never above 100%, with the period it covers (`.period`, `.describe()`)."""
    return period_adherence(adherence_weeks(sessions, prescriptions, end_day=end_day, since=since, tz=tz))


def _duration_min(s: Mapping[str, Any]) -> float | None:
    try:
        return (parse_when(s["ended_at"]) - parse_when(s["started_at"])).total_seconds() / 60
    except (KeyError, TypeError, ValueError):
        return None


def _contractions_done(s: Mapping[str, Any]) -> int:
    return max((int(_maybe(c.get("contractions")) or 0) for c in s.get("channels") or ()
                if isinstance(c, Mapping)), default=0)


def _maybe(x: Any) -> float | None:
    """A finite number, or None."""
    v = _num(x)
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def _report_of(s: Mapping[str, Any]) -> Mapping[str, Any] | None:
    r = s.get("report")
    return r if isinstance(r, Mapping) else None


def _how_it_ended(s: Mapping[str, Any]) -> str:
    status = str(s.get("status") or "?")
    reason = ""
    for e in s.get("events") or ():
        if isinstance(e, Mapping) and e.get("kind") == "end" and isinstance(e.get("detail"), Mapping):
            reason = str(e["detail"].get("reason") or "")
    if status == "interrupted":
        return "interrupted (the app stopped during the session)"
    if not reason or status == "completed":
        return status
    return f"{status}: {reason}"


def session_rows(sessions: Sequence[Mapping[str, Any]], starts: Sequence[dt.datetime], *,
                 n_channels: int = 1) -> list[SessionRow]:
    """The table of sessions, oldest first: one `SessionRow` per session."""
    rows = []
    for s, start in zip(sessions, starts):
        report = _report_of(s) or {}
        comment = report.get("comment")
        if not comment:  # words typed before touching Skip are the patient's words too
            for e in s.get("events") or ():
                if isinstance(e, Mapping) and e.get("kind") == "report_skipped" \
                        and isinstance(e.get("detail"), Mapping) and e["detail"].get("comment"):
                    comment = e["detail"]["comment"]
        pain, effort = _maybe(report.get("pain")), _maybe(report.get("effort"))
        chans = [c for c in s.get("channels") or () if isinstance(c, Mapping)]
        peaks = tuple((_maybe(chans[i].get("peak_ma")) if i < len(chans) else None) for i in range(n_channels))
        problems = tuple(e.get("kind") for e in s.get("events") or ()
                         if isinstance(e, Mapping) and e.get("kind") in INCIDENT_KINDS)
        rows.append(SessionRow(
            session_id=str(s.get("id")), started=start, duration_min=_duration_min(s),
            peak_ma=peaks, done=_contractions_done(s), planned=int(_maybe(s.get("planned_contractions")) or 0),
            pain=int(pain) if pain is not None else None, effort=effort,
            comment=str(comment) if comment else None, status=str(s.get("status") or "?"),
            ended=_how_it_ended(s), problems=problems))
    return rows


def compare_reports(rows: Sequence[SessionRow], what: str = "pain") -> Comparison | None:
    """`what` ("pain" or "effort") later against earlier, never in overlapping windows:
    the last WINDOW_DAYS days of reports against the WINDOW_DAYS before them when each
    holds at least MIN_REPORTS_PER_WINDOW reports, else the last quarter of the reports
    against the first. None with fewer than 4 reports (too few to compare)."""
    values = [(r.started.date(), float(getattr(r, what))) for r in rows if getattr(r, what) is not None]
    if len(values) < 4:
        return None

    def window(part: list[tuple[dt.date, float]]) -> Window:
        return Window(part[0][0], part[-1][0], sum(v for _, v in part) / len(part), len(part))

    last = values[-1][0]
    later_from = last - dt.timedelta(days=WINDOW_DAYS - 1)
    earlier_from = later_from - dt.timedelta(days=WINDOW_DAYS)
    later = [x for x in values if x[0] >= later_from]
    earlier = [x for x in values if earlier_from <= x[0] < later_from]
    if len(later) >= MIN_REPORTS_PER_WINDOW and len(earlier) >= MIN_REPORTS_PER_WINDOW:
        return Comparison(what, _t(DEFAULT_LANGUAGE, _HOW_WINDOWS, days=WINDOW_DAYS),
                          window(earlier), window(later))
    q = len(values) // 4
    return Comparison(what, _HOW_QUARTERS, window(values[:q]), window(values[-q:]))


def _dates(whens: Sequence[dt.date], lang: str = DEFAULT_LANGUAGE) -> str:
    days = sorted(set(whens))
    shown = ", ".join(d.isoformat() for d in days[-3:])
    return (_t(lang, "on {days}", days=shown) if len(days) <= 3
            else _t(lang, "last on {days} ({n} days)", days=shown, n=len(days)))


def review_flags(review: Review, *, lang: str = DEFAULT_LANGUAGE) -> list[Flag]:
    """What should worry a clinician, most urgent first, each with its reason (in `lang`):
    pain at or above PAIN_HIGH, pain rising, adherence under ADHERENCE_LOW, e-stops,
    faults and electrode problems."""
    flags: list[Flag] = []
    high = [r for r in review.rows if r.pain is not None and r.pain >= PAIN_HIGH]
    if high:
        top = max(r.pain for r in high)
        flags.append(Flag("pain_high", _t(lang, "Pain {high}/10 or more after {n} sessions (highest {top}/10), {dates}",
                                          high=PAIN_HIGH, n=len(high), top=top,
                                          dates=_dates([r.started.date() for r in high], lang)),
                          tuple(r.session_id for r in high)))
    if review.pain is not None and review.pain.change >= RISE_POINTS:
        flags.append(Flag("pain_rising", _t(lang, "Pain rising: {change} ({how})",
                                            change=review.pain.describe(lang), how=review.pain.how_in(lang))))
    a = review.adherence
    if a.ratio is not None and a.ratio < ADHERENCE_LOW and a.days >= ADHERENCE_MIN_DAYS:
        flags.append(Flag("adherence_low", _t(lang, "Adherence {adherence} over {period}: under {threshold}%",
                                              adherence=adherence_text(a, lang), period=adherence_period(a, lang),
                                              threshold=f"{100 * ADHERENCE_LOW:.0f}")))
    for kinds, name, what in ((("estop",), "estop", "E-stop pressed"),
                              (("fault", "watchdog"), "fault", "Fault"),
                              (("lead_off",), "electrode", "Electrode came off")):
        hits = [(w, sid) for w, sid, k, _ in review.incidents if k in kinds]
        if hits:
            sids = tuple(dict.fromkeys(sid for _, sid in hits))
            flags.append(Flag(name, _t(lang, "{what} {times} in {sessions}, {dates}", what=_t(lang, what),
                                       times=_t(lang, "{n} times", n=len(hits)),
                                       sessions=_t(lang, "{n} sessions", n=len(sids)),
                                       dates=_dates([w.date() for w, _ in hits], lang)),
                              sids))
    return flags


@dataclass
class ReportResult:
    html_path: Path
    pdf_path: Path | None
    verified: bool | None          # None: no device key was given (the hash chain was checked)
    problems: list[str]
    sessions: int


class ChainBroken(BundleError):
    """The bundle's hash chain is broken (found without a device key): no report is made.
    `problems` names each record."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the bundle was altered: " + "; ".join(problems[:3])
                         + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""))


# --- entry point -----------------------------------------------------------------------

def build_report(bundle_path: str | os.PathLike[str], *, out_html: str | os.PathLike[str],
                 device_public_key: Ed25519PublicKey | None = None,
                 out_pdf: str | os.PathLike[str] | None = None,
                 tz: dt.tzinfo | None = None, lang: str = DEFAULT_LANGUAGE) -> ReportResult:
    """Verify the bundle, then write the HTML page (and the PDF page), in `lang` ("en",
    "sv"; ValueError for another, before anything is read). Raises
    bundle.BundleError when the file is not a bundle, and ChainBroken (nothing written)
    when, without a device key, its hash chain shows records changed, removed or
    inserted. With the key, a bundle that fails verification still gets its report, with
    the problems at the top."""
    check_language(lang)
    bundle = read_bundle(bundle_path)
    if device_public_key is None:
        chain_problems = verify_bundle(bundle, None)
        if chain_problems:
            raise ChainBroken(chain_problems)
        problems: list[str] = []
    else:
        problems = verify_bundle(bundle, device_public_key)
    verified = None if device_public_key is None else not problems
    data = review_of_bundle(bundle, tz=tz)

    png_b64 = base64.b64encode(review_png(data, lang=lang)).decode("ascii")

    page = _html(bundle, data, verified=verified, problems=problems, png_b64=png_b64,
                 source_name=Path(bundle_path).name, lang=lang)
    out_html = Path(out_html)
    out_html.write_text(page, encoding="utf-8")

    pdf_path = None
    if out_pdf is not None:
        pdf_path = Path(out_pdf)
        _pdf(pdf_path, bundle, data, verified=verified, problems=problems, lang=lang)
    return ReportResult(out_html, pdf_path, verified, problems, len(data.sessions))


def review_pdf(bundle: Bundle, review: Review, *, verified: bool | None,
               problems: Sequence[str] = (), lang: str = DEFAULT_LANGUAGE) -> bytes:
    """The one-page PDF of `review` (as `build_report` writes it), as bytes: for a review
    over any range of days, e.g. the clinic's web page's. `bundle` and `verified` /
    `problems` are what the verification line speaks of; `lang`: "en" or "sv"."""
    fig = _pdf_figure(bundle, review, verified=verified, problems=list(problems), lang=check_language(lang))
    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        pdf.savefig(fig)
    return buf.getvalue()


#: The data the pages are drawn from (the old private name, kept for callers).
_Data = Review


#: The charts' left margin: room for the incidents' names ("elektrod lossnade (12)" is the longest).
_LEFT = {"en": 0.095, "sv": 0.12}


def review_figure(review: Review, *, lang: str = DEFAULT_LANGUAGE) -> Figure:
    """The review's charts as one matplotlib Figure (calendar and weekly counts, duration,
    contractions, intensity, pain and effort, incidents), labelled in `lang` ("en", "sv")."""
    check_language(lang)
    # fixed margins, not constrained layout: the layout solver cost a second on five years
    fig = Figure(figsize=(13, 12), dpi=80)
    _draw_panels(fig, fig.add_gridspec(len(PANEL_HEIGHTS), 2, height_ratios=PANEL_HEIGHTS, left=_LEFT[lang],
                                       right=0.99, top=0.955, bottom=0.04, hspace=0.7, wspace=0.1), review,
                 lang=lang)
    return fig


def review_png(review: Review, *, lang: str = DEFAULT_LANGUAGE) -> bytes:
    """The review's charts as a PNG image (for a web page: serve it, or embed it as base64),
    labelled in `lang` ("en", "sv")."""
    buf = io.BytesIO()
    review_figure(review, lang=lang).savefig(buf, format="png", pil_kwargs={"compress_level": 2})
    return buf.getvalue()


# --- plots -----------------------------------------------------------------------------

def _date_formatter(lang: str, *, weekday: bool = False, year: bool = False) -> matplotlib.ticker.Formatter:
    """Tick labels `Sat 5 Dec` / `5 Dec` / `5 Dec 2026` in `lang`, from report_texts' own
    month and weekday names (strftime's would follow the machine's locale)."""
    return matplotlib.ticker.FuncFormatter(
        lambda x, _pos: day_month(mdates.num2date(x).date(), lang, weekday=weekday, year=year))


def _date_axis(axes: Sequence[Any], dates: np.ndarray, *, max_ticks: int = 9, lang: str = DEFAULT_LANGUAGE) -> None:
    """Date ticks that name their month (`5 Nov`), a year where the span needs one, never
    a lone month name or an offset like "2026-Dec" over a chart spanning two months. A
    short history gets one tick per day, at noon, so each tick names the day its dots are on."""
    if len(dates):
        lo, hi = float(np.floor(dates.min())), float(np.floor(dates.max())) + 1.0
    else:
        lo = hi = None
    span = (hi - lo) if lo is not None else 0
    for a in axes:
        if lo is None:
            continue
        if span <= 14:
            step = max(1, int(np.ceil(span / max_ticks)))
            a.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(np.arange(lo + 0.5, hi, step)))
            a.xaxis.set_major_formatter(_date_formatter(lang, weekday=True))
            a.set_xlim(lo, hi)
        else:
            a.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=max_ticks))
            a.xaxis.set_major_formatter(_date_formatter(lang, year=span > 300))
            pad = max(1.0, span * 0.02)
            a.set_xlim(lo - pad, hi + pad)
        a.tick_params(labelsize=8)


def _headroom(ax: Any, values: Sequence[float], *, floor: float = 1.0, room: float = 1.45) -> None:
    """y from 0 to leave the top third free: the legend sits there, over no point, and no
    marker at the top is cut at the edge."""
    finite = [v for v in values if v == v]
    top = max(finite + [floor])
    ax.set_ylim(0, top * room)


def _draw_panels(fig: Figure, gs: Any, d: Review, *, title_pt: float = 10, lang: str = DEFAULT_LANGUAGE) -> None:
    """Calendar + weekly counts, duration, contractions, intensity, pain/effort, incidents."""
    dates = mdates.date2num([s.replace(tzinfo=None) for s in d.starts]) if d.starts else np.array([])
    statuses = [s.get("status", "") for s in d.sessions]

    ax = fig.add_subplot(gs[0, :])
    _calendar(ax, fig.add_subplot(gs[1, :]), d, title_pt=title_pt, lang=lang)

    ax_dur = fig.add_subplot(gs[2, 0])
    ax_con = fig.add_subplot(gs[2, 1])
    ax_int = fig.add_subplot(gs[3, :])
    ax_pe = fig.add_subplot(gs[4, :])
    ax_inc = fig.add_subplot(gs[5, :])
    size = 28 if len(dates) <= 60 else 12

    # the half-width charts say in their titles what a legend would, so nothing covers a point
    dur = np.array([r.duration_min if r.duration_min is not None else np.nan for r in d.rows])
    colors = [STATUS_COLORS.get(st, "#757575") for st in statuses]
    ax_dur.scatter(dates, dur, c=colors, s=size, linewidths=0)
    ended = ", ".join(_t(lang, f"{{n}} {st}", n=statuses.count(st)) for st in STATUS_COLORS if statuses.count(st))
    ax_dur.set_title(_t(lang, "Session duration (min): {ended}\n(colours as in the calendar)",
                        ended=ended or _t(lang, "no sessions")), loc="left", fontsize=title_pt)
    _headroom(ax_dur, list(dur), room=1.15)

    done = np.array([r.done for r in d.rows])
    planned = np.array([r.planned for r in d.rows])
    ax_con.scatter(dates, planned, marker="_", s=size * 4, color="#424242", zorder=2)
    ax_con.scatter(dates, done, c=colors, s=size, linewidths=0, zorder=3)
    ax_con.set_title(_t(lang, "Contractions per session: dot done (most on any channel),\ndash planned"),
                     loc="left", fontsize=title_pt)
    _headroom(ax_con, list(done) + list(planned), room=1.15)

    rx_channels = rx_source(d.rx_in_force).get("channels", []) if d.rx_in_force else []
    n_ch = max([len(r.peak_ma) for r in d.rows] + [len(rx_channels), 1])
    tops: list[float] = []
    for ch in range(n_ch):
        peak = np.array([(r.peak_ma[ch] if ch < len(r.peak_ma) and r.peak_ma[ch] is not None else np.nan)
                         for r in d.rows])
        tops += list(peak)
        # channels numbered from 1, as the device's screens and the program editor number them
        unnamed = _t(lang, "channel {n}", n=ch + 1)
        label = rx_channels[ch].get("label", unnamed) if ch < len(rx_channels) else unnamed
        col = CHANNEL_COLORS[ch % len(CHANNEL_COLORS)]
        ax_int.plot(dates, peak, "o", ms=5 if len(dates) <= 60 else 3, color=col, alpha=0.8,
                    label=_t(lang, "ch {n} {label}: highest of the session", n=ch + 1, label=label))
        if len(dates) > 7:
            ax_int.plot(dates, _rolling(peak, 7), "-", lw=1.6, color=col, alpha=0.7)
        if ch < len(rx_channels) and _maybe(rx_channels[ch].get("max_ma")) is not None:
            cap = float(rx_channels[ch]["max_ma"])
            tops.append(cap)
            ax_int.axhline(cap, color=col, ls=":", lw=1.2,
                           label=_t(lang, "ch {n} cap {cap} mA", n=ch + 1, cap=rx_channels[ch]["max_ma"]))
    ax_int.set_title(_t(lang, "Highest intensity per channel (mA): dots each session, line 7-session average, "
                              "dotted cap"), loc="left", fontsize=title_pt)
    _headroom(ax_int, tops, room=1.5)
    ax_int.legend(fontsize=7, loc="upper left", ncols=2, framealpha=0.9)

    pain = np.array([r.pain if r.pain is not None else np.nan for r in d.rows], dtype=float)
    effort = np.array([r.effort if r.effort is not None else np.nan for r in d.rows], dtype=float)
    ms = 5 if len(dates) <= 60 else 3
    ax_pe.axhspan(PAIN_HIGH - 0.5, 10.5, color="#ffebee", zorder=0)
    ax_pe.plot(dates, pain, "o", ms=ms, color="#c62828", alpha=0.8,
               label=_t(lang, "pain 0-10 (shaded: {high} or more)", high=PAIN_HIGH))
    ax_pe.plot(dates, effort, "s", ms=ms - 1, color="#5e35b1", alpha=0.6, label=_t(lang, "effort (Borg CR10)"))
    if len(dates) > 7:
        ax_pe.plot(dates, _rolling(pain, 7), "-", lw=1.6, color="#c62828")
        ax_pe.plot(dates, _rolling(effort, 7), "-", lw=1.6, color="#5e35b1")
    reported = int(np.count_nonzero(~np.isnan(pain)))
    ax_pe.set_title(_t(lang, "Pain and effort after sessions ({reported} of {n} sessions reported)",
                       reported=reported, n=len(d.sessions)), loc="left", fontsize=title_pt)
    ax_pe.set_ylim(-0.5, 14)
    ax_pe.set_yticks([0, 2, 4, 6, 8, 10])
    ax_pe.legend(fontsize=7, loc="upper left", ncols=2, framealpha=0.9)

    kinds = list(INCIDENT_KINDS)
    counts = Counter(k for _, _, k, _ in d.incidents)
    for row, kind in enumerate(kinds):
        when = [w for w, _, k, _ in d.incidents if k == kind]
        if when:
            ax_inc.plot(mdates.date2num([w.replace(tzinfo=None) for w in when]), [row] * len(when), "|",
                        ms=10, mew=2, color="#c62828" if kind != "refused" else "#f9a825")
    ax_inc.set_yticks(range(len(kinds)), [f"{_t(lang, INCIDENT_KINDS[k])} ({counts.get(k, 0)})" for k in kinds],
                      fontsize=8)
    ax_inc.set_ylim(-0.6, len(kinds) - 0.4)
    ax_inc.invert_yaxis()
    ax_inc.set_title(_t(lang, "Incidents"), loc="left", fontsize=title_pt)

    for a in (ax_dur, ax_con, ax_int, ax_pe, ax_inc):
        a.grid(alpha=0.25)
    _date_axis((ax_int, ax_pe, ax_inc), dates, max_ticks=9, lang=lang)
    _date_axis((ax_dur, ax_con), dates, max_ticks=5, lang=lang)


#: Rows of the panel grid: calendar, weekly bars, duration|contractions, intensity, pain/effort, incidents.
PANEL_HEIGHTS = (1.25, 0.5, 1, 1, 1, 0.7)


def _calendar(ax: Any, bar_ax: Any, d: Review, *, title_pt: float = 10, lang: str = DEFAULT_LANGUAGE) -> None:
    """One cell per day (columns = weeks, rows = Monday..Sunday), coloured by the day's
    best session, with the day's number on short histories; months named where they
    begin. Below it, the sessions done each week against those due: the prescription
    asks for so many a week on no set days, so a day without a session is not "missed"."""
    if not d.starts and not d.weeks:
        ax.text(0.5, 0.5, _t(lang, "no sessions in this bundle"), ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        bar_ax.set_axis_off()
        return
    first_days = [w.first_day for w in d.weeks] + [s.date() for s in d.starts]
    last_days = [w.last_day for w in d.weeks] + [s.date() for s in d.starts]
    shown_first, shown_last = min(first_days), max(last_days)
    first = shown_first - dt.timedelta(days=shown_first.weekday())
    n_weeks = (shown_last - first).days // 7 + 1
    # 0 not shown, 1 outside the prescription, 2 no session, 3 aborted/interrupted, 4 stopped, 5 completed
    grid = np.zeros((7, n_weeks))
    for i in range((shown_last - shown_first).days + 1):
        k = (shown_first - first).days + i
        grid[k % 7, k // 7] = 1
    for w in d.weeks:
        for i in range((w.last_day - w.first_day).days + 1):
            k = (w.first_day - first).days + i
            grid[k % 7, k // 7] = 2
    rank = {"completed": 5, "stopped": 4, "aborted": 3, "interrupted": 3}
    for s, start in zip(d.sessions, d.starts):
        k = (start.date() - first).days
        grid[k % 7, k // 7] = max(grid[k % 7, k // 7], rank.get(s.get("status"), 3))
    cmap = ListedColormap(["#ffffff", "#fafafa", "#eeeeee", STATUS_COLORS["aborted"], STATUS_COLORS["stopped"],
                           STATUS_COLORS["completed"]])
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=-0.5, vmax=5.5, interpolation="nearest",
              extent=(-0.5, n_weeks - 0.5, 6.5, -0.5))
    ax.set_yticks(range(7), list(WEEKDAYS[lang]), fontsize=7)
    if n_weeks <= 26:
        for i in range((shown_last - shown_first).days + 1):
            day = shown_first + dt.timedelta(days=i)
            k = (day - first).days
            dark = grid[k % 7, k // 7] >= 3
            ax.text(k // 7, k % 7, str(day.day), ha="center", va="center", fontsize=7 if n_weeks <= 12 else 5,
                    color="white" if dark else "#616161")
        ax.set_xticks(np.arange(-0.5, n_weeks, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, 7, 1), minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="minor", length=0)
    ticks, labels = _month_ticks(first, shown_first, shown_last, n_weeks, lang=lang)
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set_title(_t(lang, "Calendar {first} to {last}, each day by its best session:\n"
                          "green completed · amber stopped early · red aborted/interrupted · grey no session · "
                          "white outside the prescription", first=shown_first.isoformat(), last=shown_last.isoformat()),
                 loc="left", fontsize=title_pt)
    ax.set_xlim(-0.5, n_weeks - 0.5)
    x = [((w.first_day - first).days // 7) for w in d.weeks]
    due = [w.prescribed for w in d.weeks]
    done = [w.done for w in d.weeks]
    top = max(due + done + [1]) * 1.45
    bar_ax.bar(x, done, width=0.8, color=["#2e7d32" if (w.ratio or 0) >= ADHERENCE_LOW else
                                          "#f9a825" if (w.ratio or 0) >= 0.5 else "#c62828" for w in d.weeks])
    for xi, w in zip(x, d.weeks):
        bar_ax.plot([xi - 0.45, xi + 0.45], [w.prescribed] * 2, color="#212121", lw=1.2)
        if n_weeks <= 30:
            bar_ax.text(xi, max(w.done, w.prescribed) + top * 0.04, f"{w.done}/{_fmt_num(w.prescribed)}",
                        ha="center", va="bottom", fontsize=7 if n_weeks <= 12 else 5)
    bar_ax.set_xlim(-0.5, n_weeks - 0.5)
    bar_ax.set_ylim(0, top)
    bar_ax.tick_params(labelsize=7)
    bar_ax.set_xticks(ticks, [""] * len(ticks))
    bar_ax.set_title(_t(lang, "Sessions completed each week / due that week (black line; prorated for part of a week)"),
                     loc="left", fontsize=title_pt * 0.9)


def _month_ticks(first_monday: dt.date, shown_first: dt.date, shown_last: dt.date,
                 n_weeks: int, *, lang: str = DEFAULT_LANGUAGE) -> tuple[list[int], list[str]]:
    """A label for each month the calendar shows, at the week its first shown day is in;
    the year on the first label and each January. Over two years: January and July only."""
    ticks: list[int] = []
    labels: list[str] = []
    day = shown_first
    while day <= shown_last:
        col = (day - first_monday).days // 7
        long = n_weeks > 104
        if not long or day.month in (1, 7):
            text = month(day, lang, year=not labels or day.month == 1)
            if ticks and ticks[-1] == col:
                labels[-1] = f"{labels[-1]}/{text}"
            else:
                ticks.append(col)
                labels.append(text)
        day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return ticks, labels


def _channel(s: Mapping[str, Any], ch: int, key: str) -> float:
    chans = s.get("channels") or ()
    if ch >= len(chans):
        return float("nan")
    return _num(chans[ch].get(key))


def _num(x: Any) -> float:
    try:
        return float(x) if x is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _rolling(values: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last n values that exist (NaN-aware), so gaps do not break the line."""
    if len(values) == 0:
        return values
    ok = ~np.isnan(values)
    filled = np.where(ok, values, 0.0)
    csum = np.cumsum(filled)
    ccount = np.cumsum(ok)
    lo_sum = np.concatenate([np.zeros(n), csum[:-n]]) if len(values) > n else np.zeros(len(values))
    lo_cnt = np.concatenate([np.zeros(n), ccount[:-n]]) if len(values) > n else np.zeros(len(values))
    cnt = ccount - lo_cnt
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (csum - lo_sum) / cnt, np.nan)


# --- figures for the text --------------------------------------------------------------

@dataclass
class _Summary:
    counts: Counter
    incidents: Counter


def _summary(d: Review) -> _Summary:
    return _Summary(Counter(s.get("status", "?") for s in d.sessions),
                    Counter(k for _, _, k, _ in d.incidents))


def _trend(c: Comparison | None, rows: Sequence[SessionRow], what: str, lang: str = DEFAULT_LANGUAGE) -> str:
    if c is not None:
        return f"{c.earlier.mean:.1f} → {c.later.mean:.1f}"
    vals = [getattr(r, what) for r in rows if getattr(r, what) is not None]
    if not vals:
        return _t(lang, "no reports")
    return f"{sum(vals) / len(vals):.1f} ({_t(lang, '{n} reports', n=len(vals))})"


def _rx_lines(p: Mapping[str, Any] | None, lang: str = DEFAULT_LANGUAGE) -> list[str]:
    """The prescription in force, a line per part; channels numbered from 1, as the
    device's screens and the clinic's program editor number them."""
    if p is None:
        return [_t(lang, "no prescription in this bundle")]
    src = rx_source(p)
    sig = src.get("signature") if isinstance(src.get("signature"), Mapping) else None
    start = _t(lang, ", sessions from {day}", day=src["valid_from"]) if src.get("valid_from") else ""
    lines = [_t(lang, "{id} for {patient} by {clinician}, valid {issued} to {expires}{start}",
                id=src.get("id", "?"), patient=src.get("patient_id", "?"), clinician=src.get("clinician_id", "?"),
                issued=src.get("issued", "?"), expires=src.get("expires", "?"), start=start),
             _t(lang, "{per_week} sessions/week, at most {per_day}/day, {hours} h apart; supervision {supervision}; "
                      "{signed}", per_week=src.get("sessions_per_week", "?"),
                per_day=src.get("max_sessions_per_day", "?"), hours=src.get("min_hours_between", "?"),
                supervision=code_word(lang, src.get("supervision", "?")),
                signed=_t(lang, "signed by key {key}", key=sig.get("key_id")) if sig else _t(lang, "UNSIGNED"))]
    for i, c in enumerate(src.get("channels") or ()):
        if isinstance(c, Mapping):
            lines.append(_t(lang, "channel {n} {label}: cap {cap} mA", n=i + 1, label=c.get("label", ""),
                            cap=c.get("max_ma", "?")))
    for b in src.get("blocks") or ():
        if isinstance(b, Mapping):
            def v(k: str) -> str:
                x = b.get(k)
                if isinstance(x, Mapping):
                    return f"{x.get('value')} ({x.get('min')}-{x.get('max')})"
                return str(x)
            lines.append(_t(lang, "{label}: {minutes} min, {hz} Hz, {pulse} µs, on {on} s / off {off} s, "
                                  "ramps {up}/{down} s, {pattern}", label=b.get("label", _t(lang, "block")),
                            minutes=v("minutes"), hz=v("hz"), pulse=v("pulse_us"), on=v("on_s"), off=v("off_s"),
                            up=v("ramp_up_s"), down=v("ramp_down_s"),
                            pattern=code_word(lang, b.get("pattern", "synchronous"))))
    return lines


#: The engine's fixed words for how a session ended (homeapp/engine.py's `_finish` reasons).
_REASONS = ("stopped by the patient", "stopped by the caregiver", "stopped by the clinician", "e-stop pressed",
            "fault")


def ended_text(row: SessionRow, lang: str = DEFAULT_LANGUAGE) -> str:
    """How a session ended (`SessionRow.ended`) in `lang`: the status, then the device's
    reason (translated where it is one of the engine's fixed words, else as logged)."""
    if lang == DEFAULT_LANGUAGE:
        return row.ended
    if row.status == "interrupted":
        return _t(lang, "interrupted (the app stopped during the session)")
    status = _t(lang, row.status) if row.status in STATUS_COLORS else row.status
    prefix = f"{row.status}: "
    if not row.ended.startswith(prefix):
        return status
    reason = row.ended[len(prefix):]
    if reason in _REASONS:
        reason = _t(lang, reason)
    elif reason.startswith("fault: "):      # the board's own message follows, as logged
        reason = _t(lang, "fault") + reason[len("fault"):]
    return _t(lang, "{status}: {reason}", status=status, reason=reason)


def _status_text(bundle: Bundle, verified: bool | None, problems: list[str],
                 lang: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """(css class, headline) of the verification banner."""
    kid = bundle.device_key_id or "?"
    if verified is None:
        return "warn", _t(lang, "NOT VERIFIED: no device key was given. The hash chain is intact, but completeness "
                                "and origin are unknown (the bundle names device key {key}).", key=kid)
    if verified:
        return "ok", _t(lang, "Verified: complete, unaltered and signed by device key {key}.", key=kid)
    return "bad", _t(lang, "VERIFICATION FAILED ({n} problems): do not rely on this data without checking with "
                           "the device.", n=len(problems))


# --- HTML ------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px 22px;color:#212121;max-width:1100px}
h1{font-size:20px;margin:0 0 4px}
.sub{color:#616161;font-size:13px;margin-bottom:10px}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;font-size:15px;margin:8px 0 12px}
.banner.ok{background:#e8f5e9;border:2px solid #2e7d32;color:#1b5e20}
.banner.bad{background:#ffebee;border:2px solid #c62828;color:#b71c1c}
.banner.warn{background:#fff8e1;border:2px solid #f9a825;color:#795548}
.banner ul{margin:6px 0 0;font-weight:400;font-size:13px}
.flags{border:2px solid #c62828;border-radius:6px;padding:8px 14px;margin:0 0 12px;background:#fff5f5}
.flags h2{color:#b71c1c;margin:0 0 4px}
.flags ul{margin:0;padding-left:20px}
.flags li{color:#b71c1c;font-size:14px;margin:2px 0}
.flags.none{border-color:#2e7d32;background:#f1f8e9}
.flags.none h2{color:#1b5e20}
.kpis{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:10px}
.kpi{border:1px solid #e0e0e0;border-radius:6px;padding:6px 10px;min-width:120px}
.kpi b{display:block;font-size:18px}
.kpi span{font-size:12px;color:#616161}
.kpi.alert{border-color:#c62828}
.kpi.alert b{color:#c62828}
img{width:100%;height:auto}
.cols{display:flex;gap:18px;flex-wrap:wrap}
.cols>div{flex:1;min-width:380px}
h2{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12px;width:100%}
td,th{border-bottom:1px solid #eeeeee;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#fafafa;position:sticky;top:0}
td.n{text-align:right;white-space:nowrap}
tr.worry td{background:#fff5f5}
.red{color:#c62828;font-weight:600}
.comment{font-style:italic}
.scroll{max-height:640px;overflow:auto;border:1px solid #eeeeee}
.foot{color:#757575;font-size:11px;margin-top:14px}
"""


def _fmt_num(x: float | None, digits: int = 0, unit: str = "") -> str:
    if x is None:
        return "–"
    text = f"{x:.{digits}f}" if digits else (str(int(x)) if float(x).is_integer() else f"{x:.1f}")
    return text + unit


def _escape(text: str) -> str:
    """Text for an element's content or a double-quoted attribute (an apostrophe stays one)."""
    return html.escape(text, quote=False).replace('"', "&quot;")


def _session_table(d: Review, lang: str = DEFAULT_LANGUAGE) -> str:
    """The sessions, newest first, worrying ones shaded, the patient's words in full."""
    e = _escape
    rx_channels = rx_source(d.rx_in_force).get("channels", []) if d.rx_in_force else []
    n_ch = max([len(r.peak_ma) for r in d.rows] + [1])
    heads = "".join(f"<th>{e(_t(lang, 'highest ch {n}', n=i + 1))}"
                    + (f" ({e(str(rx_channels[i].get('label', '')))})" if i < len(rx_channels) else "") + "</th>"
                    for i in range(n_ch))
    body = []
    for r in reversed(d.rows):
        peaks = "".join(f'<td class="n">{_fmt_num(p, 1, " mA") if p is not None else "–"}</td>'
                        for p in (list(r.peak_ma) + [None] * n_ch)[:n_ch])
        pain_cls = ' class="n red"' if r.pain is not None and r.pain >= PAIN_HIGH else ' class="n"'
        ended_cls = ' class="red"' if (r.status in ("aborted", "interrupted")
                                       or any(k in ("estop", "fault", "watchdog", "lead_off") for k in r.problems)) else ""
        ended = ended_text(r, lang)
        extra = [_t(lang, INCIDENT_KINDS[k]) for k in dict.fromkeys(r.problems)
                 if k != "refused" and _t(lang, INCIDENT_KINDS[k]) not in ended]
        ended = ended + (f" ({', '.join(extra)})" if extra else "")
        row_cls = ' class="worry"' if r.worrying else ""
        started = f"{WEEKDAYS[lang][r.started.weekday()]} {r.started:%Y-%m-%d %H:%M}"
        body.append(
            f'<tr{row_cls}><td>{e(started)}</td>'
            f'<td class="n">{_fmt_num(r.duration_min, 1, " min")}</td>{peaks}'
            f'<td class="n">{e(_t(lang, "{done} of {planned}", done=r.done, planned=r.planned))}</td>'
            f'<td{pain_cls}>{_fmt_num(r.pain)}</td>'
            f'<td class="n">{_fmt_num(r.effort)}</td>'
            f'<td class="comment">{e(r.comment) if r.comment else ""}</td><td{ended_cls}>{e(ended)}</td></tr>')
    if not body:
        body = [f'<tr><td colspan="9">{e(_t(lang, "no sessions"))}</td></tr>']
    head = "".join(f"<th>{e(_t(lang, h))}</th>" for h in ("date", "duration"))
    tail = "".join(f"<th>{e(_t(lang, h))}</th>" for h in ("contractions", "pain", "effort", "patient's comment",
                                                          "how it ended"))
    return f'<div class="scroll"><table><tr>{head}{heads}{tail}</tr>' + "".join(body) + "</table></div>"


def _html(bundle: Bundle, d: Review, *, verified: bool | None, problems: list[str], png_b64: str,
          source_name: str, lang: str = DEFAULT_LANGUAGE) -> str:
    e = _escape
    sm = _summary(d)
    css_class, headline = _status_text(bundle, verified, problems, lang)
    shown = problems[:12]
    problem_list = ("<ul>" + "".join(f"<li>{e(p)}</li>" for p in shown)
                    + (f"<li>{e(_t(lang, '… and {n} more', n=len(problems) - len(shown)))}</li>"
                       if len(problems) > len(shown) else "")
                    + "</ul>") if problems else ""
    flags_shown = d.flags_in(lang)
    flag_kinds = {f.kind for f in flags_shown}
    if flags_shown:
        flags = (f'<div class="flags"><h2>{e(_t(lang, "Needs attention"))}</h2><ul>'
                 + "".join(f"<li>{e(f.reason)}</li>" for f in flags_shown) + "</ul></div>")
    else:
        flags = (f'<div class="flags none"><h2>{e(_t(lang, "Nothing flagged"))}</h2>'
                 + e(_t(lang, "No pain of {high}/10 or more, no rising pain, adherence not under {threshold}%, "
                              "no e-stop, fault or electrode problem.", high=PAIN_HIGH,
                        threshold=f"{100 * ADHERENCE_LOW:.0f}")) + "</div>")

    def kpi(value: str, label: str, alert: bool = False) -> str:
        return f'<div class="kpi{" alert" if alert else ""}"><b>{e(value)}</b><span>{e(label)}</span></div>'

    faults = sm.incidents["fault"] + sm.incidents["watchdog"]
    a, ar = d.adherence, d.adherence_recent
    kpis = "".join([
        kpi(str(len(d.sessions)), _t(lang, "sessions ({n} completed)", n=sm.counts["completed"])),
        kpi(adherence_text(a, lang), _t(lang, "adherence {period}", period=adherence_period(a, lang)),
            "adherence_low" in flag_kinds),
        kpi(adherence_text(ar, lang), _t(lang, "adherence {period} (last 4 weeks)", period=adherence_period(ar, lang)),
            ar.ratio is not None and ar.ratio < ADHERENCE_LOW and ar.days >= ADHERENCE_MIN_DAYS),
        kpi(str(sm.counts["stopped"]), _t(lang, "stopped early")),
        kpi(str(sm.counts["aborted"] + sm.counts["interrupted"]), _t(lang, "aborted / interrupted"),
            sm.counts["aborted"] + sm.counts["interrupted"] > 0),
        kpi(str(sm.incidents["estop"]), _t(lang, "e-stops"), sm.incidents["estop"] > 0),
        kpi(str(faults), _t(lang, "faults"), faults > 0),
        kpi(str(sm.incidents["lead_off"]), _t(lang, "electrode problems"), sm.incidents["lead_off"] > 0),
        kpi(str(sm.incidents["refused"]), _t(lang, "refused requests")),
    ])
    pain_label = (_t(lang, "pain 0-10: {how}", how=d.pain.how_in(lang)) if d.pain else _t(lang, "pain 0-10, mean"))
    effort_label = (_t(lang, "effort (Borg CR10): {how}", how=d.effort.how_in(lang)) if d.effort
                    else _t(lang, "effort (Borg CR10), mean"))
    kpis2 = (kpi(_trend(d.pain, d.rows, "pain", lang), pain_label, bool({"pain_rising", "pain_high"} & flag_kinds))
             + kpi(_trend(d.effort, d.rows, "effort", lang), effort_label))
    recent = sorted(d.incidents, key=lambda i: i[0], reverse=True)[:12]
    incident_rows = "".join(
        f"<tr><td>{e(w.strftime('%Y-%m-%d %H:%M'))}</td>"
        f"<td>{e(_t(lang, INCIDENT_KINDS[k]) if k in INCIDENT_KINDS else k)}</td>"
        f"<td>{e(sid)}</td><td>{e(det)}</td></tr>" for w, sid, k, det in recent) \
        or f"<tr><td colspan=4>{e(_t(lang, 'no incidents'))}</td></tr>"
    rx_rows = "".join(f"<tr><td>{e(line)}</td></tr>" for line in _rx_lines(d.rx_in_force, lang))
    others = [p for p in d.prescriptions if p is not d.rx_in_force]
    other_ids = ", ".join(sorted({str(rx_source(p).get("id")) for p in others}))
    other_rx = f"<p>{e(_t(lang, 'Also in this bundle: {ids}', ids=other_ids))}</p>" if others else ""
    created = bundle.header.get("created_at") or "?"
    since = bundle.header.get("since")
    patient = d.patient_id
    period = d.period_in(lang)
    since_text = _t(lang, "(sessions since {since})", since=since) if since else _t(lang, "(whole log)")
    sub = _t(lang, "Sessions {period} · bundle {name} made {created}", period=period, name=source_name,
             created=str(created))
    headings = {k: e(_t(lang, k)) for k in ("Prescription in force", "Latest incidents", "when", "what", "session",
                                           "detail")}
    alt = _t(lang, "calendar and weekly sessions, session duration and contractions, intensity per channel, "
                   "pain and effort, incidents")
    incidents_head = "".join(f"<th>{headings[k]}</th>" for k in ("when", "what", "session", "detail"))
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(_t(lang, "NMES review: {patient}, {period}", patient=patient, period=period))}</title>
<style>{_CSS}</style></head>
<body>
<h1>{e(_t(lang, "NMES home training review: patient {patient}", patient=patient))}</h1>
<div class="sub">{e(sub)}
{e(since_text)} · {e(_t(lang, "device key {key}", key=str(bundle.device_key_id)))}</div>
<div class="banner {css_class}">{e(headline)}{problem_list}</div>
{flags}
<div class="kpis">{kpis}</div>
<div class="kpis">{kpis2}</div>
<img alt="{e(alt)}"
 src="data:image/png;base64,{png_b64}">
<h2>{e(_t(lang, "Sessions, newest first (shaded: pain {high}/10 or more, e-stop, fault or electrode problem)",
          high=PAIN_HIGH))}</h2>
{_session_table(d, lang)}
<div class="cols">
<div><h2>{headings["Prescription in force"]}</h2><table>{rx_rows}</table>{other_rx}</div>
<div><h2>{headings["Latest incidents"]}</h2><table><tr>{incidents_head}</tr>
{incident_rows}</table></div>
</div>
<div class="foot">{e(_t(lang, _FOOT))}</div>
</body></html>
"""


_FOOT = ("Made by homeapp report from a homeapp.log-bundle/1 file. Days are local to the computer\n"
         "that made this report. Adherence: completed sessions of those due, from the prescription's first day\n"
         "(or the bundle's start) to the day the bundle was made, prorated for partial weeks; at most the\n"
         "prescription's daily limit counts a day, so it never exceeds 100%. Pain and effort compare windows\n"
         "that share no session. Check the device key id above against the one recorded when the device was set up.")


# --- PDF -------------------------------------------------------------------------------

#: Characters per line at 7 pt on the PDF's text width (A4, 0.04 to 0.98 of the width).
_PDF_LINE_CHARS = 135


def _pdf(path: Path, bundle: Bundle, d: Review, *, verified: bool | None, problems: list[str],
         lang: str = DEFAULT_LANGUAGE) -> None:
    """One A4 portrait page (see _pdf_figure)."""
    fig = _pdf_figure(bundle, d, verified=verified, problems=problems, lang=lang)
    with PdfPages(path) as pdf:
        pdf.savefig(fig)


def _pdf_figure(bundle: Bundle, d: Review, *, verified: bool | None, problems: list[str],
                lang: str = DEFAULT_LANGUAGE) -> Figure:
    """The PDF page: headline, verification, flags, key figures, the same plots, the
    sessions with comments or problems, the prescription. Every line is wrapped to the
    page's width."""
    sm = _summary(d)
    css_class, headline = _status_text(bundle, verified, problems, lang)
    color = {"ok": "#1b5e20", "bad": "#b71c1c", "warn": "#795548"}[css_class]
    fig = Figure(figsize=(8.27, 11.69), dpi=100)
    gs = fig.add_gridspec(3, 1, height_ratios=[1.55, 8.0, 1.45], left=0.13, right=0.98, top=0.985,
                          bottom=0.01, hspace=0.1)
    lines: list[tuple[str, float, str, str]] = []  # text, size, weight, colour

    def add(text: str, size: float, weight: str, col: str, width: int = _PDF_LINE_CHARS) -> None:
        for part in textwrap.wrap(text, width=width) or [""]:
            lines.append((part, size, weight, col))

    add(_t(lang, "NMES home training review: patient {patient}   sessions {period}", patient=d.patient_id,
           period=d.period_in(lang)), 10, "bold", "#212121", 95)
    add(headline, 7, "bold", color, 120)
    if problems:   # the verifier's own words (homeapp/bundle.py), in English
        add("; ".join(problems[:3]) + (_t(lang, "; and {n} more", n=len(problems) - 3) if len(problems) > 3 else ""),
            7, "normal", color)
    flags = d.flags_in(lang)
    if flags:
        for f in flags:
            add("! " + f.reason, 7, "bold", "#b71c1c", 120)
    else:
        add(_t(lang, "Nothing flagged (pain, adherence, e-stops, faults, electrodes)."), 7, "normal", "#1b5e20")
    add(_t(lang, "{sessions} ({completed}, {stopped}, {aborted}).",
           sessions=_t(lang, "{n} sessions", n=len(d.sessions)),
           completed=_t(lang, "{n} completed", n=sm.counts["completed"]),
           stopped=_t(lang, "{n} stopped", n=sm.counts["stopped"]),
           aborted=_t(lang, "{n} aborted/interrupted", n=sm.counts["aborted"] + sm.counts["interrupted"])) + "  "
        + _t(lang, "Adherence {adherence} over {period}.", adherence=adherence_text(d.adherence, lang),
             period=adherence_period(d.adherence, lang)) + "  "
        + _t(lang, "Pain {trend}", trend=_trend(d.pain, d.rows, "pain", lang))
        + (f" ({d.pain.how_in(lang)})" if d.pain else "") + ".", 7, "normal", "#212121")
    y = 0.992
    for text, size, weight, col in lines[:12]:
        fig.text(0.04, y, text, va="top", fontsize=size, weight=weight, color=col)
        y -= (size + 2.2) / (11.69 * 72)
    _draw_panels(fig, gs[1, 0].subgridspec(len(PANEL_HEIGHTS), 2, height_ratios=PANEL_HEIGHTS, hspace=0.95,
                                           wspace=0.12), d, title_pt=7, lang=lang)
    foot = fig.add_subplot(gs[2, 0])
    foot.set_axis_off()
    # the patient's words first (they appear nowhere else on the page), then other problems
    commented = [r for r in reversed(d.rows) if r.comment]
    worrying = [r for r in reversed(d.rows) if r.worrying and not r.comment]
    chosen = (commented[:7] + worrying)[:7]
    notable = sorted(chosen, key=lambda r: r.started, reverse=True)
    more = len(commented) + len(worrying) - len(notable)
    left = [_t(lang, "Sessions with a comment or a problem (newest first)")] + [
        textwrap.shorten(_t(lang, "{date} {ended}; pain {pain}", date=f"{r.started:%Y-%m-%d}",
                            ended=ended_text(r, lang), pain=_fmt_num(r.pain))
                         + (f' "{r.comment}"' if r.comment else ""), width=84, placeholder="…")
        for r in notable] + ([_t(lang, "no session with a comment or a problem")] if not notable
                             else [_t(lang, "… {n} more in the list of sessions", n=more)] if more else [])
    right = [_t(lang, "Prescription in force")] + [part for x in _rx_lines(d.rx_in_force, lang)
                                         for part in textwrap.wrap(x, width=68, subsequent_indent="  ")][:9]
    fig.text(0.04, foot.get_position().y1, "\n".join(left), va="top", fontsize=6, family="monospace")
    fig.text(0.56, foot.get_position().y1, "\n".join(right), va="top", fontsize=6, family="monospace")
    for ax in fig.axes:
        for t in ax.get_xticklabels() + ax.get_yticklabels():
            t.set_fontsize(6)
        for t in ax.texts:
            t.set_fontsize(min(t.get_fontsize(), 5.5))
    return fig
