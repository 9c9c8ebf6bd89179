"""The board driver against the simulated pigpiod (real pigpio client, real protocol),
read back from the board's trace: what the patient's electrodes would have seen."""
from __future__ import annotations

import datetime as dt
import math
import os
import signal
import time

import pigpio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw import pigpio_limits as L
from hw.driver import Stimulator, install_sigterm_handler
from hw.exc import BoardFault, ConnectionLost, NotArmed, PigpioError, WaveformError
from homeapp.plan import continuous_segments
from hw.waveform import CycleSpec, compile_cycle
from schedules.presets import make_prescription, preset_names
from schedules.validate import parse_prescription
from tests.strategies import valid_prescriptions

START_US = L.CHAIN_START_DELAY_US  # a chain's first pulse comes 20 µs after wave_chain
TODAY = dt.date(2026, 11, 21)


@pytest.fixture
def stim(sim, pin_map, virtual_clock):
    board, server = sim
    s = Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                   max_ma=(60.0, 40.0))
    yield s
    try:
        s.close()
    except BoardFault:
        pass


def advance(clock, stim, t_end: float, step: float = 0.1) -> None:
    """Move virtual time to t_end, toggling the heartbeat as the engine would."""
    while clock.now() < t_end - 1e-12:
        clock.advance_to(min(t_end, clock.now() + step))
        stim.heartbeat()


def play_cycles(stim, clock, cycle, n: int) -> float:
    """n cycles back to back, each started at the exact end of the previous one."""
    t0 = clock.now()
    for i in range(n):
        stim.arm(cycle)
        stim.start()
        advance(clock, stim, t0 + (i + 1) * cycle.duration_us / 1e6)
    return t0


def check_trace(board, cycles, t0_us: int, ma=(None, None)) -> int:
    """Every pulse of the played cycles (list of (t_start_us, cycle)) against the plan:
    start, both phase widths, gap, enabled, amplitude; nothing else on the legs."""
    tr = board.trace()
    count = 0
    for ch in (0, 1):
        want = []
        for t_start, cycle in cycles:
            if ch < cycle.spec.channels:
                want += [(t_start + START_US + p.start_us, p.width_us) for p in cycle.planned_pulses(ch)]
        got = [p for p in tr.pulses(ch) if p.start_us >= t0_us]
        assert len(got) == len(want), f"channel {ch}: {len(got)} pulses, planned {len(want)}"
        for p, (start, width) in zip(got, want):
            assert (p.start_us, p.a_us, p.gap_us, p.b_us) == (start, width, 30, width)
            assert p.enabled
            if ma[ch] is not None:
                assert p.ma == pytest.approx(ma[ch], abs=1e-3)
        count += len(got)
        # never both legs high: the current is only ever +ma or -ma, never from both
        for t0, t1, val in tr.current_segments(ch):
            assert t1 > t0
    return count


# ----------------------------------------------------------------------------- pulses
def test_presets_play_as_prescribed(sim, stim, virtual_clock):
    board, _ = sim
    for name in preset_names():
        rx = parse_prescription(make_prescription(name, patient_id="P", clinician_id="C",
                                                  issued=TODAY, expires=TODAY + dt.timedelta(days=30)),
                                today=TODAY)
        n_ch = len(rx.channels)
        for block in rx.blocks:
            spec = CycleSpec.from_block(block, channels=n_ch)
            if block.continuous:
                spec = continuous_segments(block, n_ch)[0][0]
            cycle = compile_cycle(spec, stim.pins)
            stim.set_amplitude(0, 10)
            t_start = round(virtual_clock.now() * 1e6)
            play_cycles(stim, virtual_clock, cycle, 2)
            check_trace(board, [(t_start, cycle), (t_start + cycle.duration_us, cycle)],
                        t_start, ma=(10 * 4096 // 100 * 100 / 4096, None))
            stim.stop()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])
