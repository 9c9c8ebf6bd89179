"""The one table of what the engine's kinds say to the patient, in their language.

The engine speaks in kinds (`homeapp.state`: `RefusalKind` why a session may not start,
`NoticeKind` a short message beside the controls, `AlertKind` a whole-screen alert,
`EventKind` what the log recorded) plus parameters, and keeps the English sentence for
the log. Every screen that shows one of them asks here: `refusal_text`, `notice_text`,
`alert_texts`, `event_text`. A kind missing from its table falls back to the engine's
English (tests/test_kind_texts.py fails while any kind lacks a text).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from homeapp.state import AlertKind, EventKind, NoticeKind, RefusalKind

from .i18n import _, f_, ma_text

Params = Mapping[str, Any]


# ------------------------------------------------------------------ refusals (Preparation)
def _day(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value or "")


def _expired(params: Params, svc) -> str:
    rx = svc.rx if svc is not None else None
    day = rx.expires if rx is not None else params.get("date")
    return f_("Your program ended on {date}. Ask your clinic for a new one.", date=_day(day))


def _not_yet_valid(params: Params, svc) -> str:
    rx = svc.rx if svc is not None else None
    day = params.get("date") or (rx.starts_on if rx else None)
    return f_("Your program starts on {date}. No session before then.", date=_day(day))


def _when_text(at: Any) -> str:
    """A time the schedule allows: the time today, else the date and time."""
    import datetime as dt
    if at is None:
        return ""
    local = at.astimezone()
    if local.date() == dt.datetime.now().astimezone().date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def _schedule(params: Params, svc) -> str:
    # Home's start check names the rule (homeapp/start_check.py); the engine's own
    # refusal in Preparation does not, and the next allowed time is asked instead.
    rule, at = params.get("rule"), params.get("at")
    if rule == "day":
        return f_("Today's sessions are done ({count} of {allowed}). The next one may start tomorrow.",
                  count=params.get("count"), allowed=params.get("allowed"))
    if rule == "week":
        return f_("This week's sessions are done ({count} of {allowed}). The next one may start on "
                  "Monday {date}.", count=params.get("count"), allowed=params.get("allowed"),
                  date=at.date().isoformat() if at else "")
    if rule == "min_hours":
        return f_("Too soon after your last session. The next one may start at {time}.",
                  time=_when_text(at))
    if rule is not None or svc is None:
        return _("Your program's schedule does not allow a session now.")
    due = svc.due_text_params()
    if due.get("when") == "later":
        return f_("Next session from {at}", at=due["at"])
    return _("No more sessions allowed now.")


#: RefusalKind -> text(params, services)
REFUSAL_TEXTS: dict[RefusalKind, Callable[[Params, Any], str]] = {
    RefusalKind.EXPIRED: _expired,
    RefusalKind.NOT_YET_VALID: _not_yet_valid,
    RefusalKind.SCHEDULE: _schedule,
    RefusalKind.SIGNATURE: lambda p, svc: _("The program's signature is not accepted. Call your clinic."),
    RefusalKind.BOARD: lambda p, svc: _("The stimulator does not answer. Call your clinic."),
    RefusalKind.ESTOP: lambda p, svc: _("The emergency stop button is pressed. Turn it to release it."),
    RefusalKind.CONTACT: lambda p, svc: _("No contact: press the pad firmly onto the skin."),
    RefusalKind.CAREGIVER: lambda p, svc: _("A caregiver must unlock this session."),
    RefusalKind.CANNOT_RUN: lambda p, svc: _("This device cannot run this program. Please call your clinic."),
    RefusalKind.LOG: lambda p, svc: _("The trainer cannot write its log (its memory may be full). Call your clinic."),
    RefusalKind.PRESCRIPTION_CHANGED: lambda p, svc: _("A new program has arrived. Press Cancel to see it."),
}


def refusal_text(reason: str, svc=None) -> str:
    """A reason the engine gives for not starting (a `homeapp.state.Reason`), in the
    patient's language; anything without a known kind is shown as it is."""
    text = REFUSAL_TEXTS.get(getattr(reason, "kind", None))
    return text(getattr(reason, "params", {}), svc) if text is not None else reason


# ------------------------------------------------------------------ notices (Session)
def _cap(params: Params) -> Any:
    # "max_ma" (the prescription's name); "cap" and "limit": refusals as the log words them
    for key in ("max_ma", "cap", "limit"):
        if key in params:
            return params[key]
    return None


