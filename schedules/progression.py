"""Progression rules: from a patient's recent sessions, propose the next step of their program.

One pure function, `suggest(export, rx, today=...)`, reads the device's exported log (the
format `homeapp log export` and the clinic's export write, docs/contract.md) and the
prescription in force (its JSON object), and returns a `Suggestion`: either a proposed new
prescription (a dict the validator accepts, unsigned, with a new id) and the reasons for
it, or "no change" and the reasons why not. It never changes anything by itself: a
clinician reads the reasons, edits the proposal if they wish, and signs it.

The rules, in the order they are applied, and why:

1. **Only this prescription's recent sessions count.** Sessions run under the
   prescription in force (`prescription_id` equal to its `id`) that started in the last
   `RECENT_DAYS` (14) days, judged in the patient's time zone. Older sessions or sessions of
   an earlier program say little about how the patient copes with this one.
2. **Hold while anything is wrong; safety comes before progress.** No change when, in
   those 14 days:
   - fewer than `MIN_SESSIONS` (3) sessions were done, or the program has been in force for
     fewer than `MIN_DAYS_IN_FORCE` (7) days: too little to judge, and muscles need about a
     week to adapt to a new dose;
   - any pain report reached `PAIN_HIGH` (6/10), or pain is rising (the later half of the
     reports' mean at least `PAIN_RISE_POINTS` (1) above the earlier half's): the same
     thresholds the review flags (homeapp/report.py), so the pages never say "progress"
     beside a red pain flag;
   - adherence (completed sessions of sessions due, schedules.adherence, never above 100%)
     was under `ADHERENCE_MIN` (80%): a dose not taken cannot be judged too easy;
   - an e-stop, a fault or watchdog, or an electrode that came off, or a session that
     ended early (stopped, aborted, interrupted) or with contractions cut short: find out
     why first (a device or electrode problem, or a program that is already too much);
   - the patient rates the work hard (mean effort at least `EFFORT_HARD`, 7/10): the
     program already loads them.
3. **Progress only when the cap is what limits them.** A channel "reached its cap" in a
   session when its highest intensity came within one intensity step
   (`limits.INTENSITY_STEP_MA`) of the cap, or the patient asked for more and was refused:
   they could not go higher because the prescription stopped them. When a channel did so in
   most of the last `LAST_SESSIONS` (5) sessions (more than half, at least 3), with every
   one of those sessions' pain at most `PAIN_OK_MAX` (3/10), the patient has outgrown the
   cap. When no channel did, no change: they still have room to raise the intensity
   within the program they have.
4. **One change at a time**, so the next review can tell what the patient responded to,
   in this order of preference:
   a. raise the cap of each channel that reached it, by `CAP_STEP_FRACTION` (10%) rounded to
      a whole mA, at least `CAP_STEP_MIN_MA` (2) and at most `CAP_STEP_MAX_MA` (5), never
      above the device limit: intensity (the training dose) is what NMES strength gains
      follow, and about 10% is the usual progressive-overload step;
   b. when every such cap is already at the device limit: lengthen the main block's
      contraction by `ON_STEP_S` (1 s);
   c. when that is not possible either: shorten its rest by `OFF_STEP_S` (2 s).
   b and c stay within the guidance for contractions (4-10 s) and rests (6-20 s) of
   docs/presets.md, or, when the prescription follows a preset that departs from that
   guidance on purpose (`presets.guidance_departures`: the 36 s rests of type 2b fibres,
   the 20-50 s rests of the quadriceps protocol), within that preset's own values, so a
   rule never undoes what a preset argued for. The main block is the one with the most
   minutes (a warm-up is short); a value the patient already adjusts within a range
   ({value, min, max}) is left to the clinician.
5. **Every proposal is valid.** A step is offered only if the validator
   (schedules.validate) accepts the whole proposed prescription as of `today`; a step it
   would refuse (an alternating block whose rest would become shorter than its
   contraction, for example) is skipped with its reason. The proposal has a new id
   (`rx-knee-20261205` from `rx-knee-20261106`), is issued today, keeps the program's
   length (expires today plus the old `expires - issued`), and carries no signature and
   no `valid_from`.

Pure: imports only `schedules` and the standard library; no I/O.
"""
from __future__ import annotations

