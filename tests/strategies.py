"""Hypothesis strategies shared across the suite.

`valid_prescriptions()` draws `homeapp.prescription/1` dicts from the whole valid space
(1 or 2 channels, 1 to 150 Hz, 0 to 5 s ramps, 1 to 60 s contractions, continuous and
intermittent blocks, alternating, patient-adjustable ranges) that `parse_prescription`
accepts. Values lie on small grids (whole Hz and µs, half seconds and minutes) so they
look like what a clinician writes and their sums are exact.

    from tests.strategies import valid_prescriptions
    @given(valid_prescriptions(channels=st.just(2)))
    def test_...(rx_dict): rx = parse_prescription(rx_dict, today=...)
"""
from __future__ import annotations

import datetime as dt
import math

from hypothesis import strategies as st

from schedules.limits import (
    CHANNELS_MAX,
    CHANNELS_MIN,
    DEVICE_LIMITS,
    FORMAT,
    SCHEDULE_LIMITS,
    SESSION_MAX_MINUTES,
    SUPERVISION,
)
from schedules.validate import block_max_duration_s

#: Grid step of each numeric block field.
STEPS = {"minutes": 0.5, "hz": 1, "pulse_us": 1, "on_s": 0.5, "off_s": 0.5,
         "ramp_up_s": 0.5, "ramp_down_s": 0.5}
#: Finer steps (`valid_prescriptions(fine=True)`): fractional frequencies and lengths,
#: where pulse periods do not divide contractions, cycles or blocks.
FINE_STEPS = {"minutes": 0.01, "hz": 0.01, "pulse_us": 1, "on_s": 0.01, "off_s": 0.01,
              "ramp_up_s": 0.01, "ramp_down_s": 0.01}
_LABELS = ("warm-up", "strength", "endurance", "cool-down", "left quadriceps", "right calf")


def _clean(x: float) -> float:
    x = round(x, 9)  # k * 0.01 as the decimal it stands for
    return int(x) if float(x).is_integer() else x


def grid(low: float, high: float, step: float) -> st.SearchStrategy[float]:
    """Multiples of `step` in [low, high] (ints when whole)."""
    return st.integers(math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)).map(
        lambda k: _clean(k * step))


@st.composite
def _span(draw, low: float, high: float, step: float, adjustable: bool) -> tuple[float, float, bool]:
    """(lo, hi, is_adjustable): the extremes a field can take inside [low, high]."""
    lo = draw(grid(low, high, step))
    if adjustable and draw(st.booleans()):
        return lo, draw(grid(lo, high, step)), True
    return lo, lo, False


@st.composite
def _block(draw, *, n_channels: int, adjustable: bool, patterns, max_block_minutes: float,
           steps: dict[str, float] = STEPS) -> tuple[dict, float]:
    """A valid block and the longest it can run (seconds)."""
    L = DEVICE_LIMITS
    STEPS = steps  # noqa: N806 - the grid of this draw
    pattern = draw(patterns) if n_channels == 2 else "synchronous"
    spans: dict[str, tuple[float, float, bool]] = {}
    spans["on_s"] = on = draw(_span(L["on_s"].low, L["on_s"].high, STEPS["on_s"], adjustable))
    # Ramps fit in the shortest contraction the patient can choose.
    spans["ramp_up_s"] = up = draw(_span(0, min(L["ramp_up_s"].high, on[0]), STEPS["ramp_up_s"], adjustable))
    spans["ramp_down_s"] = draw(_span(0, min(L["ramp_down_s"].high, round(on[0] - up[1], 9)),
                                      STEPS["ramp_down_s"], adjustable))
    # Alternating: the rest is at least as long as the longest contraction.
    off_low = on[1] if pattern == "alternating" else L["off_s"].low
    spans["off_s"] = off = draw(_span(off_low, L["off_s"].high, STEPS["off_s"], adjustable))
    spans["minutes"] = draw(_span(L["minutes"].low, min(L["minutes"].high, max_block_minutes),
                                  STEPS["minutes"], adjustable))
    for name in ("hz", "pulse_us"):
        spans[name] = draw(_span(L[name].low, L[name].high, STEPS[name], adjustable))

    block: dict = {}
    if draw(st.booleans()):
        block["label"] = draw(st.sampled_from(_LABELS))
    for name in ("minutes", "hz", "pulse_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s"):
        lo, hi, adj = spans[name]
        value = draw(grid(lo, hi, STEPS[name])) if adj else lo
        block[name] = {"value": value, "min": lo, "max": hi} if adj else value
    if pattern != "synchronous" or draw(st.booleans()):
        block["pattern"] = pattern
    longest = block_max_duration_s(minutes_max=spans["minutes"][1],
                                   cycle_min_s=on[0] + off[0], cycle_max_s=on[1] + off[1],
                                   can_be_continuous=off[0] == 0)
    return block, longest


@st.composite
def valid_prescriptions(draw, *, channels: st.SearchStrategy[int] = st.integers(CHANNELS_MIN, CHANNELS_MAX),
                        max_blocks: int = 3, adjustable: bool = True, max_block_minutes: float = 60,
                        patterns: st.SearchStrategy[str] = st.sampled_from(("synchronous", "alternating")),
                        today: dt.date | None = None, fine: bool = False) -> dict:
    """Valid prescription dicts, in force on `today` (default: the day of the draw).
    `max_block_minutes` keeps sessions short for tests that run them (a block may still run
    one whole cycle, up to 3 minutes, when that is longer). `fine` draws values on
    `FINE_STEPS` (hundredths of Hz and seconds) instead of the clinician-like grid."""
    today = today or dt.date.today()
    n_channels = draw(channels)
    chans = []
    for i in range(n_channels):
        ch: dict = {"max_ma": draw(grid(DEVICE_LIMITS["max_ma"].low, DEVICE_LIMITS["max_ma"].high, 0.5))}
        if draw(st.booleans()):
            ch = {"label": f"channel {i}", **ch}
        chans.append(ch)

    budget_s = SESSION_MAX_MINUTES * 60
    blocks = []
    for _ in range(draw(st.integers(1, max_blocks))):
        block, longest = draw(_block(n_channels=n_channels, adjustable=adjustable, patterns=patterns,
                                     max_block_minutes=max_block_minutes,
                                     steps=FINE_STEPS if fine else STEPS))
        # The first block always fits (at most 60 min plus half a 3-minute cycle).
        if longest > budget_s:
            break
        budget_s -= longest
        blocks.append(block)

    issued = today - dt.timedelta(days=draw(st.integers(0, 60)))
    expires = today + dt.timedelta(days=draw(st.integers(0, 400)))
    S = SCHEDULE_LIMITS
    per_day = draw(st.integers(int(S["max_sessions_per_day"].low), int(S["max_sessions_per_day"].high)))
    return {
        "format": FORMAT,
        "id": f"rx-{draw(st.integers(1, 9999)):04d}",
        "patient_id": "P-0042",
        "clinician_id": "C-0007",
        "issued": issued.isoformat(),
        "expires": expires.isoformat(),
        "sessions_per_week": draw(st.integers(int(S["sessions_per_week"].low),
                                              min(int(S["sessions_per_week"].high), 7 * per_day))),
        "max_sessions_per_day": per_day,
        "min_hours_between": draw(grid(S["min_hours_between"].low, S["min_hours_between"].high, 0.5)),
        "supervision": draw(st.sampled_from(SUPERVISION)),
        "channels": chans,
        "blocks": blocks,
    }
