"""The clinician's review report: one self-contained HTML page (and optionally a one-page
PDF) from a log bundle, readable offline, taken in within a minute.

Top to bottom, in the order a clinician asks: can I trust this file (the bundle's
verification, prominently), is the patient doing the sessions (adherence calendar and
weekly ratio), how do the sessions go (duration, contractions done of planned), is the
patient progressing (intensity per channel against the cap, pain and effort), did anything
go wrong (e-stops, faults, electrode problems, refused requests), and what was prescribed.

Plots are matplotlib (Agg backend, no display, no network), embedded as base64 PNG. Every
string that comes from the bundle is HTML-escaped: a bundle is data, never markup.

Where the issue is silent:
- Days are the local days of the machine making the report (bundles store UTC).
- Adherence follows `schedules.adherence.weekly_adherence` (completed sessions only, weeks
  prorated) for each prescription used, up to the bundle's creation day.
- A session's contractions are the most any channel completed, against the planned count
  per channel; its intensity is each channel's mean of completed contractions.
- "Faults" counts `fault` and `watchdog` events; "electrode problems" counts `lead_off`.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on a clinician's laptop or in CI

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from .bundle import Bundle, parse_when, read_bundle, verify_bundle  # noqa: E402

INCIDENT_KINDS = {"estop": "e-stop", "fault": "fault", "watchdog": "watchdog",
                  "lead_off": "electrode off", "refused": "refused"}
STATUS_COLORS = {"completed": "#2e7d32", "stopped": "#f9a825", "aborted": "#c62828",
                 "interrupted": "#6a1b9a"}
CHANNEL_COLORS = ("#1565c0", "#ef6c00")


@dataclass
class ReportResult:
    html_path: Path
    pdf_path: Path | None
    verified: bool | None          # None: no device key was given
    problems: list[str]
    sessions: int


@dataclass
class _Data:
    """What the page shows, extracted once from the bundle."""

    sessions: list[dict[str, Any]]
    starts: list[dt.datetime]          # local, aware
    prescriptions: list[dict[str, Any]]
    rx_in_force: dict[str, Any] | None
    incidents: list[tuple[dt.datetime, str, str, str]]  # (when, session id, kind, detail)
    weeks: list[Any] = field(default_factory=list)        # WeekAdherence rows
    end_day: dt.date | None = None


# --- entry point -----------------------------------------------------------------------

def build_report(bundle_path: str | os.PathLike[str], *, out_html: str | os.PathLike[str],
                 device_public_key: Ed25519PublicKey | None = None,
                 out_pdf: str | os.PathLike[str] | None = None,
                 tz: dt.tzinfo | None = None) -> ReportResult:
    """Verify the bundle, then write the HTML page (and the PDF page). Raises
    bundle.BundleError when the file is not a bundle; a bundle that fails verification
    still gets its report, with the problems at the top."""
    bundle = read_bundle(bundle_path)
    problems = verify_bundle(bundle, device_public_key) if device_public_key is not None else []
    verified = None if device_public_key is None else not problems
    data = _extract(bundle, tz)

    # fixed margins, not constrained layout: the layout solver cost a second on five years
    fig = Figure(figsize=(13, 11.5), dpi=80)
    _draw_panels(fig, fig.add_gridspec(len(PANEL_HEIGHTS), 2, height_ratios=PANEL_HEIGHTS, left=0.095,
                                       right=0.99, top=0.955, bottom=0.03, hspace=0.62, wspace=0.1), data)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 2})
    png_b64 = base64.b64encode(buf.getvalue()).decode("ascii")

    page = _html(bundle, data, verified=verified, problems=problems, png_b64=png_b64,
                 source_name=Path(bundle_path).name)
    out_html = Path(out_html)
    out_html.write_text(page, encoding="utf-8")

    pdf_path = None
    if out_pdf is not None:
        pdf_path = Path(out_pdf)
        _pdf(pdf_path, bundle, data, verified=verified, problems=problems)
    return ReportResult(out_html, pdf_path, verified, problems, len(data.sessions))


# --- data ------------------------------------------------------------------------------

def _extract(bundle: Bundle, tz: dt.tzinfo | None) -> _Data:
    export = bundle.export(skip_kinds=("contraction",))  # per-session counts suffice
    sessions = sorted((s for s in export["sessions"] if s.get("started_at")),
                      key=lambda s: s["started_at"])
    starts = [parse_when(s["started_at"]).astimezone(tz) for s in sessions]
    incidents = []
    for s, start in zip(sessions, starts):
        for e in s.get("events") or ():
            if e.get("kind") in INCIDENT_KINDS:
                when = start + dt.timedelta(seconds=float(e.get("t") or 0))
                incidents.append((when, str(s.get("id")), e["kind"], _detail(e.get("detail"))))
    prescriptions = [p for p in export.get("prescriptions") or () if isinstance(p, dict)]
    last_rx_id = sessions[-1].get("prescription_id") if sessions else None
    in_force = [p for p in prescriptions if _rx_source(p).get("id") == last_rx_id] or prescriptions
    created = bundle.header.get("created_at")
    try:
        end_day = parse_when(created).astimezone(tz).date() if created else None
    except ValueError:
        end_day = None
    if end_day is None and starts:
        end_day = starts[-1].date()
    data = _Data(sessions, starts, prescriptions, in_force[-1] if in_force else None, incidents, end_day=end_day)
    data.weeks = _adherence(data, tz)
    return data


def _rx_source(p: Mapping[str, Any]) -> dict[str, Any]:
    """The prescription as the clinician wrote it (the store keeps it under `source`)."""
    src = p.get("source")
    return src if isinstance(src, dict) else dict(p)


def _detail(detail: Any) -> str:
    if not isinstance(detail, Mapping) or not detail:
        return ""
    return ", ".join(f"{k} {v}" for k, v in detail.items())


def _adherence(data: _Data, tz: dt.tzinfo | None) -> list[Any]:
    """Weekly adherence rows over every prescription the sessions ran under."""
    from schedules.adherence import weekly_adherence
    from schedules.validate import PrescriptionError, parse_prescription

    if data.end_day is None:
        return []
    rows = []
    seen: set[str] = set()
    for p in reversed(data.prescriptions):  # the latest version of each id
        src = _rx_source(p)
        rx_id = src.get("id")
        if rx_id in seen:
            continue
        seen.add(rx_id)
        try:
            issued = dt.date.fromisoformat(str(src.get("issued")))
            rx = parse_prescription(src, today=issued)
        except (PrescriptionError, ValueError):
            continue  # shown as "prescription unreadable"; no adherence rather than a wrong one
        starts = [(parse_when(s["started_at"]), s.get("status", "")) for s in data.sessions
                  if s.get("prescription_id") == rx_id]
        rows.extend(weekly_adherence(rx, starts, today=data.end_day, tz=tz))
    rows.sort(key=lambda w: w.first_day)
    return rows


def _duration_min(s: Mapping[str, Any]) -> float:
    try:
        return (parse_when(s["ended_at"]) - parse_when(s["started_at"])).total_seconds() / 60
    except (KeyError, TypeError, ValueError):
        return float("nan")


def _contractions_done(s: Mapping[str, Any]) -> int:
    return max((int(c.get("contractions") or 0) for c in s.get("channels") or ()), default=0)


def _report_of(s: Mapping[str, Any]) -> Mapping[str, Any] | None:
    r = s.get("report")
    return r if isinstance(r, Mapping) else None


# --- plots -----------------------------------------------------------------------------

def _draw_panels(fig: Figure, gs: Any, d: _Data, *, title_pt: float = 10) -> None:
    """Calendar + weekly adherence, duration, contractions, intensity, pain/effort, incidents."""
    dates = mdates.date2num([s.replace(tzinfo=None) for s in d.starts]) if d.starts else np.array([])
    statuses = [s.get("status", "") for s in d.sessions]

    ax = fig.add_subplot(gs[0, :])
    _calendar(ax, fig.add_subplot(gs[1, :]), d, title_pt=title_pt)

    ax_dur = fig.add_subplot(gs[2, 0])
    ax_con = fig.add_subplot(gs[2, 1], sharex=ax_dur)
    ax_int = fig.add_subplot(gs[3, :], sharex=ax_dur)
    ax_pe = fig.add_subplot(gs[4, :], sharex=ax_dur)
    ax_inc = fig.add_subplot(gs[5, :], sharex=ax_dur)

    dur = np.array([_duration_min(s) for s in d.sessions])
    colors = [STATUS_COLORS.get(st, "#757575") for st in statuses]
    ax_dur.scatter(dates, dur, c=colors, s=9, linewidths=0)
    ax_dur.set_title("Session duration (min), colour = end status", loc="left", fontsize=title_pt)
    ax_dur.set_ylim(bottom=0)
    for st, col in STATUS_COLORS.items():
        ax_dur.scatter([], [], c=col, s=12, label=f"{st} ({statuses.count(st)})")
    ax_dur.legend(fontsize=7, loc="lower left", ncols=2, framealpha=0.8)

    done = np.array([_contractions_done(s) for s in d.sessions])
    planned = np.array([int(s.get("planned_contractions") or 0) for s in d.sessions])
    ax_con.scatter(dates, done, c=colors, s=9, linewidths=0, label="done (most on any channel)")
    ax_con.step(dates, planned, where="post", color="#424242", lw=1, ls="--", label="planned")
    ax_con.set_title("Contractions per session, done of planned", loc="left", fontsize=title_pt)
    ax_con.set_ylim(bottom=0)
    ax_con.legend(fontsize=7, loc="lower left")

    rx_channels = _rx_source(d.rx_in_force).get("channels", []) if d.rx_in_force else []
    n_ch = max([len(s.get("channels") or ()) for s in d.sessions] + [len(rx_channels), 1])
    for ch in range(n_ch):
        mean = np.array([_channel(s, ch, "mean_ma") for s in d.sessions])
        peak = np.array([_channel(s, ch, "peak_ma") for s in d.sessions])
        label = rx_channels[ch].get("label", f"channel {ch}") if ch < len(rx_channels) else f"channel {ch}"
        col = CHANNEL_COLORS[ch % len(CHANNEL_COLORS)]
        ax_int.plot(dates, mean, ".", ms=3, color=col, alpha=0.5)
        ax_int.plot(dates, _rolling(mean, 7), "-", lw=1.8, color=col, label=f"ch {ch} {label}: mean (7-session avg)")
        ax_int.plot(dates, peak, "_", ms=4, color=col, alpha=0.35)
        if ch < len(rx_channels) and rx_channels[ch].get("max_ma") is not None:
            ax_int.axhline(float(rx_channels[ch]["max_ma"]), color=col, ls=":", lw=1.2,
                           label=f"ch {ch} cap {rx_channels[ch]['max_ma']} mA")
    ax_int.set_title("Intensity per channel (mA): dots mean, dashes peak, line 7-session average, dotted cap",
                     loc="left", fontsize=title_pt)
    ax_int.set_ylim(bottom=0)
    ax_int.legend(fontsize=7, loc="lower right", ncols=2)

    pain = np.array([_num((_report_of(s) or {}).get("pain")) for s in d.sessions])
    effort = np.array([_num((_report_of(s) or {}).get("effort")) for s in d.sessions])
    ax_pe.plot(dates, pain, ".", ms=3, color="#c62828", alpha=0.4)
    ax_pe.plot(dates, _rolling(pain, 7), "-", lw=1.8, color="#c62828", label="pain 0-10")
    ax_pe.plot(dates, effort, ".", ms=3, color="#5e35b1", alpha=0.4)
    ax_pe.plot(dates, _rolling(effort, 7), "-", lw=1.8, color="#5e35b1", label="effort (Borg CR10)")
    reported = int(np.count_nonzero(~np.isnan(pain)))
    ax_pe.set_title(f"Pain and effort after sessions (line: 7-report average; {reported} of "
                    f"{len(d.sessions)} sessions reported)", loc="left", fontsize=title_pt)
    ax_pe.set_ylim(-0.3, 10.3)
    ax_pe.legend(fontsize=7, loc="upper right")

    kinds = list(INCIDENT_KINDS)
    counts = Counter(k for _, _, k, _ in d.incidents)
    for row, kind in enumerate(kinds):
        when = [w for w, _, k, _ in d.incidents if k == kind]
        if when:
            ax_inc.plot(mdates.date2num([w.replace(tzinfo=None) for w in when]), [row] * len(when), "|",
                        ms=9, mew=1.5, color="#c62828" if kind != "refused" else "#f9a825")
    ax_inc.set_yticks(range(len(kinds)), [f"{INCIDENT_KINDS[k]} ({counts.get(k, 0)})" for k in kinds], fontsize=8)
    ax_inc.set_ylim(-0.6, len(kinds) - 0.4)
    ax_inc.invert_yaxis()
    ax_inc.set_title("Incidents", loc="left", fontsize=title_pt)

    for a in (ax_dur, ax_con, ax_int, ax_pe, ax_inc):
        a.grid(alpha=0.25)
        a.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=10))
        a.xaxis.set_major_formatter(mdates.ConciseDateFormatter(a.xaxis.get_major_locator()))
        a.tick_params(labelsize=8)
    if len(dates):
        pad = 1.0
        ax_dur.set_xlim(dates.min() - pad, dates.max() + pad)


#: Rows of the panel grid: calendar, weekly bars, duration|contractions, intensity, pain/effort, incidents.
PANEL_HEIGHTS = (1.15, 0.45, 1, 1, 1, 0.7)


def _calendar(ax: Any, bar_ax: Any, d: _Data, *, title_pt: float = 10) -> None:
    """One cell per day (columns = weeks, rows = Monday..Sunday), coloured by the day's
    best session; below it, the weekly adherence ratio as bars."""
    if not d.starts and not d.weeks:
        ax.text(0.5, 0.5, "no sessions in this bundle", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        bar_ax.set_axis_off()
        return
    first_days = [w.first_day for w in d.weeks] + [s.date() for s in d.starts]
    last_days = [w.last_day for w in d.weeks] + [s.date() for s in d.starts]
    first = min(first_days)
    first -= dt.timedelta(days=first.weekday())
    last = max(last_days)
    n_weeks = (last - first).days // 7 + 1
    # 0 outside the prescription, 1 prescribed but no session, 2 aborted/interrupted, 3 stopped, 4 completed
    grid = np.zeros((7, n_weeks))
    covered = [(w.first_day, w.last_day) for w in d.weeks]
    for a, b in covered:
        for i in range((b - a).days + 1):
            day = a + dt.timedelta(days=i)
            k = (day - first).days
            grid[k % 7, k // 7] = 1
    rank = {"completed": 4, "stopped": 3, "aborted": 2, "interrupted": 2}
    for s, start in zip(d.sessions, d.starts):
        k = (start.date() - first).days
        grid[k % 7, k // 7] = max(grid[k % 7, k // 7], rank.get(s.get("status"), 2))
    cmap = ListedColormap(["#ffffff", "#e0e0e0", STATUS_COLORS["aborted"], STATUS_COLORS["stopped"],
                           STATUS_COLORS["completed"]])
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=-0.5, vmax=4.5, interpolation="nearest",
              extent=(-0.5, n_weeks - 0.5, 6.5, -0.5))
    ax.set_yticks(range(7), ["Mon", "", "Wed", "", "Fri", "", "Sun"], fontsize=7)
    # month labels on the week axis: every month up to two years, else January and July
    ticks, labels = [], []
    seen = set()
    for wk in range(n_weeks):
        monday = first + dt.timedelta(days=7 * wk)
        key = (monday.year, monday.month)
        if key in seen:
            continue
        seen.add(key)
        if n_weeks > 104 and monday.month not in (1, 7):
            continue
        ticks.append(wk)
        labels.append(monday.strftime("%b %Y") if monday.month == 1 or len(labels) == 0 else monday.strftime("%b"))
    ax.set_xticks(ticks, labels, fontsize=7)
    total_done = sum(w.done for w in d.weeks)
    total_owed = sum(w.prescribed for w in d.weeks)
    overall = (f"{total_done} of {total_owed:.0f} prescribed sessions completed ({100 * total_done / total_owed:.0f}%)"
               if total_owed else "no prescription period to compare with")
    ax.set_title(f"Adherence: {overall}\n"
                 f"day: green completed · amber stopped early · red aborted/interrupted · "
                 f"grey prescribed, no session · white outside the prescription",
                 loc="left", fontsize=title_pt)
    ax.set_xlim(-0.5, n_weeks - 0.5)
    x = [((w.first_day - first).days // 7) for w in d.weeks]
    ratio = [min(w.ratio, 1.5) if w.ratio is not None else 0 for w in d.weeks]
    bar_ax.bar(x, ratio, width=0.9, color=["#2e7d32" if r >= 0.8 else "#f9a825" if r >= 0.5 else "#c62828"
                                         for r in ratio])
    bar_ax.axhline(1.0, color="#424242", lw=0.8, ls="--")
    bar_ax.set_xlim(-0.5, n_weeks - 0.5)
    bar_ax.set_ylim(0, 1.5)
    bar_ax.set_yticks([0, 0.5, 1], ["0", "50%", "100%"], fontsize=7)
    bar_ax.set_xticks(ticks, [""] * len(ticks))
    bar_ax.set_title("Weekly adherence: completed / prescribed (green >= 80%, amber >= 50%, red below)",
                     loc="left", fontsize=title_pt * 0.9)


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
    period: str
    counts: Counter
    adherence_all: str
    adherence_recent: str
    pain: str
    effort: str
    incidents: Counter


def _summary(d: _Data) -> _Summary:
    counts = Counter(s.get("status", "?") for s in d.sessions)
    period = (f"{d.starts[0].date().isoformat()} to {d.starts[-1].date().isoformat()}" if d.starts
              else "no sessions")

    def ratio(weeks: list[Any]) -> str:
        owed = sum(w.prescribed for w in weeks)
        done = sum(w.done for w in weeks)
        return f"{100 * done / owed:.0f}% ({done} of {owed:.0f})" if owed else "n/a"

    def trend(key: str) -> str:
        vals = [_num((_report_of(s) or {}).get(key)) for s in d.sessions]
        vals = [v for v in vals if v == v]
        if not vals:
            return "no reports"
        first, last = vals[:10], vals[-10:]
        return f"{sum(first) / len(first):.1f} (first 10) → {sum(last) / len(last):.1f} (last 10)"

    return _Summary(period, counts, ratio(d.weeks), ratio(d.weeks[-4:]), trend("pain"), trend("effort"),
                    Counter(k for _, _, k, _ in d.incidents))


def _rx_lines(p: Mapping[str, Any] | None) -> list[str]:
    if p is None:
        return ["no prescription in this bundle"]
    src = _rx_source(p)
    sig = src.get("signature") if isinstance(src.get("signature"), Mapping) else None
    lines = [f"{src.get('id', '?')} for {src.get('patient_id', '?')} by {src.get('clinician_id', '?')}, "
             f"valid {src.get('issued', '?')} to {src.get('expires', '?')}",
             f"{src.get('sessions_per_week', '?')} sessions/week, at most {src.get('max_sessions_per_day', '?')}/day, "
             f"{src.get('min_hours_between', '?')} h apart; supervision {src.get('supervision', '?')}; "
             + (f"signed by key {sig.get('key_id')}" if sig else "UNSIGNED")]
    for i, c in enumerate(src.get("channels") or ()):
        if isinstance(c, Mapping):
            lines.append(f"channel {i} {c.get('label', '')}: cap {c.get('max_ma', '?')} mA")
    for b in src.get("blocks") or ():
        if isinstance(b, Mapping):
            def v(k: str) -> str:
                x = b.get(k)
                if isinstance(x, Mapping):
                    return f"{x.get('value')} ({x.get('min')}-{x.get('max')})"
                return str(x)
            lines.append(f"{b.get('label', 'block')}: {v('minutes')} min, {v('hz')} Hz, {v('pulse_us')} µs, "
                         f"on {v('on_s')} s / off {v('off_s')} s, ramps {v('ramp_up_s')}/{v('ramp_down_s')} s, "
                         f"{b.get('pattern', 'synchronous')}")
    return lines


def _status_text(bundle: Bundle, verified: bool | None, problems: list[str]) -> tuple[str, str]:
    """(css class, headline) of the verification banner."""
    kid = bundle.device_key_id or "?"
    if verified is None:
        return "warn", (f"NOT VERIFIED: no device key was given; completeness and origin unknown "
                        f"(the bundle names device key {kid}).")
    if verified:
        return "ok", f"Verified: complete, unaltered and signed by device key {kid}."
    return "bad", (f"VERIFICATION FAILED ({len(problems)} problem{'s' * (len(problems) != 1)}): "
                   f"do not rely on this data without checking with the device.")


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
.kpis{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:10px}
.kpi{border:1px solid #e0e0e0;border-radius:6px;padding:6px 10px;min-width:120px}
.kpi b{display:block;font-size:18px}
.kpi span{font-size:12px;color:#616161}
.kpi.alert b{color:#c62828}
img{width:100%;height:auto}
.cols{display:flex;gap:18px;flex-wrap:wrap}
.cols>div{flex:1;min-width:380px}
h2{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:12px;width:100%}
td,th{border-bottom:1px solid #eeeeee;padding:3px 6px;text-align:left;vertical-align:top}
.foot{color:#757575;font-size:11px;margin-top:14px}
"""


