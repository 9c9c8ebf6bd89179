"""What the engine shows the world: immutable snapshots the UI renders and tests read.

The UI never reaches into the engine: it calls the engine's methods and renders the
latest `EngineState`. Texts meant for a person are carried as a `kind` plus parameters,
so the UI can say them in the patient's language.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


class EventKind(enum.StrEnum):
    """What the session log records (`events.kind`; docs/contract.md, "Log export").

    str-valued: a member is its log string (`EventKind.LEAD_OFF == "lead_off"`)."""

    START = "start"
    BLOCK = "block"
    INTENSITY = "intensity"
    REFUSED = "refused"                 # a request beyond the prescription, and why
    SET = "set"                         # a patient adjustment of a block value
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    ESTOP = "estop"
    ESTOP_RELEASE = "estop_release"
    LEAD_OFF = "lead_off"
    LEAD_ON = "lead_on"
    FAULT = "fault"
    WATCHDOG = "watchdog"
    ACKNOWLEDGE = "acknowledge"
    RESTART_ALLOWED = "restart_allowed"
    REPORT_SKIPPED = "report_skipped"
    END = "end"


class DeviceEventKind(enum.StrEnum):
    """What the log records outside a session, from the engine."""

    START_REFUSED = "start_refused"


class RefusalKind(enum.StrEnum):
    """Why a session may not start (`Reason.kind`)."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    SIGNATURE = "signature"
    SCHEDULE = "schedule"
    CAREGIVER = "caregiver"
    BOARD = "board"
    ESTOP = "estop"
    CONTACT = "contact"
    CANNOT_RUN = "cannot_run"
    LOG = "log"              # Home's own check: the log cannot take a new session
    #: another prescription was installed (a sync) after this session was prepared
    PRESCRIPTION_CHANGED = "prescription_changed"


class NoticeKind(enum.StrEnum):
    """The short messages beside the controls (`Notice.kind`)."""

    AT_CAP = "at_cap"
    REFUSED = "refused"
    AT_ZERO = "at_zero"
    CONTACT_MISSING = "contact_missing"
    NOT_RUNNING = "not_running"
    ALERT_OPEN = "alert_open"
    PARAM_RANGE = "param_range"
    ESTOP_PRESSED = "estop_pressed"


class WindowState(enum.StrEnum):
    """Where a channel is in the current step's contraction window."""

    PENDING = "pending"   # not begun (or cut short and to be replayed)
    ACTIVE = "active"     # the board is playing its pulses
    DONE = "done"         # over for this step


class Reason(str):
    """Why a session may not start: the English sentence (what the log records) that also
    carries a `kind` (a `RefusalKind`) and its `params`, so the UI can say it in the
    patient's language."""

    kind: str
    params: dict[str, Any]

    def __new__(cls, text: str, kind: str, **params: Any) -> "Reason":
        obj = super().__new__(cls, text)
        obj.kind = RefusalKind(kind) if kind in RefusalKind._value2member_map_ else kind
        obj.params = params
        return obj


class Phase(str, enum.Enum):
    """Where the session is; the ended ones are also its end status in the log."""

    IDLE = "idle"            # nothing loaded
    READY = "ready"          # a prescription is loaded and may start
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"      # by the patient or caregiver
    ABORTED = "aborted"      # e-stop, fault, electrode lost and not recovered

    @property
    def ended(self) -> bool:
        return self in (Phase.COMPLETED, Phase.STOPPED, Phase.ABORTED)


class AlertKind(str, enum.Enum):
    """The whole-screen alerts."""

    ESTOP = "estop"              # the e-stop was pressed: session aborted, needs acknowledging
    LEAD_OFF = "lead_off"        # an electrode came loose: paused until it is back
    FAULT = "fault"              # the board or its connection failed: session aborted
    WATCHDOG = "watchdog"        # the engine's own loop stalled


@dataclass(frozen=True)
class Alert:
    """A whole-screen alert: what happened, on which channel, whether OK must be touched."""

    kind: AlertKind
    channel: int | None = None
    detail: str = ""             # technical detail for the log and the clinician
    needs_ack: bool = False      # the whole-screen alert stays until acknowledged


@dataclass(frozen=True)
class Notice:
    """A short message beside the controls, e.g. why + did nothing at the cap."""

    kind: str                    # a NoticeKind: "at_cap", "contact_missing", "param_range", ...
    params: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""               # the English text (also what the log records)


@dataclass(frozen=True)
class ChannelState:
    """One channel as the screen shows it."""

    index: int
    label: str
    max_ma: float                # the prescription's max_ma: the + button stops here
    target_ma: float             # what the patient asked for
    set_ma: float                # what the board is set to now (rises at a limited rate)
    previous_ma: float           # the level before the last pause or electrode loss
    contact: bool                # electrode contact as the board last reported it
    contracting: bool            # pulses are planned on this channel right now
    contractions_done: int
    peak_ma: float = 0.0         # the highest set-point of this session so far


@dataclass(frozen=True)
class EngineState:
    """The whole session as the screen shows it (a snapshot: never changes)."""

    phase: Phase
    session_id: str | None
    prescription_id: str | None
    block_index: int             # 0-based; -1 before the first block
    block_label: str
    blocks_total: int
    cycle_index: int             # 0-based within the block
    cycles_total: int
    contracting: bool            # CONTRACT (True) or REST (False) on screen
    phase_left_s: float          # countdown of the current contraction or rest
    elapsed_s: float             # stimulation time done (pauses not counted)
    total_s: float               # the planned session length
    channels: tuple[ChannelState, ...]
    alert: Alert | None = None
    notice: Notice | None = None
    end_reason: str = ""         # why the session ended (for the After screen)

    @property
    def left_s(self) -> float:
        return max(0.0, self.total_s - self.elapsed_s)
