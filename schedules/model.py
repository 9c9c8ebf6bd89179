"""The `homeapp.prescription/1` data model: immutable objects that exist only once valid.

Build them with `schedules.validate.parse_prescription` (or `load_prescription`), which
checks every field against `schedules.limits` and reports every problem at once; the
constructors here trust their input.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Mapping

from .limits import BLOCK_NUMERIC_FIELDS


@dataclass(frozen=True)
class Range:
    """The span a patient may move an adjustable block value within (inclusive)."""

    min: float
    max: float

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max


@dataclass(frozen=True)
class Channel:
    label: str
    max_ma: float


@dataclass(frozen=True)
class Block:
    """One block of a session. Numeric fields hold the current value; `ranges` names the
    fields the patient may adjust and how far (`{"hz": Range(40, 60)}`)."""

    label: str
    minutes: float
    hz: float
    pulse_us: float
    on_s: float
    off_s: float
    ramp_up_s: float
    ramp_down_s: float
    pattern: str = "synchronous"
    ranges: Mapping[str, Range] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def continuous(self) -> bool:
        """No rest: the block stimulates without pause for `minutes`."""
        return self.off_s == 0

    @property
    def cycle_s(self) -> float:
        """One contraction and its rest."""
        return self.on_s + self.off_s

    @property
    def cycles(self) -> int:
        """Whole cycles of an intermittent block (contract.md); 1 for a continuous block."""
        if self.continuous:
            return 1
        return max(1, round(self.minutes * 60 / self.cycle_s))

    @property
    def duration_s(self) -> float:
        """How long the block runs: whole cycles, or `minutes` when continuous."""
        if self.continuous:
            return self.minutes * 60
        return self.cycles * self.cycle_s

    @property
    def contractions(self) -> int:
        """Contractions per channel (a continuous block is one long contraction)."""
        return self.cycles

    def with_value(self, param: str, value: float) -> "Block":
        """A copy with one adjustable field moved. Raises ValueError naming the field,
        the value and the allowed range when the move is not allowed."""
        if param not in BLOCK_NUMERIC_FIELDS:
            raise ValueError(f"{param} is not a numeric block field "
                             f"(allowed: {', '.join(BLOCK_NUMERIC_FIELDS)})")
        rng = self.ranges.get(param)
        if rng is None:
            raise ValueError(f"{self.label}: {param} is fixed by the prescription")
        if not rng.contains(value):
            raise ValueError(f"{self.label}: {param} {value:g} is outside the prescribed "
                             f"range {rng.min:g} to {rng.max:g}")
        return replace(self, **{param: value})


@dataclass(frozen=True)
class Prescription:
    """A validated prescription. `source` keeps the JSON object as read (minus nothing),
    so the signature can be checked over exactly what the clinician signed."""

    id: str
    patient_id: str
    clinician_id: str
    issued: dt.date
    expires: dt.date
    sessions_per_week: int
    max_sessions_per_day: int
    min_hours_between: float
    supervision: str
    channels: tuple[Channel, ...]
    blocks: tuple[Block, ...]
    signature: Mapping[str, Any] | None = None
    format: str = "homeapp.prescription/1"
    #: The first day sessions may run, when the clinician set it later than `issued`
    #: (e.g. after a surgery date); None: from `issued`.
    valid_from: dt.date | None = None
    source: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), compare=False, repr=False)

    @property
    def duration_s(self) -> float:
        return sum(b.duration_s for b in self.blocks)

    @property
    def planned_contractions(self) -> int:
        """Contractions per channel over the whole session."""
        return sum(b.contractions for b in self.blocks)

    @property
    def supervised(self) -> bool:
        return self.supervision == "caregiver"

    @property
    def starts_on(self) -> dt.date:
        """The first day a session may run: `valid_from` when set, else `issued`."""
        return self.valid_from or self.issued

    def active_on(self, day: dt.date) -> bool:
        """Sessions may run on `day`: from `starts_on` through `expires`."""
        return self.starts_on <= day <= self.expires