def _html(bundle: Bundle, d: _Data, *, verified: bool | None, problems: list[str], png_b64: str,
          source_name: str) -> str:
    e = html.escape
    sm = _summary(d)
    css_class, headline = _status_text(bundle, verified, problems)
    shown = problems[:12]
    problem_list = ("<ul>" + "".join(f"<li>{e(p)}</li>" for p in shown)
                    + (f"<li>… and {len(problems) - len(shown)} more</li>" if len(problems) > len(shown) else "")
                    + "</ul>") if problems else ""
    src = _rx_source(d.rx_in_force) if d.rx_in_force else {}
    patient = src.get("patient_id") or "?"

    def kpi(value: str, label: str, alert: bool = False) -> str:
        return f'<div class="kpi{" alert" if alert else ""}"><b>{e(value)}</b><span>{e(label)}</span></div>'

    faults = sm.incidents["fault"] + sm.incidents["watchdog"]
    kpis = "".join([
        kpi(str(len(d.sessions)), f"sessions ({sm.counts['completed']} completed)"),
        kpi(sm.adherence_all, "adherence, whole period"),
        kpi(sm.adherence_recent, "adherence, last 4 weeks"),
        kpi(str(sm.counts["stopped"]), "stopped early"),
        kpi(str(sm.counts["aborted"] + sm.counts["interrupted"]), "aborted / interrupted",
            sm.counts["aborted"] + sm.counts["interrupted"] > 0),
        kpi(str(sm.incidents["estop"]), "e-stops", sm.incidents["estop"] > 0),
        kpi(str(faults), "faults", faults > 0),
        kpi(str(sm.incidents["lead_off"]), "electrode problems", sm.incidents["lead_off"] > 0),
        kpi(str(sm.incidents["refused"]), "refused requests"),
    ])
    recent = sorted(d.incidents, key=lambda i: i[0], reverse=True)[:12]
    incident_rows = "".join(
        f"<tr><td>{e(w.strftime('%Y-%m-%d %H:%M'))}</td><td>{e(INCIDENT_KINDS.get(k, k))}</td>"
        f"<td>{e(sid)}</td><td>{e(det)}</td></tr>" for w, sid, k, det in recent) \
        or "<tr><td colspan=4>none</td></tr>"
    rx_rows = "".join(f"<tr><td>{e(line)}</td></tr>" for line in _rx_lines(d.rx_in_force))
    others = [p for p in d.prescriptions if p is not d.rx_in_force]
    other_rx = (f"<p>Also in this bundle: {e(', '.join(sorted({str(_rx_source(p).get('id')) for p in others})))}</p>"
                if others else "")
    created = bundle.header.get("created_at") or "?"
    since = bundle.header.get("since")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>NMES review: {e(str(patient))}, {e(sm.period)}</title>