@given(rx=valid_prescriptions(today=TODAY, max_blocks=1), ends=st.booleans())
def test_random_valid_prescriptions_play_as_prescribed(sim, stim, virtual_clock, rx, ends):
    board, _ = sim
    p = parse_prescription(rx, today=TODAY)
    block = p.blocks[0]
    for param, rng in block.ranges.items():  # a patient may move it to either end
        block = block.with_value(param, rng.max if ends else rng.min)
    n_ch = len(p.channels)
    spec = CycleSpec.from_block(block, channels=n_ch)
    if block.continuous:
        spec = continuous_segments(block, n_ch)[0][0]
    cycle = compile_cycle(spec, stim.pins)
    stim.stop()
    t_start = round(virtual_clock.now() * 1e6)
    play_cycles(stim, virtual_clock, cycle, 2)
    n = check_trace(board, [(t_start, cycle), (t_start + cycle.duration_us, cycle)], t_start)
    assert n == 2 * spec.channels * len(cycle.widths[0])
    # contraction count on the trace: bursts of pulses separated by the rest
    if not block.continuous:
        tr = board.trace()
        starts = [q.start_us for q in tr.pulses(0) if q.start_us >= t_start]
        gaps = sum(1 for a, b in zip(starts, starts[1:]) if b - a > 1.5e6 / spec.hz)
        assert gaps + 1 == 2


def test_alternating_two_channels_heaviest(sim, stim, virtual_clock):
    board, _ = sim
    spec = CycleSpec(hz=150, pulse_us=450, on_s=60, off_s=60, ramp_up_s=5, ramp_down_s=5,
                     pattern="alternating", channels=2)
    cycle = compile_cycle(spec, stim.pins)
    stim.arm(cycle)
    stim.set_amplitude(0, 20)
    stim.set_amplitude(1, 30)
    stim.start()
    advance(virtual_clock, stim, cycle.duration_us / 1e6)
    check_trace(board, [(0, cycle)], 0)
    tr = board.trace()
    p0, p1 = tr.pulses(0), tr.pulses(1)
    assert p0[-1].end_us < p1[0].start_us  # channel 1 contracts after channel 0
    assert p1[0].start_us == START_US + 60_000_000
    assert len(p0) == len(p1) == 9000


def test_cycles_follow_each_other_exactly(sim, stim, virtual_clock):
    """No drift across cycles: pulse k of cycle n lands on n*D + t_k, for 149 Hz (the
    worst grid) too; re-arming the same cycle costs only the chain."""
    board, _ = sim
    spec = CycleSpec(hz=149, pulse_us=300, on_s=2, off_s=1.5, ramp_up_s=0.5, ramp_down_s=0.5)
    cycle = compile_cycle(spec, stim.pins)
    stim.arm(cycle)
    sent0 = stim.socket_bytes[0]
    stim.arm(cycle)  # the same waves again: nothing to send
    assert stim.socket_bytes[0] == sent0
    play_cycles(stim, virtual_clock, cycle, 4)
    D = cycle.duration_us
    check_trace(board, [(i * D, cycle) for i in range(4)], 0)
    starts = [p.start_us for p in board.trace().pulses(0)]
    per = len(starts) // 4
    for i in range(4):
        assert [s - i * D for s in starts[i * per:(i + 1) * per]] == starts[:per]


def test_continuous_block_segments_are_seamless(sim, stim, virtual_clock):
    from schedules.model import Block
    board, _ = sim
    block = Block(label="c", minutes=0.5, hz=150, pulse_us=250, on_s=10, off_s=0,
                  ramp_up_s=2, ramp_down_s=2)
    t = 0.0
    for spec, repeat in continuous_segments(block, 1, segment_s=5):
        cycle = compile_cycle(spec, stim.pins)
        for _ in range(repeat):
            stim.arm(cycle)
            stim.start()
            t += cycle.duration_us / 1e6
            advance(virtual_clock, stim, t)
    starts = [p.start_us for p in board.trace().pulses(0)]
    assert len(starts) == 30 * 150
    # one 20 µs chain-start delay per segment: the grid restarts exactly each segment
    seg_pulses = 5 * 150
    for k, s in enumerate(starts):
        seg = k // seg_pulses
        assert s == START_US + round(k * 1e6 / 150)  # every segment starts on the grid
        del seg


# ----------------------------------------------------------------------------- stopping
def _into_a_pulse(stim, clock, board):
    spec = CycleSpec(hz=1, pulse_us=450, on_s=5, off_s=5, ramp_up_s=0, ramp_down_s=0, channels=2)
    stim.arm(compile_cycle(spec, stim.pins))
    stim.set_amplitude(0, 30)
    stim.set_amplitude(1, 30)
    stim.start()
    t_start = clock.now()
    advance(clock, stim, t_start + 1.0)
    clock.advance_to(t_start + 1.000_200)  # 180 µs into leg A of the second pulse
    assert board.trace().value_at("ch0.a", round(clock.now() * 1e6)) == 1
    return round(clock.now() * 1e6)


