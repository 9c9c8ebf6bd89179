"""What the screens need from the rest of the project, in one object: `Services`
(homeapp/services.py), which composes the typed services (the active prescription, the
session log, PIN access, USB files, the clinician keys, the clinic link) over the device.
The screens call its methods and never touch the board, the store or a file themselves."""
from __future__ import annotations

from homeapp.access import DEMO_PIN
from homeapp.active_prescription import DEMO_PRESET, demo_prescription_dict
from homeapp.pin_lockout import PIN_ATTEMPTS, PIN_LOCKOUT_S
from homeapp.services import Services
from homeapp.session_log import PAD_WARN_SESSIONS, Warning_
from homeapp.usb import USB_ROOTS

__all__ = ["Services", "Warning_", "DEMO_PIN", "DEMO_PRESET", "PIN_ATTEMPTS", "PIN_LOCKOUT_S",
           "PAD_WARN_SESSIONS", "USB_ROOTS", "demo_prescription_dict"]