import copy
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .adherence import period_adherence, weekly_adherence
from .limits import DEVICE_LIMITS, INTENSITY_STEP_MA
from .presets import (GUIDANCE_OFF_S, GUIDANCE_ON_S, LANGUAGES, PRESETS, Preset, guidance_departures,
                      label_text)
from .validate import PrescriptionError, check_prescription, parse_prescription

__all__ = ["suggest", "Suggestion", "Reason", "Change", "preset_of", "RECENT_DAYS", "LAST_SESSIONS",
           "PAIN_OK_MAX", "PAIN_HIGH", "ADHERENCE_MIN"]

RECENT_DAYS = 14
MIN_SESSIONS = 3
MIN_DAYS_IN_FORCE = 7
LAST_SESSIONS = 5
PAIN_OK_MAX = 3
PAIN_HIGH = 6
PAIN_RISE_POINTS = 1.0
ADHERENCE_MIN = 0.8
EFFORT_HARD = 7.0
CAP_STEP_FRACTION = 0.10
CAP_STEP_MIN_MA = 2
CAP_STEP_MAX_MA = 5
ON_STEP_S = 1
OFF_STEP_S = 2

_INCIDENT_KINDS = {"estop": "e-stop pressed", "fault": "fault", "watchdog": "watchdog fault",
                   "lead_off": "electrode came off"}


@dataclass(frozen=True)
class Reason:
    """One reason, for a person: `code` names the rule (for translations and tests),
    `text` says it in English, `values` holds the numbers it quotes."""

    code: str
    text: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One field the proposal changes, by the path the validator names (`channels[0].max_ma`)."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Suggestion:
    """The rules' answer: `proposed` (a valid, unsigned prescription dict) and its
    `changes`, or None ("no change"); `reasons` either way, the deciding ones first."""

    proposed: dict[str, Any] | None
    changes: tuple[Change, ...]
    reasons: tuple[Reason, ...]
    sessions_judged: int = 0

    @property
    def change(self) -> bool:
        return self.proposed is not None

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]


# ----------------------------------------------------------------------------- reading the log