def _all_safe_after(board, t_us: int) -> None:
    tr = board.trace()
    for name in ("ch0.a", "ch0.b", "ch1.a", "ch1.b", "enable"):
        assert tr.value_at(name, t_us) == 0, name
        assert all(v == 0 for t, v in tr.signal(name) if t >= t_us), name
    for name in ("ch0.ma", "ch1.ma"):
        assert tr.value_at(name, t_us) == 0, name
    for ch in (0, 1):
        assert all(t1 <= t_us for _t0, t1, _v in tr.current_segments(ch))


def test_stop_mid_pulse_leaves_both_legs_low(sim, stim, virtual_clock):
    board, _ = sim
    t = _into_a_pulse(stim, virtual_clock, board)
    stim.stop()
    virtual_clock.advance_to(virtual_clock.now() + 3)
    _all_safe_after(board, t)
    assert not stim.busy()
    # the truncated pulse: leg A cut, never a B phase after it
    last = board.trace().pulses(0)[-1]
    assert last.start_us == t - 180 and last.a_us == 180 and last.b_us == 0


def test_context_exit_on_exception_is_a_safe_stop(sim, pin_map, virtual_clock):
    board, server = sim
    with pytest.raises(RuntimeError):
        with Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                        max_ma=(60, 60)) as stim:
            t = _into_a_pulse(stim, virtual_clock, board)
            raise RuntimeError("the engine crashed")
    virtual_clock.advance_to(virtual_clock.now() + 3)
    _all_safe_after(board, t)
    with pytest.raises(NotArmed):
        stim.start()


def test_sigterm_handler_stops_and_exits(sim, stim, virtual_clock):
    board, _ = sim
    t = _into_a_pulse(stim, virtual_clock, board)
    previous = install_sigterm_handler(stim)
    try:
        with pytest.raises(SystemExit) as exit_info:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs in this thread at the next bytecode
        assert exit_info.value.code == 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    virtual_clock.advance_to(virtual_clock.now() + 3)
    _all_safe_after(board, t)


#: Run in a child process: a handler that hangs must fail this test, not hang the suite.
SIGTERM_INSIDE_A_CALL = """
import signal, sys, threading, time
from hw.clock import VirtualClock
from hw.driver import Stimulator, install_sigterm_handler
from hw.pins import load_pin_map
from hw.sim import SimBoard, SimServer
from tests.test_driver import _all_safe_after, _into_a_pulse

clock = VirtualClock()
board = SimBoard(pins=load_pin_map(), clock=clock)
server = SimServer(board, host="127.0.0.1", port=0)
server.start()
stim = Stimulator(pins=board.pins, clock=clock, host="127.0.0.1", port=server.port, max_ma=(60.0, 40.0))
t = _into_a_pulse(stim, clock, board)
install_sigterm_handler(stim)
server.reply_delay_s = 0.4              # this heartbeat's reply comes late ...

def terminate():
    server.reply_delay_s = 0.0          # ... the emergency connection's replies do not
    signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
threading.Timer(0.1, terminate).start()
try:
    stim.heartbeat()                    # blocked in pigpio's recv, holding its socket lock
    time.sleep(5)
except SystemExit as e:
    clock.advance_to(clock.now() + 3)
    _all_safe_after(board, t)
    print("exit", e.code, "all safe")
"""


