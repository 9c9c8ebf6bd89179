"""Clinician templates: each preset is a valid prescription with a title and a short
rationale the UI can show. The clinician picks one, adjusts it and signs it.

The frequencies follow issue 2: type 1 fibres about 33 Hz, type 2a about 66 Hz, type 2b
about 110 Hz, 50 Hz reaching all three; circulation 8-9 Hz increases it, 13 Hz (a tetanic type 1
contraction) restricts it; muscle tone is reduced by 1-2 Hz twitches or 100 Hz static
contractions, thought to act like manual therapies (stretch, pressure, dry needling); atrophied muscle shorter contractions,
longer rests, 10-20 minute sessions; quadriceps after knee surgery 50 Hz, 250-400 µs,
10 s on, 20-50 s off, 2 s ramps. Every preset is an intermittent block programme (no
continuous blocks), so each contraction has a rest after it.
"""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

from .limits import FORMAT


@dataclass(frozen=True)
class Preset:
    name: str        # kebab-case, what `homeapp rx new --preset` takes
    title: str       # a few words for a list
    rationale: str   # one sentence the UI shows beside the title
    channels: tuple[Mapping[str, Any], ...]
    blocks: tuple[Mapping[str, Any], ...]
    sessions_per_week: int = 5
    max_sessions_per_day: int = 1
    min_hours_between: float = 4


def _block(label: str, *, minutes: Any, hz: Any, pulse_us: Any, on_s: Any, off_s: Any,
           ramp_up_s: Any, ramp_down_s: Any, pattern: str = "synchronous") -> dict[str, Any]:
    return {"label": label, "minutes": minutes, "hz": hz, "pulse_us": pulse_us, "on_s": on_s,
            "off_s": off_s, "ramp_up_s": ramp_up_s, "ramp_down_s": ramp_down_s, "pattern": pattern}


def _adj(value: float, lo: float, hi: float) -> dict[str, float]:
    """A value the patient may move within [lo, hi]."""
    return {"value": value, "min": lo, "max": hi}


# A short low-frequency warm-up before strength work, as in contract.md's example.
_WARM_UP = _block("warm-up", minutes=3, hz=8, pulse_us=250, on_s=5, off_s=6,
                  ramp_up_s=1, ramp_down_s=1)
_ONE_CHANNEL = ({"label": "target muscle", "max_ma": 60},)

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("fibre-type-1", "Slow fibres (type 1), 33 Hz",
           "About 33 Hz recruits mainly type 1 (slow, fatigue-resistant) fibres: endurance "
           "work with long contractions and equally long rests.",
           _ONE_CHANNEL,
           (_block("endurance", minutes=20, hz=33, pulse_us=300, on_s=10, off_s=10,
                   ramp_up_s=2, ramp_down_s=1),)),
    Preset("fibre-type-2a", "Fast fatigue-resistant fibres (type 2a), 66 Hz",
           "About 66 Hz targets type 2a fibres (fast, fatigue-resistant): moderate "
           "contractions with rests three times as long.",
           _ONE_CHANNEL,
           (_WARM_UP, _block("type 2a", minutes=15, hz=66, pulse_us=300, on_s=6, off_s=18,
                             ramp_up_s=1.5, ramp_down_s=1))),
    Preset("fibre-type-2b", "Fast fibres (type 2b), 110 Hz",
           "About 110 Hz targets type 2b fibres (fast, quick to tire): short strong "
           "contractions; 36 s rests, longer than the usual 20 s, because these fibres recover slowly.",
           _ONE_CHANNEL,
           (_WARM_UP, _block("type 2b", minutes=12, hz=110, pulse_us=250, on_s=4, off_s=36,
                             ramp_up_s=1, ramp_down_s=1))),
    Preset("fibre-all-types", "All fibre types, 50 Hz",
           "50 Hz reaches type 1, 2a and 2b fibres alike: a general strengthening programme.",
           _ONE_CHANNEL,
           (_WARM_UP, _block("strength", minutes=15, hz=50, pulse_us=300, on_s=8, off_s=20,
                             ramp_up_s=2, ramp_down_s=1))),
    Preset("circulation", "Circulation, 8-9 Hz",
           "8-9 Hz gives the greatest venous return per contraction: rhythmic pumping "
           "contractions that help blood flow back to the heart.",
           _ONE_CHANNEL,
           (_block("circulation", minutes=20, hz=_adj(8, 8, 9), pulse_us=250, on_s=5, off_s=6,
                   ramp_up_s=1, ramp_down_s=1),)),
    Preset("restrict-circulation", "Restrict circulation, 13 Hz",
           "13 Hz gives a tetanic contraction of type 1 fibres that restricts circulation in "
           "the area (the opposite of the 8-9 Hz circulation preset).",
           _ONE_CHANNEL,
           (_block("circulation", minutes=20, hz=13, pulse_us=250, on_s=6, off_s=10,
                   ramp_up_s=1.5, ramp_down_s=1.5),)),
    Preset("reduce-tone-twitch", "Reduce muscle tone, 1-2 Hz twitches",
           "1-2 Hz twitch contractions reduce muscle tone; the effect is thought to resemble "
           "manual therapies (stretch, pressure, dry needling).",
           _ONE_CHANNEL,
           (_block("twitches", minutes=15, hz=_adj(2, 1, 2), pulse_us=300, on_s=10, off_s=10,
                   ramp_up_s=0, ramp_down_s=0),)),
    Preset("reduce-tone-static", "Reduce muscle tone, 100 Hz static contractions",
           "100 Hz static (tetanic) contractions reduce muscle tone; the effect is thought to "
           "resemble manual therapies (stretch, pressure, dry needling).",
           _ONE_CHANNEL,
           (_WARM_UP, _block("static holds", minutes=10, hz=100, pulse_us=250, on_s=5, off_s=20,
                             ramp_up_s=1, ramp_down_s=1))),
    Preset("pain-relief-al-tens", "Pain relief, 2 Hz twitches (AL-TENS)",
           "Like acupuncture-like TENS: 2 Hz visible twitches with the electrodes on the "
           "muscle's motor points, 10 s on and 10 s rest, for pain relief.",
           ({"label": "motor point", "max_ma": 60},),
           (_block("pain relief", minutes=20, hz=_adj(2, 1, 4), pulse_us=250, on_s=10,
                   off_s=10, ramp_up_s=0, ramp_down_s=0),)),
    Preset("atrophied-muscle", "Atrophied muscle",
           "An atrophied muscle tires quickly: shorter contractions (4-10 s), longer rests "
           "(6-20 s) and sessions of 10-20 minutes.",
           _ONE_CHANNEL,
           (_block("gentle strength", minutes=_adj(15, 10, 20), hz=35, pulse_us=250,
                   on_s=_adj(5, 4, 10), off_s=_adj(15, 6, 20), ramp_up_s=1, ramp_down_s=1),)),
    Preset("quadriceps-after-knee-surgery", "Quadriceps strengthening after knee surgery",
           "Published protocol after knee surgery: 50 Hz, 250-400 µs, 10 s contractions; "
           "20-50 s rests, longer than the usual 20 s, because the protocol uses them.",
           ({"label": "quadriceps", "max_ma": 80},),
           (_WARM_UP, _block("quadriceps strength", minutes=15, hz=50, pulse_us=_adj(300, 250, 400),
                             on_s=10, off_s=_adj(30, 20, 50), ramp_up_s=2, ramp_down_s=2))),
)}


