"""What the engine shows the world: immutable snapshots the UI renders and tests read.

The UI never reaches into the engine: it calls the engine's methods and renders the
latest `EngineState`. Texts meant for a person are carried as a `kind` plus parameters,
so the UI can say them in the patient's language.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


class Reason(str):
    """Why a session may not start: the English sentence (what the log records) that also
    carries a `kind` and its `params`, so the UI can say it in the patient's language.

    Kinds: expired, not_yet_valid, signature, schedule, caregiver, board, estop, contact,
    cannot_run."""

    kind: str
    params: dict[str, Any]

    def __new__(cls, text: str, kind: str, **params: Any) -> "Reason":
        obj = super().__new__(cls, text)
        obj.kind = kind
        obj.params = params
        return obj


class Phase(str, enum.Enum):
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
    ESTOP = "estop"              # the e-stop was pressed: session aborted, needs acknowledging
    LEAD_OFF = "lead_off"        # an electrode came loose: paused until it is back
    FAULT = "fault"              # the board or its connection failed: session aborted
    WATCHDOG = "watchdog"        # the engine's own loop stalled


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    channel: int | None = None
    detail: str = ""             # technical detail for the log and the clinician
    needs_ack: bool = False      # the whole-screen alert stays until acknowledged


@dataclass(frozen=True)
class Notice:
    """A short message beside the controls, e.g. why + did nothing at the cap."""

    kind: str                    # "at_cap", "refused", "contact_missing", "param_range", ...
    params: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""               # the English text (also what the log records)


@dataclass(frozen=True)
class ChannelState:
    index: int
    label: str
    cap_ma: float                # the clinician's cap: the + button stops here
    target_ma: float             # what the patient asked for
    set_ma: float                # what the board is set to now (rises at a limited rate)
    previous_ma: float           # the level before the last pause or electrode loss
    contact: bool                # electrode contact as the board last reported it
    contracting: bool            # pulses are planned on this channel right now
    contractions_done: int
    peak_ma: float = 0.0         # the highest set-point of this session so far


@dataclass(frozen=True)
class EngineState:
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
