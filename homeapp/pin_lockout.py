"""Caregiver and clinician PIN lockouts, kept in the device's log so that a restart or a
power cut does not lift them.

After `attempts` wrong PINs in a row a role is locked for `lockout_s`: every try in that
time is refused unchecked. The count of wrong PINs and the end of a lockout live in the
store's `pin_lockouts` table; a lockout is logged as a `pin_lockout` device event. The
time left is capped at `lockout_s`, so a wall clock set back cannot stretch a lockout.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

from homeapp import store as store_module
from homeapp.store import Store, StoreError

log = logging.getLogger(__name__)

#: Wrong PINs in a row before a role is locked out, and for how long: a PIN of 4 to 8
#: digits must not be guessable by trying, at a device that may stand in a shared home.
PIN_ATTEMPTS = 5
PIN_LOCKOUT_S = 300.0


class PinLockout:
    """Counts wrong PINs per role and locks a role out, persistently in `store`."""

    def __init__(self, store: Store, *, attempts: int = PIN_ATTEMPTS, lockout_s: float = PIN_LOCKOUT_S,
                 wall_clock: Callable[[], dt.datetime] | None = None) -> None:
        self.store = store
        self.attempts = attempts
        self.lockout_s = lockout_s
        # looked up at each call, so a test can set the store's wall clock
        self._wall_clock = wall_clock or (lambda: store_module.now_utc())

    def locked_for_s(self, role: str) -> float:
        """Seconds until `role` may try a PIN again (0 when it may now)."""
        _, locked_until = self.store.pin_state(role)
        if locked_until is None:
            return 0.0
        left_s = (locked_until - self._wall_clock()).total_seconds()
        return min(self.lockout_s, max(0.0, left_s))

    def record(self, role: str, *, right: bool) -> None:
        """Count one try of `role`'s PIN: a right one clears the count, the `attempts`-th
        wrong one in a row locks the role for `lockout_s` and logs it."""
        if right:
            self.store.clear_pin_state(role)
            return
        wrong_pins = self.store.pin_state(role)[0] + 1
        if wrong_pins < self.attempts:
            self.store.record_pin_state(role, wrong_pins=wrong_pins)
            return
        locked_until = self._wall_clock() + dt.timedelta(seconds=self.lockout_s)
        self.store.record_pin_state(role, wrong_pins=0, locked_until=locked_until)
        try:
            self.store.add_device_event(kind="pin_lockout",
                                        detail={"role": role, "wrong_pins": wrong_pins,
                                                "locked_s": self.lockout_s})
        except StoreError:
            log.exception("could not log the PIN lockout")