# Old names kept so existing prescription scripts keep working; each resolves to the
# renamed preset, whose title and rationale say what the clinical source says.
ALIASES: dict[str, str] = {
    "reduced-circulation": "restrict-circulation",
    "muscle-tone-twitch": "reduce-tone-twitch",
    "muscle-tone-static": "reduce-tone-static",
}


# The clinical source's general guidance; a preset outside it says why in its rationale.
GUIDANCE_ON_S = (4, 10)
GUIDANCE_OFF_S = (6, 20)
GUIDANCE_SESSION_MIN = (10, 20)


def guidance_departures(preset: Preset) -> set[str]:
    """Which of "contraction", "rest", "session" the preset takes outside the source's
    guidance, at any value the patient may choose (adjustable ranges included)."""
    def span(value: Any) -> tuple[float, float]:
        return (value["min"], value["max"]) if isinstance(value, Mapping) else (value, value)

    def outside(value: Any, bounds: tuple[float, float]) -> bool:
        lo, hi = span(value)
        return lo < bounds[0] or hi > bounds[1]

    found = set()
    for block in preset.blocks:
        if outside(block["on_s"], GUIDANCE_ON_S):
            found.add("contraction")
        if outside(block["off_s"], GUIDANCE_OFF_S):
            found.add("rest")
    total = [sum(span(b["minutes"])[i] for b in preset.blocks) for i in (0, 1)]
    if total[0] < GUIDANCE_SESSION_MIN[0] or total[1] > GUIDANCE_SESSION_MIN[1]:
        found.add("session")
    return found


def preset_names() -> list[str]:
    return list(PRESETS)


def resolve_name(name: str) -> str:
    """The preset name that `name` means: itself, or the new name of an old alias."""
    return ALIASES.get(name, name)


def alias_note(name: str) -> str | None:
    """For an old alias, a sentence saying which preset it now means; else None."""
    if name in ALIASES:
        return f"preset {name!r} is an old name: it now means {ALIASES[name]!r}"
    return None


def get_preset(name: str) -> Preset:
    """The preset (old alias names resolve to the new preset), or KeyError whose message
    lists the known names."""
    try:
        return PRESETS[resolve_name(name)]
    except KeyError:
        raise KeyError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def make_prescription(preset_name: str, *, patient_id: str, clinician_id: str,
                      issued: dt.date, expires: dt.date, rx_id: str | None = None,
                      supervision: str = "none") -> dict[str, Any]:
    """A full prescription dict from a preset, ready to validate, edit and sign."""
    preset = get_preset(preset_name)
    return {
        "format": FORMAT,
        "id": rx_id or f"rx-{preset.name}-{issued:%Y%m%d}",
        "patient_id": patient_id,
        "clinician_id": clinician_id,
        "issued": issued.isoformat(),
        "expires": expires.isoformat(),
        "sessions_per_week": preset.sessions_per_week,
        "max_sessions_per_day": preset.max_sessions_per_day,
        "min_hours_between": preset.min_hours_between,
        "supervision": supervision,
        # Deep copies: the caller may edit the dict without touching the preset.
        "channels": copy.deepcopy([dict(c) for c in preset.channels]),
        "blocks": copy.deepcopy([dict(b) for b in preset.blocks]),
    }
