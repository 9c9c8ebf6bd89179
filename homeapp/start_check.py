"""Why a session may not start now, as Home shows it before the patient touches START.

Home asks the engine's own check (`Engine.start_refusals`) on an engine that is never
started, so Home and the engine never disagree (each schedule refusal carries the rule it
comes from, `schedules.adherence.schedule_blocks`, so it is said in the patient's
language). One thing is added for the screen: a log that cannot take a new session
(`Store.write_problem`) is a refusal too. No electrode contact is not one here: the pads
go on in Preparation, which checks them.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import store as store_module
from .state import Reason

if TYPE_CHECKING:  # types only
    from schedules.model import Prescription

    from .device import Device
    from .engine import Engine
    from .store import Store

log = logging.getLogger(__name__)

#: Refusal kinds Home leaves to Preparation.
LEFT_TO_PREPARATION = ("contact",)


class StartCheck:
    """The start refusals of the current prescription on `device` (its board, log, clock
    and trust store), through one idle engine per prescription."""

    def __init__(self, *, device: Device) -> None:
        self.device = device
        self._engine: Engine | None = None

    def _engine_for(self, rx: Prescription) -> Engine:
        if self._engine is None or self._engine.rx is not rx:
            # the log's wall clock, looked up at each call (a test may hold it)
            # never started: it does not take the e-stop button's callback either
            self._engine = self.device.new_engine(rx, wall_clock=lambda: store_module.now_utc(),
                                                  estop_at_once=False)
        return self._engine

    def refusals(self, rx: Prescription | None, *, caregiver_unlocked: bool = False) -> list[Reason]:
        """Every reason a session of `rx` may not start now (empty: it may)."""
        if rx is None:
            return []
        engine = self._engine_for(rx)
        reasons = [r for r in engine.start_refusals(caregiver_unlocked=caregiver_unlocked)
                   if r.kind not in LEFT_TO_PREPARATION]
        problem = _log_problem(self.device.store)
        if problem:
            reasons.append(Reason(f"the log cannot be written: {problem}", "log", why=problem))
        return reasons


def _log_problem(store: Store) -> str | None:
    try:
        return store.write_problem()
    except Exception as e:  # a log that cannot even be asked cannot take a session
        log.exception("checking the log")
        return str(e)
