"""`make bench`: every figure the issues name, printed beside its goal, never asserted.

Each `tests/bench/bench_*.py` module defines `figures() -> list[Figure]`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str          # what was measured, e.g. "simulator speed, 2 ch 100 Hz, virtual time"
    value: float
    unit: str          # "x real time", "ms", "MB", ...
    goal: str          # e.g. ">= 100", "<= 10"; "" when there is none
    note: str = ""

    def meets_goal(self) -> bool | None:
        if not self.goal:
            return None
        op, _, num = self.goal.partition(" ")
        target = float(num)
        return self.value >= target if op == ">=" else self.value <= target
