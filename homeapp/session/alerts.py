"""The whole-screen alert and the notice beside the controls: which one is up, when it
goes, and the English text of each notice (what the log also records).

The UI says them in the patient's language from their `kind` and parameters
(`homeapp.state.AlertKind`, `NoticeKind`)."""
from __future__ import annotations

from homeapp.state import Alert, AlertKind, Notice, NoticeKind


class AlertDesk:
    """At most one alert and one notice at a time."""

    def __init__(self) -> None:
        self.alert: Alert | None = None
        self.notice: Notice | None = None

    def raise_alert(self, kind: AlertKind, *, detail: str, channel: int | None = None,
                    needs_ack: bool = False) -> None:
        """Show a whole-screen alert (it replaces any other)."""
        self.alert = Alert(kind, channel=channel, detail=detail, needs_ack=needs_ack)

    @property
    def needs_ack(self) -> bool:
        """An alert is up that stays until OK is touched."""
        return self.alert is not None and self.alert.needs_ack

    def is_up(self, *kinds: AlertKind) -> bool:
        """An alert of one of `kinds` is up."""
        return self.alert is not None and self.alert.kind in kinds

    def clear(self, *kinds: AlertKind) -> None:
        """Take down the alert if it is of one of `kinds`."""
        if self.is_up(*kinds):
            self.alert = None

    def session_ended(self) -> None:
        """A loose-electrode or watchdog alert ends with the session; one that needs OK stays."""
        if self.alert is not None and not self.alert.needs_ack:
            self.alert = None

    def acknowledged(self) -> None:
        """OK touched: an alert that waited for it goes, and so does the notice."""
        if self.needs_ack:
            self.alert = None
        self.notice = None

    def say(self, notice: Notice | None) -> None:
        """Show `notice` beside the controls (None: take the notice down)."""
        self.notice = notice


# The notices, each with its English text (also what the log records).

def not_running(phase: str) -> Notice:
    """Intensity asked for while the session does not run."""
    return Notice(NoticeKind.NOT_RUNNING, {"phase": phase},
                  f"intensity can be changed only while the session runs (it is {phase})")


def at_cap(channel: int, label: str, max_ma: float) -> Notice:
    """The patient asked for more than the prescription's `max_ma` on a channel."""
    return Notice(NoticeKind.AT_CAP, {"channel": channel, "label": label, "max_ma": max_ma},
                  f"{max_ma:g} mA is the most your prescription allows on {label}")


def param_range(block_index: int, param: str, text: str) -> Notice:
    """An adjustment outside the prescription's range (or one the device cannot play)."""
    return Notice(NoticeKind.PARAM_RANGE, {"block": block_index, "param": param}, text)


def alert_open() -> Notice:
    """Resume asked for while an alert waits for OK."""
    return Notice(NoticeKind.ALERT_OPEN, {}, "acknowledge the alert first")


def contact_missing(labels: str) -> Notice:
    """Resume asked for while an electrode has no contact."""
    return Notice(NoticeKind.CONTACT_MISSING, {"labels": labels},
                  f"reattach the electrode on {labels} to continue")


def estop_pressed() -> Notice:
    """OK touched on the e-stop alert while the button is still pressed."""
    return Notice(NoticeKind.ESTOP_PRESSED, {},
                  "release the emergency stop button (turn it) first, then touch OK")
