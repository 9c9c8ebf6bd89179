"""The session's timeline against what the board played, over random valid prescriptions
(alternating, fractional frequencies and lengths, continuous and intermittent), each run
whole in virtual time on the real driver and the simulated board:

- every session ends (a hang fails the example after a bounded real time);
- every contraction the log records starts at the first pulse the board played for it, to
  the µs, and its window [start_t, end_t) holds exactly the pulses the board played for it:
  every pulse lies in one logged contraction, and no logged contraction is empty.

TIMELINE_EXAMPLES (default 10) sets how many prescriptions one run tries; `make test` keeps
the default, a longer search sets it higher.
"""
from __future__ import annotations

import os
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeapp.engine import Engine
from homeapp.store import Store
from hw.clock import VirtualClock
from hw.driver import Stimulator
from hw.pins import load_pin_map
from hw.sim import SimBoard, SimServer
from schedules.validate import parse_prescription
from tests.strategies import valid_prescriptions

EXAMPLES = int(os.environ.get("TIMELINE_EXAMPLES", "10"))
#: Real seconds a session of at most a few virtual minutes may take before it counts as hung.
HANG_S = 120


def run_whole_session(rx_data: dict, db_path) -> tuple[Engine, SimBoard, Store]:
    rx = parse_prescription(rx_data)
    clock = VirtualClock()
    pins = load_pin_map()
    board = SimBoard(pins=pins, clock=clock)
    server = SimServer(board, host="127.0.0.1", port=0)
    server.start()
    store = Store.open(db_path)
    stim = Stimulator(pins=pins, clock=clock, host="127.0.0.1", port=server.port,
                      max_ma=tuple(ch.max_ma for ch in rx.channels))
    eng = Engine(prescription=rx, board=stim, store=store, clock=clock, allow_unsigned=True)
    try:
        eng.start(threaded=False, caregiver_unlocked=True)
        for ch in range(len(rx.channels)):
            eng.request_intensity(ch, min(5.0, rx.channels[ch].max_ma))
        loop = threading.Thread(target=eng.run, name="engine-under-test", daemon=True)
        loop.start()
        loop.join(HANG_S)
        assert not loop.is_alive(), "the session never ended in virtual time"
    finally:
        stim.close()
        server.stop()
    return eng, board, store


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.one_of(valid_prescriptions(fine=True, max_blocks=2, max_block_minutes=0.5, adjustable=False),
                 valid_prescriptions(fine=True, max_blocks=1, max_block_minutes=0.5, adjustable=False,
                                     channels=st.just(2), patterns=st.just("alternating"))))
def test_every_logged_contraction_is_exactly_the_pulses_the_board_played(tmp_path_factory, rx_data):
    db = tmp_path_factory.mktemp("timeline") / "log.db"
    eng, board, store = run_whole_session(rx_data, db)
    try:
        st_ = eng.state
        assert st_.phase.value == "completed", st_.end_reason
        session = store.session(st_.session_id)
        t0_us = round(eng.session_clock_start * 1_000_000)  # the board's trace starts at clock 0
        trace = board.trace()
        for ch in range(len(eng.rx.channels)):
            windows = sorted((round(c["start_t"] * 1_000_000) + t0_us, round(c["end_t"] * 1_000_000) + t0_us)
                             for c in session["contraction_list"] if c["channel"] == ch)
            starts = [p.start_us for p in trace.pulses(ch)]
            assert windows, f"channel {ch}: no contraction logged"
            taken = 0
            for a, b in windows:
                inside = [t for t in starts if a <= t < b]
                assert inside, f"channel {ch}: the contraction {a}-{b} µs holds no pulse"
                assert inside[0] == a, f"channel {ch}: logged start {a} µs, first pulse {inside[0]} µs"
                taken += len(inside)
            assert taken == len(starts), f"channel {ch}: {len(starts) - taken} pulses outside any contraction"
    finally:
        store.close()
