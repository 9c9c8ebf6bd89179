"""Whether a session may start now, and every reason it may not.

The prescription's dates (days where the patient lives), its signature against the
trust store, the schedule against the log's earlier sessions, whether the device can
play the program, a caregiver's unlock, and the board itself (answers, e-stop released,
every electrode in contact), and whether the prescription is still the device's active
one (a sync may install another while Preparation is open). Each reason is a `homeapp.state.Reason`: the English
sentence the log records, with a `RefusalKind` and parameters for the screen.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Sequence

from homeapp.ports import Board, BoardFault, Store
from homeapp.state import DeviceEventKind, Reason, RefusalKind
from schedules.adherence import counted_starts, schedule_blocks
from schedules.model import Prescription
from schedules.signing import SIGNATURE_FIELD, SignatureError, TrustStore, verify_prescription

#: What the patient reads (and the log keeps) when the device cannot play a program.
CANNOT_RUN = "this device cannot run this program: please call your clinic"


class StartPolicy:
    """The start refusals of one prescription on one board.

    `program_error()` says why the program cannot be played (None: it can);
    `poll_contacts()` reads every channel's contact (and lets the engine keep it)."""

    def __init__(self, *, rx: Prescription, store: Store, board: Board, trust: TrustStore | None,
                 allow_unsigned: bool, wall_clock: Callable[[], dt.datetime],
                 program_error: Callable[[], Exception | None],
                 poll_contacts: Callable[[], Sequence[bool]],
                 channel_labels: Sequence[str],
                 still_active: Callable[[], bool] | None = None) -> None:
        self.rx = rx
        self.store = store
        self.board = board
        self.trust = trust
        self.allow_unsigned = allow_unsigned
        self.wall_clock = wall_clock
        self.program_error = program_error
        self.poll_contacts = poll_contacts
        self.labels = list(channel_labels)
        self.still_active = still_active

    def refusals(self, *, caregiver_unlocked: bool = False) -> list[Reason]:
        """Every reason this session may not start now (empty: it may)."""
        rx = self.rx
        reasons: list[Reason] = self.replaced_refusals()
        now_wall = self.wall_clock()
        # The clinician's dates are days where the patient lives, as for the schedule.
        today = now_wall.astimezone().date()
        active = rx.active_on(today)
        if not active:
            if today > rx.expires:
                reasons.append(Reason(f"the prescription {rx.id} expired on "
                                      f"{rx.expires.isoformat()}; ask your clinician for a new one",
                                      RefusalKind.EXPIRED, date=rx.expires))
            else:
                reasons.append(Reason(f"the prescription {rx.id} is valid only from "
                                      f"{rx.starts_on.isoformat()}", RefusalKind.NOT_YET_VALID,
                                      date=rx.starts_on))
        if not self.allow_unsigned:
            reasons.extend(self.signature_refusals())
        elif SIGNATURE_FIELD in rx.source and self.trust is not None:
            # --allow-unsigned admits an unsigned prescription (simulation, tests), never a
            # signed one that shows it was changed after signing. A key this trust store
            # does not hold cannot tell either way, so it counts as unsigned.
            reasons.extend(r for r in self.signature_refusals()
                           if not str(r.params.get("why", "")).startswith("signed by an unknown key"))
        if active:  # else the schedule would only say the dates again
            reasons.extend(self.schedule_refusals(now_wall))
        reasons.extend(self.program_refusals())
        if rx.supervised and not caregiver_unlocked:
            reasons.append(Reason("this prescription needs a caregiver: the caregiver must unlock "
                                  "the session", RefusalKind.CAREGIVER))
        try:
            estop = bool(self.board.estop_pressed())
            contacts = self.poll_contacts()
        except BoardFault as e:
            reasons.append(Reason(f"the stimulator does not answer ({e}); stimulation is not possible",
                                  RefusalKind.BOARD, error=str(e)))
        else:
            if estop:
                reasons.append(Reason("the emergency stop button is pressed: release it (turn it) first",
                                      RefusalKind.ESTOP))
            for index, (label, ok) in enumerate(zip(self.labels, contacts)):
                if not ok:
                    reasons.append(Reason(f"no electrode contact on channel {index + 1} ({label}): "
                                          f"check the pads and the cable", RefusalKind.CONTACT,
                                          channel=index, label=label))
        return reasons

    def replaced_refusals(self) -> list[Reason]:
        """The device installed another prescription after this one was prepared: this
        session must not play the old one (checked again under the log's session lock)."""
        if self.still_active is None or self.still_active():
            return []
        return [Reason(f"another prescription was installed after this session of {self.rx.id} "
                       "was prepared: go back and start the new program",
                       RefusalKind.PRESCRIPTION_CHANGED, prescription_id=self.rx.id)]

    def program_refusals(self) -> list[Reason]:
        """The program cannot be played (found while planning or compiling it)."""
        error = self.program_error()
        if error is None:
            return []
        return [Reason(f"{CANNOT_RUN} ({type(error).__name__}: {error})", RefusalKind.CANNOT_RUN,
                       error=str(error))]

    def signature_refusals(self) -> list[Reason]:
        if self.trust is None:
            return [Reason("no trust store of clinician keys is installed, so the prescription "
                           "cannot be verified", RefusalKind.SIGNATURE, why="no trust store")]
        try:
            verify_prescription(dict(self.rx.source), self.trust)
        except SignatureError as e:
            return [Reason(f"the prescription's signature is not accepted: {e}", RefusalKind.SIGNATURE,
                           why=e.reason)]
        return []

    def schedule_refusals(self, now_wall: dt.datetime) -> list[Reason]:
        starts = counted_starts(self.earlier_sessions())
        # each with the rule it comes from, so a screen can say it in the patient's words
        return [Reason(b.reason, RefusalKind.SCHEDULE, rule=b.rule, at=b.at, count=b.count, allowed=b.allowed)
                for b in schedule_blocks(self.rx, starts, now=now_wall)]

    def earlier_sessions(self) -> list[dict[str, Any]]:
        """This prescription's sessions in the log, oldest first (id, times, status)."""
        return self.store.session_spans(self.rx.id)

    def record_refused(self, reasons: Sequence[str]) -> None:
        """The refused start, as a device event of the log."""
        self.store.add_device_event(kind=str(DeviceEventKind.START_REFUSED),
                                    detail={"prescription_id": self.rx.id, "reasons": list(reasons)},
                                    at=self.wall_clock())
