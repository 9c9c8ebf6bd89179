"""`homeapp session run` end to end: the patient's pause and stop and an electrode coming
off leave no pulse unbalanced (the pulse under way finishes its second phase, at most one
pulse later); only the e-stop and the watchdog cut at once. Judged from the trace."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules.limits import INTERPHASE_GAP_US
from tests.sessionkit import run_session, rx_dict
from tests.test_fuzz_properties import short_prescriptions

US = 1_000_000
#: The longest pulse the device plays: two 450 µs phases and the gap between them.
LONGEST_PULSE_US = 2 * 450 + INTERPHASE_GAP_US


def _charge(trace, channel: int, t0_us: int, t1_us: int) -> float:
    return sum(ma * (min(s1, t1_us) - max(s0, t0_us))
               for s0, s1, ma in trace.current_segments(channel) if s0 < t1_us and s1 > t0_us)


def unbalanced_pulses(trace, channels, near_us=()) -> list:
    """Pulses whose phases differ (anywhere), or that deliver a net charge (those under
    way at one of the instants `near_us`, where the output was stopped)."""
    bad = []
    for ch in channels:
        for p in trace.pulses(ch):
            if p.a_us != p.b_us:
                bad.append((ch, p))
            elif any(p.start_us <= t < p.end_us for t in near_us) and _charge(trace, ch, p.start_us, p.end_us):
                bad.append((ch, p))
    return bad


def test_a_session_paused_in_leg_a_at_150_hz_finishes_the_pulse(tmp_path, capsys):
    # 150 Hz, 450 µs, continuous, 30 mA: a pause at 10.0003 s, 280 µs into leg A
    block = {"label": "tone", "minutes": 0.5, "hz": 150, "pulse_us": 450, "on_s": 10,
             "off_s": 0, "ramp_up_s": 0, "ramp_down_s": 0, "pattern": "synchronous"}
    run = run_session(tmp_path, rx_dict(channels=[40.0], blocks=[block]), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 30},
        {"t": 10.0003, "do": "pause"},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    tr = run.trace_obj()
    at = 10_000_300
    during = [p for p in tr.pulses(0) if p.start_us <= at < p.end_us]
    assert len(during) == 1 and during[0].a_us == during[0].b_us == 450
    assert _charge(tr, 0, during[0].start_us, during[0].end_us) == 0
    cut = next(t for t, v in tr.signal("enable") if t >= at and v == 0)
    assert cut == during[0].end_us  # the stop came right after that pulse's second phase
    assert unbalanced_pulses(tr, [0]) == []


def test_the_e_stop_still_cuts_at_once(tmp_path, capsys):
    block = {"label": "tone", "minutes": 0.5, "hz": 150, "pulse_us": 450, "on_s": 10,
             "off_s": 0, "ramp_up_s": 0, "ramp_down_s": 0, "pattern": "synchronous"}
    run = run_session(tmp_path, rx_dict(channels=[40.0], blocks=[block]), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 30},
        {"t": 10.0003, "do": "estop"},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    tr = run.trace_obj()
    assert tr.value_at("enable", 10_000_300) == 0  # the board's own wiring, at the press


@st.composite
def stop_scripts(draw, channels: int) -> list[dict]:
    """Intensity at the start, then pauses, electrode losses and a final stop at random
    microseconds (each a chance to land inside a pulse)."""
    acts = [{"t": 0, "do": "intensity", "channel": ch, "ma": draw(st.integers(5, 60))}
            for ch in range(channels)]
    t = 0.0
    for _ in range(draw(st.integers(1, 4))):
        t += draw(st.integers(1_000_000, 6_000_000)) / US
        if draw(st.booleans()):
            acts += [{"t": t, "do": "pause"}, {"t": t + 0.5, "do": "resume"}]
        else:
            ch = draw(st.integers(0, channels - 1))
            acts += [{"t": t, "do": "lead_off", "channel": ch},
                     {"t": t + 0.3, "do": "lead_on", "channel": ch}, {"t": t + 0.5, "do": "resume"}]
        t += 0.5
    acts.append({"t": t + draw(st.integers(1_000_000, 4_000_000)) / US, "do": "stop"})
    return acts


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data(), rx=short_prescriptions())
def test_no_unbalanced_pulse_after_any_pause_stop_or_lead_off(data, rx):
    channels = len(rx["channels"])
    acts = data.draw(stop_scripts(channels))
    with tempfile.TemporaryDirectory() as tmp:
        run = run_session(Path(tmp), rx, acts)
        assert run.code == 0
        tr = run.trace_obj()
        stops = [round(a["t"] * US) for a in acts if a["do"] in ("pause", "stop", "lead_off")]
        assert unbalanced_pulses(tr, range(channels), near_us=stops) == []
        for t in stops:  # and each of them stopped the output within one pulse
            cut = [u for u, v in tr.signal("enable") if v == 0 and u >= t]
            assert not cut or tr.value_at("enable", t + LONGEST_PULSE_US) == 0
