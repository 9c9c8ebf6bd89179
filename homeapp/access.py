"""Who may open caregiver and clinic mode: each role's PIN, checked against its hash in the
configuration, with the lockout after repeated wrong PINs (homeapp/pin_lockout.py, kept in
the log so a restart does not lift it)."""
from __future__ import annotations

import time
from typing import Any, Mapping

from homeapp.pin_lockout import PIN_ATTEMPTS, PIN_LOCKOUT_S, PinLockout

#: On the simulated board with no PIN configured, this PIN opens caregiver and clinic mode
#: (the screen says so). A real board refuses to start without hashed PINs.
DEMO_PIN = "0000"
ROLES = ("caregiver", "clinician")


class RoleAccess:
    """Checks a role's PIN. `pin_hashes`: role -> hash (None: not configured); `store`:
    the log that keeps lockouts (None: a device whose log could not be opened, where the
    count lives as long as the app); `simulated`: the demo PIN opens a role with no hash."""

    def __init__(self, *, pin_hashes: Mapping[str, str | None], store: Any = None,
                 simulated: bool = False) -> None:
        self.pin_hashes = dict(pin_hashes)
        self.simulated = simulated
        self.lockout = PinLockout(store) if store is not None else None
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}

    def configured(self, role: str) -> bool:
        return bool(self.pin_hashes.get(role))

    def lockout_s(self, role: str) -> float:
        """Seconds until `role` may try a PIN again (0 when it may now)."""
        if self.lockout is None:
            return max(0.0, self._locked_until.get(role, 0.0) - time.monotonic())
        return self.lockout.locked_for_s(role)

    def verify(self, role: str, pin: str) -> bool:
        """Checks the role's PIN; after PIN_ATTEMPTS wrong ones in a row the role is locked
        for PIN_LOCKOUT_S (every try refused unchecked), and the log says so."""
        if self.lockout_s(role) > 0:
            return False
        right = self._matches(role, pin)
        if self.lockout is not None:
            self.lockout.record(role, right=right)
            return right
        failures = 0 if right else self._failures.get(role, 0) + 1
        self._failures[role] = failures % PIN_ATTEMPTS
        if failures == PIN_ATTEMPTS:
            self._locked_until[role] = time.monotonic() + PIN_LOCKOUT_S
        return right

    def _matches(self, role: str, pin: str) -> bool:
        hashed = self.pin_hashes.get(role)
        if not hashed:
            return self.simulated and pin == DEMO_PIN
        from homeapp.pinhash import verify_pin
        try:
            return bool(verify_pin(pin, hashed))
        except Exception:
            return False