<style>{_CSS}</style></head>
<body>
<h1>NMES home training review: patient {e(str(patient))}</h1>
<div class="sub">Sessions {e(sm.period)} · bundle {e(source_name)} made {e(str(created))}
{'(sessions since ' + e(str(since)) + ')' if since else '(whole log)'} · device key {e(str(bundle.device_key_id))}</div>
<div class="banner {css_class}">{e(headline)}{problem_list}</div>
<div class="kpis">{kpis}</div>
<div class="kpis">{kpi(sm.pain, "pain 0-10, mean")}{kpi(sm.effort, "effort (Borg CR10), mean")}</div>
<img alt="adherence calendar, session duration and contractions, intensity per channel, pain and effort, incidents"
 src="data:image/png;base64,{png_b64}">
<div class="cols">
<div><h2>Prescription in force</h2><table>{rx_rows}</table>{other_rx}</div>
<div><h2>Latest incidents</h2><table><tr><th>when</th><th>what</th><th>session</th><th>detail</th></tr>
{incident_rows}</table></div>
</div>
<div class="foot">Made by homeapp report from a homeapp.log-bundle/1 file. Days are local to the computer
that made this report. Adherence counts completed sessions against the prescribed sessions per week
(prorated for partial weeks). Check the device key id above against the one recorded when the
device was set up.</div>
</body></html>
"""


# --- PDF -------------------------------------------------------------------------------

def _pdf(path: Path, bundle: Bundle, d: _Data, *, verified: bool | None, problems: list[str]) -> None:
    """One A4 portrait page: headline, verification, key figures, the same plots, the prescription."""
    sm = _summary(d)
    css_class, headline = _status_text(bundle, verified, problems)
    color = {"ok": "#1b5e20", "bad": "#b71c1c", "warn": "#795548"}[css_class]
    fig = Figure(figsize=(8.27, 11.69), dpi=100)
    gs = fig.add_gridspec(3, 1, height_ratios=[0.9, 8.6, 1.0], left=0.13, right=0.98, top=0.98, bottom=0.01,
                          hspace=0.08)
    head = fig.add_subplot(gs[0, 0])
    head.set_axis_off()
    src = _rx_source(d.rx_in_force) if d.rx_in_force else {}
    text = [f"NMES home training review: patient {src.get('patient_id', '?')}   sessions {sm.period}",
            headline,
            ("; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
             if problems else f"device key {bundle.device_key_id}"),
            f"{len(d.sessions)} sessions ({sm.counts['completed']} completed, {sm.counts['stopped']} stopped, "
            f"{sm.counts['aborted'] + sm.counts['interrupted']} aborted/interrupted).  Adherence {sm.adherence_all}, "
            f"last 4 weeks {sm.adherence_recent}.",
            f"E-stops {sm.incidents['estop']}, faults {sm.incidents['fault'] + sm.incidents['watchdog']}, "
            f"electrode problems {sm.incidents['lead_off']}, refused {sm.incidents['refused']}.  "
            f"Pain {sm.pain}.  Effort {sm.effort}."]
    y = 1.0
    for i, line in enumerate(text):
        head.text(0, y, line[:150], transform=head.transAxes, va="top", fontsize=10 if i == 0 else 7,
                  weight="bold" if i < 2 else "normal", color=color if i in (1, 2) else "#212121")
        y -= 0.28 if i == 0 else 0.19
    _draw_panels(fig, gs[1, 0].subgridspec(len(PANEL_HEIGHTS), 2, height_ratios=PANEL_HEIGHTS, hspace=0.75,
                                           wspace=0.12), d, title_pt=7.5)
    foot = fig.add_subplot(gs[2, 0])
    foot.set_axis_off()
    foot.text(0, 1, "Prescription in force\n" + "\n".join(_rx_lines(d.rx_in_force)[:8]),
              transform=foot.transAxes, va="top", fontsize=7, family="monospace")
    for ax in fig.axes:
        for t in ax.get_xticklabels() + ax.get_yticklabels():
            t.set_fontsize(6)
    with PdfPages(path) as pdf:
        pdf.savefig(fig)
