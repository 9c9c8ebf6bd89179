"""Human summaries of a validated prescription (`homeapp rx show`, `rx check`)."""
from __future__ import annotations

from .model import Block, Prescription


def _n(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.10g}"


def _minutes(seconds: float) -> str:
    return f"{_n(round(seconds / 60, 1))} min"


def _value(block: Block, name: str, unit: str) -> str:
    """`50 Hz`, or `50 Hz (patient may set 40-60)` when adjustable."""
    text = f"{_n(getattr(block, name))} {unit}".rstrip()
    rng = block.ranges.get(name)
    if rng is not None:
        text += f" (patient may set {_n(rng.min)}-{_n(rng.max)})"
    return text


def signer(rx: Prescription) -> str:
    if not rx.signature:
        return "unsigned"
    return f"signed, key {rx.signature.get('key_id', '?')}"


def one_line(rx: Prescription) -> str:
    """`rx-0001 for P-0042: 2 blocks, 18 min, 1 channel, 5/week, valid 2026-11-20 to 2027-02-20, unsigned`"""
    n_ch = len(rx.channels)
    return (f"{rx.id} for {rx.patient_id}: {len(rx.blocks)} block{'s' * (len(rx.blocks) != 1)}, "
            f"{_minutes(rx.duration_s)}, {n_ch} channel{'s' * (n_ch != 1)}, "
            f"{rx.sessions_per_week}/week, valid {rx.issued} to {rx.expires}, {signer(rx)}")


def summary(rx: Prescription) -> str:
    """A multi-line summary: blocks with timings, caps, schedule, supervision, dates, totals."""
    lines = [
        f"Prescription {rx.id} ({rx.format})",
        f"  patient {rx.patient_id}, clinician {rx.clinician_id}",
        f"  valid {rx.issued} to {rx.expires}",
        f"  schedule: {rx.sessions_per_week} sessions/week, at most {rx.max_sessions_per_day} "
        f"per day, at least {_n(rx.min_hours_between)} h between sessions",
        "  supervision: " + ("a caregiver must unlock each session" if rx.supervised else "none"),
        "  channels:",
    ]
    for i, ch in enumerate(rx.channels):
        lines.append(f"    {i}: {ch.label}, intensity cap {_n(ch.max_ma)} mA")
    lines.append("  blocks:")
    for i, b in enumerate(rx.blocks, 1):
        if b.continuous:
            timing = f"continuous for {_n(b.minutes)} min (one contraction, no rest)"
        else:
            timing = (f"{_n(b.minutes)} min -> {b.cycles} cycles of {_value(b, 'on_s', 's')} on / "
                      f"{_value(b, 'off_s', 's')} off, runs {_minutes(b.duration_s)}")
        lines += [
            f"    {i}. {b.label}: {timing}",
            f"       {_value(b, 'hz', 'Hz')}, {_value(b, 'pulse_us', 'µs')} per phase, "
            f"ramps up {_value(b, 'ramp_up_s', 's')} / down {_value(b, 'ramp_down_s', 's')}, {b.pattern}",
        ]
        if "minutes" in b.ranges:
            lines.append(f"       patient may set the block length "
                         f"{_n(b.ranges['minutes'].min)}-{_n(b.ranges['minutes'].max)} min")
    lines += [
        f"  total: {_minutes(rx.duration_s)}, {rx.planned_contractions} contractions per channel "
        f"(at the prescribed values)",
        f"  signature: {signer(rx)}",
    ]
    return "\n".join(lines)
