"""The device limits: the one table that every fence reads.

Any prescription beyond these is refused, whatever its signature (contract.md). The UI,
the engine and the driver all clamp to the same numbers, so they live here and only here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """An inclusive range with its unit and a name a person understands."""

    low: float
    high: float
    unit: str
    what: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"{_num(self.low)} to {_num(self.high)} {self.unit}".rstrip()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


#: Per-block and per-channel limits, keyed by the field name of the prescription format.
DEVICE_LIMITS: dict[str, Limit] = {
    "hz": Limit(1, 150, "Hz", "frequency"),
    "pulse_us": Limit(50, 450, "µs", "pulse width per phase"),
    "on_s": Limit(1, 60, "s", "contraction time"),
    "off_s": Limit(0, 120, "s", "rest time"),
    "ramp_up_s": Limit(0, 5, "s", "ramp-up time"),
    "ramp_down_s": Limit(0, 5, "s", "ramp-down time"),
    "minutes": Limit(0.5, 60, "min", "block length"),
    "max_ma": Limit(0, 100, "mA", "amplitude cap"),
}

#: Numeric block fields (each may be patient-adjustable as {value, min, max}).
BLOCK_NUMERIC_FIELDS = ("minutes", "hz", "pulse_us", "on_s", "off_s", "ramp_up_s", "ramp_down_s")

SESSION_MAX_MINUTES = 90.0
CHANNELS_MIN, CHANNELS_MAX = 1, 2
PATTERNS = ("synchronous", "alternating")
SUPERVISION = ("none", "caregiver")
FORMAT = "homeapp.prescription/1"

#: Schedule fields: not device limits but sanity ranges a prescription must respect.
SCHEDULE_LIMITS: dict[str, Limit] = {
    "sessions_per_week": Limit(1, 21, "", "sessions per week"),
    "max_sessions_per_day": Limit(1, 3, "", "sessions per day"),
    "min_hours_between": Limit(0, 24, "h", "hours between sessions"),
}

#: Interphase gap of every biphasic pulse: short, fixed, the same on every board.
INTERPHASE_GAP_US = 30

#: The patient raises intensity in steps of this size ...
INTENSITY_STEP_MA = 1.0
#: ... and the delivered set-point rises no faster than this, however fast they press.
INTENSITY_RISE_MA_PER_S = 4.0
#: A "return to previous level" after a pause or electrode loss ramps at this rate.
INTENSITY_RESTORE_MA_PER_S = 2.0