def test_sigterm_inside_a_pigpio_call_still_stops(tmp_path):
    """SIGTERM lands while the main thread waits for pigpiod's reply, holding the pigpio
    client's socket lock: the handler must not wait on that lock (it would wait forever,
    the output on); it stops over its own connection and exits."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        done = subprocess.run([sys.executable, "-c", SIGTERM_INSIDE_A_CALL], cwd=root,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the SIGTERM handler hung inside an interrupted pigpio call")
    assert done.stdout.strip() == "exit 143 all safe", done.stderr


def test_estop_cuts_output_and_reports(sim, stim, virtual_clock):
    board, _ = sim
    pressed = []
    stim.on_estop = lambda: pressed.append(True)
    t = _into_a_pulse(stim, virtual_clock, board)
    board.press_estop()
    deadline = time.monotonic() + 5
    while not pressed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pressed, "on_estop was not called"
    assert stim.estop_pressed()
    virtual_clock.advance_to(virtual_clock.now() + 3)
    tr = board.trace()
    assert tr.value_at("enable", t) == 0  # the board cut it in hardware at once
    assert tr.value_at("ch0.ma", round(virtual_clock.now() * 1e6)) == 0
    assert all(v == 0 for name in ("ch0.a", "ch0.b", "ch1.a", "ch1.b")
               for v in [tr.value_at(name, round(virtual_clock.now() * 1e6))])
    with pytest.raises(BoardFault, match="e-stop"):
        stim.start()
    board.release_estop()
    assert not stim.estop_pressed()


# ----------------------------------------------------------------------------- amplitude
def test_the_device_limit_holds_whatever_caps_the_driver_is_given(sim, pin_map, virtual_clock):
    """The device's amplitude limit is clamped in one place on the driver side (its caps),
    so no cap a caller passes, at construction or later, lets the DAC go above it."""
    from schedules.limits import DEVICE_LIMITS
    board, server = sim
    limit = DEVICE_LIMITS["max_ma"].high
    with Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                    max_ma=(1e6, float("inf"))) as stim:
        assert stim.max_ma == (limit, 0.0)         # inf is no number: no current at all
        assert stim.set_max_ma((500.0, 500.0)) == (limit, 0.0)
        virtual_clock.advance_to(0.01)
        assert stim.set_amplitude(0, 1e9) <= limit
        assert board.amplitude_ma(0) <= limit


def test_request_above_cap_never_reaches_the_dac(sim, stim, virtual_clock):
    board, _ = sim
    requests = [(0, 95, 60), (1, 1e9, 40), (0, -5, 0), (0, float("nan"), 0),
                (0, float("inf"), 60), (1, 40.01, 40), (0, 59.99, 59.99), (0, "80", 60)]
    for i, (ch, ask, limit) in enumerate(requests):
        virtual_clock.advance_to(0.01 * (i + 1))  # one trace row per request
        got = stim.set_amplitude(ch, ask)
        assert 0 <= got <= limit
    assert stim.set_max_ma((100, 100)) == (60, 40)  # never raised
    virtual_clock.advance_to(0.2)
    assert stim.set_max_ma((30, 40)) == (30, 40)
    virtual_clock.advance_to(0.5)
    assert board.amplitude_ma(0) <= 30  # a set-point above the new cap came down at once
    assert stim.set_amplitude(0, 50) <= 30
    virtual_clock.advance_to(1.0)
    tr = board.trace()
    ch0 = [v for _, v in tr.signal("ch0.ma")]
    ch1 = [v for _, v in tr.signal("ch1.ma")]
    assert len(ch0) >= 5 and len(ch1) >= 2  # the DAC did change, many times
    assert max(ch0) <= 60 and max(ch1) <= 40
    assert max(ch0) > 59  # it did go up to the cap
    assert max(v for t, v in tr.signal("ch0.ma") if t >= 200_000) <= 30
    with pytest.raises(ValueError):
        stim.set_amplitude(2, 10)


def test_set_amplitude_returns_what_the_dac_got(sim, stim, virtual_clock):
    board, _ = sim
    got = stim.set_amplitude(0, 33.3)
    virtual_clock.advance_to(0.1)
    assert board.amplitude_ma(0) == pytest.approx(got, abs=1e-3)
    assert got <= 33.3 and 33.3 - got < 100 / 4096


def test_contact_reads_the_adc(sim, stim):
    board, _ = sim
    board.set_lead(0, True)
    board.set_lead(1, False)
    assert stim.contact(0) is True
    assert stim.contact(1) is False


# ----------------------------------------------------------------------------- arming
def test_start_without_arm_raises(stim):
    with pytest.raises(NotArmed):
        stim.start()


def test_forged_waves_are_refused(stim):
    spec = CycleSpec(hz=50, pulse_us=200, on_s=2, off_s=2, ramp_up_s=0, ramp_down_s=0)
    cycle = compile_cycle(spec, stim.pins)
    import dataclasses
    w = cycle.waves[0]
    a = 1 << stim.pins.ch0_a
    b = 1 << stim.pins.ch0_b
    too_long = dataclasses.replace(w, pulses=((a, 0, 300), (0, a, 30), (b, 0, 300), (0, b, 19370)))
    both = dataclasses.replace(w, pulses=((a | b, 0, 100), (0, a | b, 19900)))
    unbalanced = dataclasses.replace(w, pulses=((a, 0, 200), (0, a, 30), (b, 0, 100), (0, b, 19670)))
    foreign = dataclasses.replace(w, pulses=((1 << stim.pins.enable, 0, 100), (0, 0, 19900)))
    for bad in (too_long, both, unbalanced, foreign):
        with pytest.raises(WaveformError):
            stim.arm(dataclasses.replace(cycle, waves=(bad,)))
    # channel 1's legs are not armed by a one-channel cycle
    c1 = 1 << stim.pins.ch1_a
    other = dataclasses.replace(w, pulses=((c1, 0, 100), (0, c1, 19900)))
    with pytest.raises(WaveformError):
        stim.arm(dataclasses.replace(cycle, waves=(other,)))


def test_start_during_a_contraction_is_a_fault(sim, stim, virtual_clock):
    board, _ = sim
    t = _into_a_pulse(stim, virtual_clock, board)
    with pytest.raises(BoardFault):
        stim.start()
    virtual_clock.advance_to(virtual_clock.now() + 2)
    _all_safe_after(board, t)


# ----------------------------------------------------------------------------- faults
def test_dropped_connection_is_a_fault_and_nothing_restarts(sim, stim, virtual_clock):
    board, server = sim
    spec = CycleSpec(hz=50, pulse_us=200, on_s=4, off_s=2, ramp_up_s=1, ramp_down_s=1)
    stim.arm(compile_cycle(spec, stim.pins))
    stim.start()
    virtual_clock.advance_to(0.5)
    server.drop_connections()
    with pytest.raises(ConnectionLost):
        stim.heartbeat()
    assert isinstance(stim.faulted, BoardFault)
    with pytest.raises(BoardFault):
        stim.start()
    with pytest.raises(BoardFault):
        stim.set_amplitude(0, 10)
    # the board's watchdog, not the driver, is what cuts the output after the client died
    virtual_clock.advance_to(1.0)
    assert board.trace().value_at("enable", 1_000_000) == 0


def test_error_reply_is_a_fault_after_a_safe_stop(sim, stim, virtual_clock):
    board, _ = sim
    t = _into_a_pulse(stim, virtual_clock, board)
    with pytest.raises(PigpioError) as info:
        stim._call(stim._pi.write, 99, 1)  # pigpiod answers PI_BAD_GPIO
    assert info.value.code == L.PI_BAD_GPIO
    virtual_clock.advance_to(virtual_clock.now() + 2)
    _all_safe_after(board, t)
    with pytest.raises(BoardFault):
        stim.start()


def test_silent_pigpiod_is_a_lost_connection(sim, pin_map, virtual_clock):
    board, server = sim
    stim = Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                      max_ma=(10, 10), socket_timeout_s=0.2, use_button=False)
    server.reply_delay_s = 0.5
    with pytest.raises(ConnectionLost):
        stim.busy()
    server.reply_delay_s = 0.0
    try:
        stim.close()
    except BoardFault:
        pass


def test_no_pigpiod_is_a_lost_connection(pin_map, virtual_clock):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionLost):
        Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=port)


def test_close_is_idempotent_and_releases(sim, stim):
    _, server = sim
    stim.close()
    stim.close()
    with pytest.raises(NotArmed):
        stim.start()
    deadline = time.monotonic() + 2
    while server.connection_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.connection_count() == 0
    assert math.isfinite(1.0)


def test_safe_stop_order_and_every_step_tried(sim, stim, virtual_clock, monkeypatch):
    board, _ = sim
    t = _into_a_pulse(stim, virtual_clock, board)
    calls = []
    pi = stim._pi
    for name in ("write", "wave_tx_stop", "spi_write"):
        real = getattr(pi, name)

        def spy(*args, _real=real, _name=name):
            calls.append((_name, args[:2] if _name == "write" else args[1:] if _name == "spi_write" else ()))
            if _name == "wave_tx_stop":
                raise pigpio.error("injected: wave_tx_stop failed")
            return _real(*args)
        monkeypatch.setattr(pi, name, spy)
    with pytest.raises(BoardFault, match="wave_tx_stop"):
        stim.stop()
    p = stim.pins
    assert calls[0] == ("write", (p.enable, 0))  # enable low first
    assert calls[1][0] == "wave_tx_stop"
    assert [c[1] for c in calls[2:6]] == [(g, 0) for g in (p.ch0_a, p.ch0_b, p.ch1_a, p.ch1_b)]
    assert [c[0] for c in calls[6:]] == ["spi_write", "spi_write"]  # DAC A and B to zero
    monkeypatch.undo()
    virtual_clock.advance_to(virtual_clock.now() + 0.001)
    tr = board.trace()
    now = round(virtual_clock.now() * 1e6)
    assert tr.value_at("enable", now) == 0 and tr.value_at("ch0.ma", now) == 0
    assert tr.value_at("ch0.a", now) == 0  # the later steps ran although one failed


def test_next_cycle_prepared_while_current_plays(sim, stim, virtual_clock):
    """A different next cycle is created alongside the playing one (when it fits), so the
    seam costs only the chain; both cycles play exactly as planned."""
    board, _ = sim
    a = compile_cycle(CycleSpec(hz=50, pulse_us=300, on_s=2, off_s=1, ramp_up_s=0.5,
                                ramp_down_s=0.5), stim.pins)
    b = compile_cycle(CycleSpec(hz=35, pulse_us=200, on_s=1.5, off_s=1, ramp_up_s=0.5,
                                ramp_down_s=0), stim.pins)
    stim.arm(a)
    stim.start()
    advance(virtual_clock, stim, 1.0)
    assert stim.busy()
    sent = stim.socket_bytes[0]
    stim.arm(b)  # while a plays: b's waves are created now
    assert stim.socket_bytes[0] - sent > 12 * sum(len(w.pulses) for w in b.waves)
    advance(virtual_clock, stim, a.duration_us / 1e6)
    sent = stim.socket_bytes[0]
    stim.start()
    assert stim.socket_bytes[0] - sent < 400  # only the chain and a few line writes
    advance(virtual_clock, stim, (a.duration_us + b.duration_us) / 1e6)
    stim.arm(a)
    stim.start()
    advance(virtual_clock, stim, (2 * a.duration_us + b.duration_us) / 1e6)
    check_trace(board, [(0, a), (a.duration_us, b), (a.duration_us + b.duration_us, a)], 0)


def test_dropped_connection_output_stopped_over_an_emergency_connection(sim, stim, virtual_clock):
    """pigpiod is alive but our socket is gone: the safe stop reaches the board over a
    fresh connection at once (not only 250 ms later through the watchdog)."""
    board, server = sim
    spec = CycleSpec(hz=50, pulse_us=200, on_s=4, off_s=2, ramp_up_s=0, ramp_down_s=0)
    stim.arm(compile_cycle(spec, stim.pins))
    stim.set_amplitude(0, 20)
    stim.start()
    advance(virtual_clock, stim, 0.5)
    server.drop_connections()
    virtual_clock.advance_to(0.55)
    with pytest.raises(ConnectionLost):
        stim.heartbeat()
    t = round(virtual_clock.now() * 1e6)
    virtual_clock.advance_to(2.0)
    _all_safe_after(board, t)
    with pytest.raises(ConnectionLost, match="emergency"):
        stim.stop()  # still reported as lost, though the output is off


def test_a_new_driver_stops_a_left_wave_after_enable_and_before_the_legs(sim, pin_map, virtual_clock,
                                                                           monkeypatch):
    """A wave a crashed client left playing outlives it and would drive a leg high again:
    the new driver's first lines follow the stop sequence (enable low, the wave stopped,
    then the legs low), so no leg is set low while that wave can still raise it."""
    calls: list[tuple] = []
    for name in ("write", "wave_tx_stop"):
        original = getattr(pigpio.pi, name)

        def spy(self, *args, _name=name, _original=original):
            calls.append((_name, *args))
            return _original(self, *args)
        monkeypatch.setattr(pigpio.pi, name, spy)
    with Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=sim[1].port):
        first = calls[:calls.index(("wave_tx_stop",)) + 1]
    p = pin_map
    assert first == [("write", p.enable, 0), ("wave_tx_stop",)]
    legs_low = [c for c in calls if c[0] == "write" and c[1] in (p.ch0_a, p.ch0_b, p.ch1_a, p.ch1_b)]
    assert legs_low[:4] == [("write", g, 0) for g in (p.ch0_a, p.ch0_b, p.ch1_a, p.ch1_b)]


def test_closing_after_a_dropped_link_leaves_no_pigpio_thread_spinning(sim, pin_map, virtual_clock):
    """pigpio's notification thread spins on recv() at full CPU once pigpiod has closed its
    socket, until its connection is stopped. After a lost link the Button's close fails,
    and with it gpiozero's stop of its own connection: the driver stops both anyway."""
    import threading
    board, server = sim

    def notify_threads():
        return {t for t in threading.enumerate() if type(t).__name__ == "_callback_thread"}
    before = notify_threads()
    stim = Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port)
    assert len(notify_threads() - before) == 2          # the driver's and the e-stop Button's
    server.drop_connections()
    with pytest.raises(BoardFault):
        stim.close()                                    # the safe stop cannot reach pigpiod
    deadline = time.monotonic() + 5
    while notify_threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not notify_threads() - before, "a pigpio notification thread was left running"