def _at_cap(params: Params) -> str:
    cap = _cap(params)
    if cap is None:
        return _("This is the most your clinic allows.")
    return f_("{cap} mA is the most your clinic allows.", cap=ma_text(cap))


def _refused(params: Params) -> str:
    cap = _cap(params)
    if cap is None:
        return _("Not allowed by your prescription.")
    return f_("Not allowed: your clinic's limit is {cap} mA.", cap=ma_text(cap))


#: NoticeKind -> text(params)
NOTICE_TEXTS: dict[NoticeKind, Callable[[Params], str]] = {
    NoticeKind.AT_CAP: _at_cap,
    NoticeKind.REFUSED: _refused,
    NoticeKind.AT_ZERO: lambda p: _("Intensity is already at zero."),
    NoticeKind.CONTACT_MISSING: lambda p: f_("Put the electrode back on {labels} to continue.",
                                             labels=p.get("labels", "")),
    NoticeKind.NOT_RUNNING: lambda p: _("Intensity can be changed only while the session runs."),
    NoticeKind.ALERT_OPEN: lambda p: _("Touch OK on the alert first."),
    NoticeKind.PARAM_RANGE: lambda p: _("That setting is outside your prescription."),
    NoticeKind.ESTOP_PRESSED: lambda p: _("The stop button is still pressed. Turn it to release it, then touch OK."),
}


def notice_text(notice) -> str:
    """The patient-language text of an engine notice (falls back to the engine's English)."""
    if notice is None:
        return ""
    text = NOTICE_TEXTS.get(notice.kind)
    return text(dict(notice.params)) if text is not None else notice.text


# ------------------------------------------------------------------ alerts (whole screen)
def _stopped_steps() -> list[str]:
    return [_("1. Take the pads off."), _("2. Touch OK."), _("3. If it happens again, call your clinic.")]


#: AlertKind -> (title, what happened, steps)(channel number, channel label)
ALERT_TEXTS: dict[AlertKind, Callable[[int, str], tuple[str, str, list[str]]]] = {
    AlertKind.ESTOP: lambda n, label: (
        _("EMERGENCY STOP"), _("The stop button was pressed. Stimulation is off."),
        [_("1. Take the pads off the skin if anything hurts."),
         _("2. Turn the red stop button to release it."),
         _("3. Touch OK.")]),
    AlertKind.LEAD_OFF: lambda n, label: (
        _("ELECTRODE LOOSE"),
        f_("Channel {n} ({label}) lost contact. Stimulation is paused and set to zero.", n=n, label=label),
        [_("1. Press the pad firmly onto the skin, or put on a new pad."),
         _("2. Check that the cable is plugged in."),
         _("3. Then touch Continue.")]),
    AlertKind.WATCHDOG: lambda n, label: (
        _("STIMULATOR STOPPED"), _("The program stopped answering. Stimulation is off."), _stopped_steps()),
    AlertKind.FAULT: lambda n, label: (
        _("STIMULATOR STOPPED"), _("The stimulator reported a fault. Stimulation is off."), _stopped_steps()),
}


def alert_texts(alert, channels) -> tuple[str, str, list[str]]:
    """(title, what happened, steps) for an alert, in the current language."""
    label = ""
    if alert.channel is not None and alert.channel < len(channels):
        label = channels[alert.channel].label
    text = ALERT_TEXTS.get(alert.kind, ALERT_TEXTS[AlertKind.FAULT])
    return text((alert.channel or 0) + 1, label)


# ------------------------------------------------------------------ log events (history)
#: EventKind -> text(channel number or "") for the incidents a caregiver reads.
EVENT_TEXTS: dict[EventKind, Callable[[Any], str]] = {
    EventKind.ESTOP: lambda n: _("Emergency stop pressed"),
    EventKind.LEAD_OFF: lambda n: f_("Electrode {n} lost contact", n=n),
    EventKind.FAULT: lambda n: _("Stimulator fault"),
    EventKind.WATCHDOG: lambda n: _("Program stopped answering"),
    EventKind.REFUSED: lambda n: f_("Request refused on channel {n} (above the limit)", n=n),
}


def event_text(kind: str, detail: Mapping[str, Any]) -> str:
    """A logged incident as the caregiver reads it (the kind itself when it has no text)."""
    ch = detail.get("channel")
    if kind == EventKind.REFUSED and not isinstance(ch, int):
        return _("Request refused (outside the prescription)")
    text = EVENT_TEXTS.get(kind)
    return text((ch + 1) if isinstance(ch, int) else "") if text is not None else kind