@dataclass(frozen=True)
class _Session:
    started: dt.datetime
    status: str
    peaks: tuple[float | None, ...]
    pain: float | None
    effort: float | None
    incidents: tuple[str, ...]
    refused_channels: frozenset[int]
    cut_short: bool


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _when(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _read_session(raw: Mapping[str, Any]) -> _Session | None:
    started = _when(raw.get("started_at"))
    if started is None:
        return None
    channels = [c for c in raw.get("channels") or () if isinstance(c, Mapping)]
    peaks = tuple(_number(c.get("peak_ma")) for c in channels)
    planned = _number(raw.get("planned_contractions"))
    cut_short = any((_number(c.get("contractions_cut_short")) or 0) > 0 for c in channels)
    if raw.get("status") == "completed" and planned is not None:
        cut_short = cut_short or any((_number(c.get("contractions")) or 0) < planned for c in channels)
    report = raw.get("report") if isinstance(raw.get("report"), Mapping) else {}
    incidents, refused = [], set()
    for event in raw.get("events") or ():
        if not isinstance(event, Mapping):
            continue
        kind = event.get("kind")
        if kind in _INCIDENT_KINDS:
            incidents.append(kind)
        detail = event.get("detail") if isinstance(event.get("detail"), Mapping) else {}
        if kind == "refused" and detail.get("what") == "intensity" and isinstance(detail.get("channel"), int):
            refused.add(detail["channel"])
    return _Session(started=started, status=str(raw.get("status")), peaks=peaks,
                    pain=_number(report.get("pain")), effort=_number(report.get("effort")),
                    incidents=tuple(incidents), refused_channels=frozenset(refused), cut_short=cut_short)


# ----------------------------------------------------------------------------- presets and ids

def preset_of(rx: Mapping[str, Any]) -> Preset | None:
    """The preset a prescription follows, when its id names one (`rx-fibre-type-2b-...`,
    what `make_prescription` writes) or its blocks are a preset's (the same blocks by
    label, in English or Swedish, frequency and pattern);
    None otherwise."""
    rx_id = str(rx.get("id", ""))
    for name in sorted(PRESETS, key=len, reverse=True):
        if rx_id.startswith(f"rx-{name}-") or rx_id == f"rx-{name}":
            return PRESETS[name]
    blocks = [b for b in rx.get("blocks") or () if isinstance(b, Mapping)]

    def shape(bs: Sequence[Mapping[str, Any]], lang: str) -> list[tuple[Any, Any, str]]:
        return [(label_text(str(b.get("label")), lang), _plain(b.get("hz")), b.get("pattern", "synchronous"))
                for b in bs]

    for preset in PRESETS.values():
        if blocks and any(shape(blocks, "en") == shape(preset.blocks, lang) for lang in LANGUAGES):
            return preset
    return None


def _plain(value: Any) -> Any:
    return value.get("value") if isinstance(value, Mapping) else value


def new_id(old_id: str, today: dt.date) -> str:
    """`rx-knee-20261205` from `rx-knee-20261106` (the date replaced), else `OLD-YYYYMMDD`;
    never the old id itself (`rx-knee-20261205-2` on the same day), as `homeapp rx new`."""
    m = re.match(r"^(.*?)-([0-9]{8})(?:-([0-9]+))?$", old_id)
    stem = m.group(1) if m else old_id
    new = f"{stem}-{today:%Y%m%d}"
    if new == old_id or (m and m.group(2) == f"{today:%Y%m%d}"):
        n = int(m.group(3)) if m and m.group(3) else 1
        new = f"{stem}-{today:%Y%m%d}-{n + 1}"
    return new


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ----------------------------------------------------------------------------- the rules

def suggest(export: Mapping[str, Any], rx: Mapping[str, Any], *, today: dt.date,
            tz: dt.tzinfo | None = None) -> Suggestion:
    """The next step for the patient whose log is `export` and whose program is `rx`
    (see the module's rules). `today` is the patient's today; `tz` their time zone
    (None: this machine's)."""
    reasons: list[Reason] = []

    def hold(*extra: Reason, judged: int = 0) -> Suggestion:
        return Suggestion(None, (), tuple(extra) + tuple(reasons), judged)

    try:
        in_force = parse_prescription(dict(rx), today=min(max(today, _issued(rx)), _expires(rx)))
    except (PrescriptionError, ValueError) as e:
        problems = getattr(e, "problems", [str(e)])
        return hold(Reason("rx_invalid", "The prescription in force is not valid, so nothing can be "
                                         "proposed from it: " + "; ".join(problems), {"problems": problems}))

    first_day = today - dt.timedelta(days=RECENT_DAYS - 1)
    sessions = []
    for raw in export.get("sessions") or ():
        if not isinstance(raw, Mapping) or raw.get("prescription_id") != in_force.id:
            continue
        s = _read_session(raw)
        if s is not None and first_day <= s.started.astimezone(tz).date() <= today:
            sessions.append(s)
    sessions.sort(key=lambda s: s.started)

    days_in_force = (today - in_force.starts_on).days + 1
    if len(sessions) < MIN_SESSIONS:
        return hold(Reason("too_few_sessions",
                           f"Only {len(sessions)} session{'s' * (len(sessions) != 1)} of this program in the "
                           f"last {RECENT_DAYS} days: at least {MIN_SESSIONS} are needed to judge it.",
                           {"sessions": len(sessions), "days": RECENT_DAYS, "needed": MIN_SESSIONS}),
                    judged=len(sessions))
    if days_in_force < MIN_DAYS_IN_FORCE:
        return hold(Reason("too_early",
                           f"This program has been in force for {days_in_force} day{'s' * (days_in_force != 1)}: "
                           f"give it at least {MIN_DAYS_IN_FORCE} days before changing it.",
                           {"days": days_in_force, "needed": MIN_DAYS_IN_FORCE}), judged=len(sessions))

    blockers: list[Reason] = []
    pains = [s.pain for s in sessions if s.pain is not None]
    if pains and max(pains) >= PAIN_HIGH:
        blockers.append(Reason("pain_high", f"Pain reached {_fmt(max(pains))}/10 after a session in the last "
                                            f"{RECENT_DAYS} days ({PAIN_HIGH}/10 or more): do not progress.",
                               {"pain": max(pains), "limit": PAIN_HIGH}))
    if len(pains) >= 4:
        half = len(pains) // 2
        earlier, later = sum(pains[:half]) / half, sum(pains[-half:]) / half
        if later - earlier >= PAIN_RISE_POINTS:
            blockers.append(Reason("pain_rising", f"Pain is rising: from {earlier:.1f} to {later:.1f} out of 10 "
                                                  f"on average (earlier against later sessions).",
                                   {"earlier": round(earlier, 1), "later": round(later, 1)}))
    weeks = weekly_adherence(in_force, [(s.started, s.status) for s in sessions], today=today, tz=tz,
                             from_day=first_day)
    adherence = period_adherence(weeks)
    if adherence.ratio is None or adherence.ratio < ADHERENCE_MIN:
        blockers.append(Reason("adherence_low",
                               f"Adherence {adherence.describe()} over {adherence.period}: under "
                               f"{100 * ADHERENCE_MIN:.0f}%, so the program in force has not been tried as "
                               f"prescribed.", {"adherence": adherence.ratio, "done": adherence.done,
                                                "due": adherence.due, "limit": ADHERENCE_MIN}))
    incidents = sorted({k for s in sessions for k in s.incidents}, key=list(_INCIDENT_KINDS).index)
    if incidents:
        what = ", ".join(_INCIDENT_KINDS[k] for k in incidents)
        blockers.append(Reason("incidents", f"In the last {RECENT_DAYS} days: {what}. Find out why before "
                                            f"changing the program.", {"kinds": incidents}))
    early = [s for s in sessions if s.status != "completed"]
    if early:
        blockers.append(Reason("ended_early", f"{len(early)} session{'s' * (len(early) != 1)} ended early "
                                              f"({', '.join(sorted({s.status for s in early}))}).",
                               {"sessions": len(early)}))
    cut = [s for s in sessions if s.cut_short]
    if cut:
        blockers.append(Reason("cut_short", f"Contractions were cut short in {len(cut)} session"
                                            f"{'s' * (len(cut) != 1)}.", {"sessions": len(cut)}))
    efforts = [s.effort for s in sessions if s.effort is not None]
    if efforts and sum(efforts) / len(efforts) >= EFFORT_HARD:
        mean = sum(efforts) / len(efforts)
        blockers.append(Reason("effort_hard", f"The patient rates the work hard (effort {mean:.1f}/10 on "
                                              f"average, {_fmt(EFFORT_HARD)} or more).",
                               {"effort": round(mean, 1), "limit": EFFORT_HARD}))
    if blockers:
        return Suggestion(None, (), tuple(blockers), len(sessions))

    last = sessions[-LAST_SESSIONS:]
    need = len(last) // 2 + 1
    ok_pain = all(s.pain is not None and s.pain <= PAIN_OK_MAX for s in last)
    reached: list[int] = []
    for ch, channel in enumerate(in_force.channels):
        hits = sum(1 for s in last if _reached(s, ch, channel.max_ma))
        if hits >= need:
            reached.append(ch)
            reasons.append(Reason("cap_reached", f"Channel {ch + 1} ({channel.label}) reached its cap of "
                                                 f"{_fmt(channel.max_ma)} mA in {hits} of the last {len(last)} "
                                                 f"sessions.", {"channel": ch, "label": channel.label,
                                                                "cap_ma": channel.max_ma, "hits": hits,
                                                                "sessions": len(last)}))
    if not reached:
        highest = [max((s.peaks[ch] for s in last if ch < len(s.peaks) and s.peaks[ch] is not None), default=None)
                   for ch in range(len(in_force.channels))]
        return hold(Reason("below_cap", "No channel reached its cap in most of the last sessions: the patient "
                                        "can still raise the intensity within this program (highest: "
                                        + ", ".join(f"{_fmt(round(h, 1)) if h is not None else '-'} of "
                                                    f"{_fmt(c.max_ma)} mA"
                                                    for h, c in zip(highest, in_force.channels)) + ").",
                           {"highest_ma": highest, "caps_ma": [c.max_ma for c in in_force.channels]}),
                    judged=len(sessions))
    if not ok_pain:
        return hold(Reason("pain_not_low", f"Not every one of the last {len(last)} sessions has a pain report "
                                           f"of {PAIN_OK_MAX}/10 or less.", {"limit": PAIN_OK_MAX}),
                    judged=len(sessions))
    reasons.append(Reason("tolerated", f"Pain at most {_fmt(max(s.pain for s in last))}/10 in the last "
                                       f"{len(last)} sessions and adherence {adherence.describe()}.",
                          {"pain": max(s.pain for s in last), "adherence": adherence.ratio,
                           "done": adherence.done, "due": adherence.due, "sessions": len(last)}))

    base = _base(rx, today)
    for attempt in (_raise_caps, _lengthen_contraction, _shorten_rest):
        proposed, changes, why = attempt(base, rx, reached)
        if proposed is None:
            reasons.append(why)
            continue
        problems = check_prescription(proposed, today=today)
        if problems:
            reasons.append(Reason("invalid_step", f"{why.text} The validator would refuse it: "
                                                  + "; ".join(problems), {"problems": problems}))
            continue
        return Suggestion(proposed, tuple(changes), (why, *reasons), len(sessions))
    return Suggestion(None, (), (Reason("at_limits", "The patient has outgrown this program, but every step "
                                                     "these rules take is at its limit: review it yourself."),
                                 *reasons), len(sessions))


def _issued(rx: Mapping[str, Any]) -> dt.date:
    try:
        return dt.date.fromisoformat(str(rx.get("issued")))
    except ValueError:
        return dt.date.min


def _expires(rx: Mapping[str, Any]) -> dt.date:
    try:
        return dt.date.fromisoformat(str(rx.get("expires")))
    except ValueError:
        return dt.date.max


def _reached(s: _Session, channel: int, cap_ma: float) -> bool:
    peak = s.peaks[channel] if channel < len(s.peaks) else None
    return channel in s.refused_channels or (peak is not None and peak >= cap_ma - INTENSITY_STEP_MA + 1e-9)


def _base(rx: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    """The prescription as the start of a proposal: new id, issued today, the same length,
    no signature, no valid_from."""
    out = copy.deepcopy(dict(rx))
    out.pop("signature", None)
    out.pop("valid_from", None)
    length = _expires(rx) - _issued(rx)
    out["id"] = new_id(str(rx.get("id", "rx")), today)
    out["issued"] = today.isoformat()
    out["expires"] = (today + length).isoformat()
    return out


_Step = tuple["dict[str, Any] | None", list[Change], Reason]


def _raise_caps(base: dict[str, Any], rx: Mapping[str, Any], reached: list[int]) -> _Step:
    device_max = DEVICE_LIMITS["max_ma"].high
    proposed = copy.deepcopy(base)
    changes, names = [], []
    for ch in reached:
        cap = float(proposed["channels"][ch]["max_ma"])
        step = min(CAP_STEP_MAX_MA, max(CAP_STEP_MIN_MA, round(cap * CAP_STEP_FRACTION)))
        new = min(device_max, math.floor(cap) + step)
        if new <= cap:
            continue
        proposed["channels"][ch]["max_ma"] = new
        changes.append(Change(f"channels[{ch}].max_ma", rx["channels"][ch]["max_ma"], new))
        names.append(f"channel {ch + 1} cap {_fmt(cap)} → {_fmt(new)} mA")
    if not changes:
        return None, [], Reason("cap_at_device_limit", f"The caps are at the device limit of {_fmt(device_max)} mA.",
                                {"limit_ma": device_max})
    what = "; ".join(names)
    return proposed, changes, Reason("raise_cap", f"Raise the cap: {what} (about {100 * CAP_STEP_FRACTION:.0f}%, "
                                                  f"within the device limit of {_fmt(device_max)} mA).",
                                     {"changes": [(c.path, c.old, c.new) for c in changes]})


def _main_block(rx: Mapping[str, Any]) -> int:
    blocks = rx["blocks"]
    minutes = [float(_plain(b["minutes"])) for b in blocks]
    return max(range(len(blocks)), key=lambda i: (minutes[i], i))


def _bounds(rx: Mapping[str, Any], name: str) -> tuple[tuple[float, float], str]:
    """The range `on_s` or `off_s` may move in, and where it comes from."""
    which = "contraction" if name == "on_s" else "rest"
    guidance = GUIDANCE_ON_S if name == "on_s" else GUIDANCE_OFF_S
    preset = preset_of(rx)
    if preset is not None and which in guidance_departures(preset):
        # the preset's main block: its own value(s) are the range the rules keep to
        main = max(preset.blocks, key=lambda b: float(_plain(b["minutes"])))
        v = main[name]
        span = (v["min"], v["max"]) if isinstance(v, Mapping) else (v, v)
        return (float(span[0]), float(span[1])), f"preset {preset.name}"
    return (float(guidance[0]), float(guidance[1])), "the guidance"


def _timing_step(base: dict[str, Any], rx: Mapping[str, Any], name: str, delta: float, code: str,
                 verb: str) -> _Step:
    i = _main_block(base)
    block = base["blocks"][i]
    label = block.get("label", f"block {i + 1}")
    value = block[name]
    if isinstance(value, Mapping):
        return None, [], Reason(f"{code}_adjustable", f"{label}: {name} is adjustable by the patient "
                                                      f"({_fmt(value['min'])} to {_fmt(value['max'])} s); "
                                                      f"left to you.", {"block": i})
    (low, high), source = _bounds(rx, name)
    new = float(value) + delta
    new = min(new, max(high, float(value))) if delta > 0 else max(new, min(low, float(value)))
    new = int(new) if float(new).is_integer() else new
    if new == value:
        return None, [], Reason(f"{code}_at_limit", f"{label}: {name} {_fmt(value)} s is already at the end of "
                                                    f"{source} ({_fmt(low)} to {_fmt(high)} s).",
                                {"block": i, "low": low, "high": high, "source": source})
    proposed = copy.deepcopy(base)
    proposed["blocks"][i][name] = new
    change = Change(f"blocks[{i}].{name}", value, new)
    return proposed, [change], Reason(code, f"{verb} in {label}: {name} {_fmt(value)} → {_fmt(new)} s "
                                            f"(within {source}: {_fmt(low)} to {_fmt(high)} s), since the caps are "
                                            f"at the device limit.",
                                      {"block": i, "old": value, "new": new, "low": low, "high": high,
                                       "source": source})


def _lengthen_contraction(base: dict[str, Any], rx: Mapping[str, Any], reached: list[int]) -> _Step:
    return _timing_step(base, rx, "on_s", ON_STEP_S, "lengthen_contraction", "Lengthen the contraction")


def _shorten_rest(base: dict[str, Any], rx: Mapping[str, Any], reached: list[int]) -> _Step:
    return _timing_step(base, rx, "off_s", -OFF_STEP_S, "shorten_rest", "Shorten the rest")
