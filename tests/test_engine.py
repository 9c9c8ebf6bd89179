"""The engine's own face (what the UI relies on), on the real driver against the
simulated board in virtual time."""
from __future__ import annotations

import datetime as dt

import pytest

from homeapp.engine import EARLY_ABORT_S, Engine, StartRefused
from homeapp.state import AlertKind, Phase
from homeapp.store import Store
from hw.driver import Stimulator
from hw.exc import BoardFault
from schedules.validate import parse_prescription
from tests.sessionkit import rx_dict


@pytest.fixture
def make_engine(sim, pin_map, virtual_clock, tmp_path):
    board, server = sim
    made = []

    def make(rx: dict | None = None, *, today: dt.date | None = None, **kw) -> Engine:
        rx_obj = parse_prescription(rx or rx_dict(), today=today)
        stim = Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                          max_ma=(100.0, 100.0))
        store = Store.open(tmp_path / f"log{len(made)}.db")
        kw.setdefault("allow_unsigned", True)
        eng = Engine(prescription=rx_obj, board=stim, store=store, clock=virtual_clock, **kw)
        made.append((stim, store))
        return eng

    yield make
    for stim, store in made:
        try:
            stim.close()
        except BoardFault:
            pass  # a test that dropped the connection: close() says the safe stop failed
        store.close()


def expired_supervised_rx() -> dict:
    """Supervised, and expired yesterday (parse it with an earlier `today`)."""
    rx = rx_dict(supervision="caregiver")
    rx["expires"] = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    rx["issued"] = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    return rx


def run_until(eng: Engine, clock, t_s: float) -> None:
    """Drive the loop in this thread until session time t_s (virtual)."""
    eng.schedule_at(t_s, eng.freeze)
    eng.run()
    eng._frozen = False  # noqa: SLF001 - the test resumes the loop it paused


def test_start_zeroes_intensity_and_the_plus_button_stops_at_the_cap(make_engine, virtual_clock):
    eng = make_engine(rx_dict(channels=[3.0]))
    eng.start(threaded=False)
    st = eng.state
    assert st.phase is Phase.RUNNING and st.channels[0].target_ma == 0 and st.channels[0].set_ma == 0
    for _ in range(5):
        eng.increase(0)
    st = eng.state
    assert st.channels[0].target_ma == 3.0
    assert st.notice is not None and st.notice.kind == "at_cap"
    assert "3 mA is the most your prescription allows" in st.notice.text
    events = eng.store.session(st.session_id)["events"]
    refused = [e for e in events if e["kind"] == "refused"]
    assert len(refused) == 2 and refused[0]["detail"]["limit_ma"] == 3.0


def test_intensity_rises_at_a_limited_rate_and_falls_at_once(make_engine, virtual_clock):
    eng = make_engine()
    eng.start(threaded=False)
    eng.request_intensity(0, 20)
    run_until(eng, virtual_clock, 1.0)
    assert eng.state.channels[0].set_ma == pytest.approx(4.0, abs=0.5)  # 4 mA/s
    run_until(eng, virtual_clock, 6.0)
    assert eng.state.channels[0].set_ma == pytest.approx(20, abs=0.05)
    assert eng.state.channels[0].peak_ma == pytest.approx(20, abs=0.05)
    eng.request_intensity(0, 5)
    assert eng.state.channels[0].set_ma == pytest.approx(5, abs=0.05)  # no waiting for a tick
    assert eng.board.amplitude(0) == pytest.approx(5, abs=0.05)


def test_pause_zeroes_intensity_and_restore_ramps_back(make_engine, virtual_clock):
    eng = make_engine()
    eng.start(threaded=False)
    eng.request_intensity(0, 10)
    run_until(eng, virtual_clock, 4.0)
    eng.pause()
    st = eng.state
    assert st.phase is Phase.PAUSED and st.channels[0].set_ma == 0
    assert st.channels[0].previous_ma == pytest.approx(10)
    eng.resume()
    assert eng.state.channels[0].target_ma == 0  # from zero after a pause
    eng.restore(0)
    assert eng.state.channels[0].target_ma == pytest.approx(10)
    run_until(eng, virtual_clock, 6.0)
    assert eng.state.channels[0].set_ma == pytest.approx(4.0, abs=0.3)  # 2 mA/s restore ramp


def test_the_countdown_shows_contract_and_rest(make_engine, virtual_clock):
    eng = make_engine()
    eng.start(threaded=False)
    run_until(eng, virtual_clock, 1.0)
    st = eng.state
    # the board plays each cycle 20 µs after it is started (pigpio's chain start), so the
    # contraction the screen counts down is 0.00002-4.00002 s
    assert st.contracting and st.phase_left_s == pytest.approx(3.00002)
    assert st.block_label == "strength" and st.cycle_index == 0 and st.cycles_total == 6
    assert st.total_s == 60 and st.left_s == pytest.approx(59)
    run_until(eng, virtual_clock, 5.0)
    st = eng.state
    assert not st.contracting and st.phase_left_s == pytest.approx(5.0)


def test_listeners_hear_each_contraction_start(make_engine, virtual_clock):
    eng = make_engine()
    heard = []
    eng.add_listener(lambda kind, detail: heard.append((kind, detail.get("channel"))))
    eng.start(threaded=False)
    eng.run()
    starts = [h for h in heard if h == ("contraction_start", 0)]
    assert len(starts) == 6
    assert heard[-1][0] == "ended"
    assert eng.state.phase is Phase.COMPLETED


def test_patient_adjustment_only_within_the_prescribed_range(make_engine, virtual_clock):
    rx = rx_dict()
    rx["blocks"][0]["hz"] = {"value": 50, "min": 40, "max": 60}
    eng = make_engine(rx)
    eng.start(threaded=False)
    eng.set_param(0, "hz", 60)
    with pytest.raises(ValueError, match="outside the prescribed range 40 to 60"):
        eng.set_param(0, "hz", 80)
    with pytest.raises(ValueError, match="fixed by the prescription"):
        eng.set_param(0, "pulse_us", 200)
    kinds = [e["kind"] for e in eng.store.session(eng.state.session_id)["events"]]
    assert kinds.count("set") == 1 and kinds.count("refused") == 2
    eng.run()
    assert eng.state.phase is Phase.COMPLETED


def test_start_refusals_explain_every_reason(make_engine, sim):
    board, _ = sim
    eng = make_engine(expired_supervised_rx(), allow_unsigned=False,
                      today=dt.date.today() - dt.timedelta(days=2))
    board.set_lead(1, False)
    # parse_prescription refuses an expired rx today; the engine checks again at start
    reasons = eng.start_refusals()
    assert any("expired" in r for r in reasons)
    assert any("caregiver" in r for r in reasons)
    assert any("no electrode contact on channel 2" in r for r in reasons)
    assert any("trust store" in r for r in reasons)
    board.press_estop()
    assert any("emergency stop button is pressed" in r for r in eng.start_refusals())
    with pytest.raises(StartRefused):
        eng.start(threaded=False)
    assert eng.state.phase is Phase.READY
    assert eng.store.device_events()[-1]["kind"] == "start_refused"


@pytest.mark.parametrize("zone, local_time, expired", [
    ("America/New_York", "20:00 on the last day", False),   # already the next day in UTC
    ("Europe/Stockholm", "00:30 the day after", True),      # still the last day in UTC
])
def test_the_prescriptions_dates_are_days_where_the_patient_lives(make_engine, monkeypatch,
                                                                   zone, local_time, expired):
    import time
    from zoneinfo import ZoneInfo
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        rx = rx_dict()
        last = dt.date.fromisoformat(rx["expires"])
        local = (dt.datetime.combine(last, dt.time(20, 0)) if not expired
                 else dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0, 30)))
        now_wall = local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.timezone.utc)
        eng = make_engine(rx, today=last, wall_clock=lambda: now_wall)
        kinds = [r.kind for r in eng.start_refusals()]
        assert kinds == (["expired"] if expired else []), (local_time, kinds)
    finally:
        monkeypatch.undo()
        time.tzset()


def aborted_with_a_fault(eng: Engine) -> list[dict]:
    """The session ended aborted, with a fault alert to acknowledge; its logged events."""
    st = eng.state
    assert st.phase is Phase.ABORTED
    assert st.alert is not None and st.alert.kind is AlertKind.FAULT and st.alert.needs_ack
    session = eng.store.session(st.session_id)
    assert session["status"] == "aborted"
    return session["events"]


def test_a_lost_board_connection_aborts_with_a_fault(make_engine, sim, virtual_clock):
    _, server = sim
    eng = make_engine()
    eng.start(threaded=False)
    eng.request_intensity(0, 10)
    eng.schedule_at(2.0, server.drop_connections)
    eng.run()
    assert any(e["kind"] == "fault" for e in aborted_with_a_fault(eng))


def test_an_estop_over_a_dead_link_is_logged_before_the_fault(make_engine, sim, virtual_clock):
    """The e-stop's callback arrives but the board's command link is gone: the safe stop
    fails, the session aborts with a fault, and the log still says the button was pressed."""
    _, server = sim
    eng = make_engine()
    eng.start(threaded=False)
    eng.request_intensity(0, 10)
    eng.schedule_at(2.0, server.drop_connections)
    eng.schedule_at(2.0, lambda: eng.estop("button"))
    eng.run()
    events = aborted_with_a_fault(eng)
    kinds = [e["kind"] for e in events]
    assert "estop" in kinds and "fault" in kinds
    assert kinds.index("estop") < kinds.index("fault")
    estop = events[kinds.index("estop")]
    assert estop["detail"]["source"] == "button" and estop["detail"]["safe_stop_failed"]


def test_a_board_fault_in_a_command_ends_the_session_as_in_the_loop(make_engine, sim, virtual_clock):
    """Resume (a command from the screen, not the engine's loop) finds the board gone: the
    session ends aborted with a fault alert and in the log, never left 'running' with no loop."""
    _, server = sim
    eng = make_engine()
    eng.start(threaded=False)
    eng.pause()
    server.drop_connections()
    with pytest.raises(BoardFault):
        eng.resume()
    assert [e["kind"] for e in aborted_with_a_fault(eng)][-3:] == ["resume", "fault", "end"]


def test_stop_always_works(make_engine, virtual_clock):
    eng = make_engine()
    eng.stop()  # before the start: nothing to stop, no error
    eng.start(threaded=False)
    eng.pause()
    eng.stop()
    assert eng.state.phase is Phase.STOPPED
    eng.stop()
    assert eng.store.session(eng.state.session_id)["status"] == "stopped"


def test_a_pause_nobody_ends_stops_the_session_after_ten_minutes(make_engine, virtual_clock):
    eng = make_engine()
    eng.start(threaded=False)
    eng.schedule_at(2.0, eng.pause)
    eng.run()  # returns: nobody resumes, so the pause times out
    st = eng.state
    assert st.phase is Phase.STOPPED and "paused for more than 10 minutes" in st.end_reason
    stop = [e for e in eng.store.session(st.session_id)["events"] if e["kind"] == "stop"][0]
    assert stop["detail"]["by"] == "pause_timeout" and stop["t"] == pytest.approx(602, abs=0.11)


def test_a_heartbeat_lapse_as_long_as_the_watchdog_pauses_and_restarts_from_zero(
        make_engine, virtual_clock, sim):
    board, _ = sim
    eng = make_engine()
    eng.start(threaded=False)
    eng.request_intensity(0, 10)

    def stall() -> None:  # the loop hangs for 300 ms in the middle of a contraction
        virtual_clock.advance_to(virtual_clock.now() + 0.3)

    eng.schedule_at(3.0, stall)
    eng.schedule_at(3.5, eng.resume)
    run_until(eng, virtual_clock, 5.0)
    tr = board.trace()
    # the board's watchdog cut the output 250 ms after the last heartbeat edge ...
    assert tr.value_at("enable", 3_260_000) == 0
    # ... and it never came back at the old level: nothing flows after the cut
    assert [s for s in tr.current_segments(0) if s[1] > 3_250_000] == []
    st = eng.state
    assert st.phase is Phase.RUNNING and st.channels[0].target_ma == 0
    assert st.channels[0].previous_ma == pytest.approx(10)
    events = eng.store.session(st.session_id)["events"]
    watchdog = [e for e in events if e["kind"] == "watchdog"]
    assert watchdog and watchdog[0]["detail"]["heartbeat_gap_ms"] >= 250
    pause = [e for e in events if e["kind"] == "pause"]
    assert pause[0]["detail"]["reason"] == "watchdog"


def test_every_start_refusal_carries_a_kind_the_ui_can_translate(make_engine, sim):
    board, _ = sim
    eng = make_engine(expired_supervised_rx(), allow_unsigned=False,
                      today=dt.date.today() - dt.timedelta(days=2))
    board.set_lead(0, False)
    board.press_estop()
    reasons = eng.start_refusals()
    kinds = {r.kind for r in reasons}
    assert kinds >= {"expired", "signature", "caregiver", "estop", "contact"}
    assert kinds <= {"expired", "signature", "caregiver", "estop", "contact", "schedule"}
    contact = [r for r in reasons if r.kind == "contact"][0]
    assert contact.params == {"channel": 0, "label": "muscle 0"}
    assert all(isinstance(r, str) and r for r in reasons)  # still the sentences the log keeps


def test_a_prepared_engine_refuses_to_start_once_another_prescription_is_active(make_engine):
    active = {"still": True}
    eng = make_engine(still_active=lambda: active["still"])
    assert eng.start_refusals() == []
    active["still"] = False               # a sync installed another prescription meanwhile
    reasons = eng.start_refusals()
    assert [r.kind for r in reasons] == ["prescription_changed"]
    assert reasons[0].startswith("another prescription was installed after this session of rx-test")
    with pytest.raises(StartRefused):
        eng.start(threaded=False)
    assert eng.state.phase is Phase.READY and not eng.store.sessions()
    refused = eng.store.device_events()[-1]
    assert refused["kind"] == "start_refused" and "another prescription" in refused["detail"]["reasons"][0]


def test_an_install_landing_after_the_refusals_and_before_the_lock_is_refused_too(make_engine):
    answers = iter([True])                   # the refusals pass; then a sync installs another
    eng = make_engine(still_active=lambda: next(answers, False))
    with pytest.raises(StartRefused) as refused:
        eng.start(threaded=False)
    assert [r.kind for r in refused.value.reasons] == ["prescription_changed"]
    assert eng.state.phase is Phase.READY and eng.store.sessions() == []
    assert eng.store.device_events()[-1]["kind"] == "start_refused"
    # the log's session lock was let go: another session (and so an install) can take it
    eng.store.start_session(session_id="s-next", prescription_id="rx-test", planned_contractions=1,
                            channels=2, started_at=dt.datetime.now(dt.timezone.utc))
    assert [s["id"] for s in eng.store.sessions()] == ["s-next"]


def test_the_planned_total_follows_adjustments(make_engine, virtual_clock):
    rx = rx_dict()
    rx["blocks"][0]["off_s"] = {"value": 6, "min": 4, "max": 10}
    eng = make_engine(rx)
    assert eng.state.total_s == 60  # 6 cycles of 4 s + 6 s
    eng.start(threaded=False)
    run_until(eng, virtual_clock, 1.0)
    # the cycles after the current one rest 10 s, and the 1-minute block now holds
    # round(60 / 14) = 4 cycles: the current one (10 s) and 3 of 14 s
    eng.set_param(0, "off_s", 10)
    assert eng.state.total_s == pytest.approx(10 + 3 * 14)
    eng.run()
    assert eng.state.elapsed_s == pytest.approx(52)
    assert eng.state.total_s == pytest.approx(52)


def test_an_adjustment_while_paused_in_a_rest_does_not_replay_done_contractions(
        make_engine, virtual_clock):
    rx = rx_dict()
    rx["blocks"][0]["hz"] = {"value": 50, "min": 40, "max": 60}
    eng = make_engine(rx)
    eng.start(threaded=False)
    eng.schedule_at(5.0, eng.pause)  # in the rest after the first contraction (0-4 s)
    eng.schedule_at(6.0, lambda: eng.set_param(0, "hz", 60))
    eng.schedule_at(7.0, eng.resume)
    eng.run()
    st = eng.state
    assert st.phase is Phase.COMPLETED
    assert [ch.contractions_done for ch in st.channels] == [6, 6]  # the plan, not more
    assert st.elapsed_s == pytest.approx(60)


def test_a_window_edge_on_a_fractional_second_is_passed_not_spun_on(tmp_path):
    """Alternating 9.6 s / 9.6 s: the second cycle starts at 19.2 s, where a float timeline
    woke at step_t0 + 9.6 and found itself a hair short of the edge, forever. The session
    runs in a child process so that a hang fails the test instead of blocking the suite."""
    import json
    import subprocess
    import sys

    block = {"label": "x", "minutes": 0.64, "hz": 50, "pulse_us": 300, "on_s": 9.6,
             "off_s": 9.6, "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "alternating"}
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(rx_dict(blocks=[block])))
    argv = [sys.executable, "-m", "homeapp.cli", "session", "run", "--prescription", str(rx_path),
            "--db", str(tmp_path / "log.db"), "--trace", str(tmp_path / "trace.csv"),
            "--virtual-time", "--allow-unsigned"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the session never ended in virtual time (the timeline spun on an edge)")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed" and summary["contractions"] == [2, 2]


def _continuous(hz: float, minutes: float) -> dict:
    return {"label": "tone", "minutes": minutes, "hz": hz, "pulse_us": 300, "on_s": 12.75,
            "off_s": 0, "ramp_up_s": 2, "ramp_down_s": 1, "pattern": "synchronous"}


@pytest.mark.parametrize("hz, minutes", [(130.52, 1.5), (27.12, 0.5)])
def test_a_valid_continuous_block_with_a_fractional_frequency_runs(tmp_path, capsys, hz, minutes):
    from tests.sessionkit import run_session

    run = run_session(tmp_path, rx_dict(channels=[40.0], blocks=[_continuous(hz, minutes)]),
                      capsys=capsys)
    assert run.code == 0, run.stderr
    assert run.summary["status"] == "completed" and run.summary["contractions"] == [1]
    # the board played floor(minutes * 60 * hz) pulses (the block rounded down, never up)
    from hw.waveform import Grid
    pulses = run.trace_obj().pulses(0)
    assert len(pulses) == int(minutes * 60 * 1_000_000 // Grid.for_hz(hz).period)


def test_a_program_the_board_cannot_be_given_is_refused_and_logged_not_a_crash(
        tmp_path, capsys, monkeypatch):
    """Should the compiler still refuse a step of a valid prescription, the session does
    not start: the patient reads that the device cannot run the program and should call
    the clinic, the device log keeps it, and `session run` exits 2, not 1."""
    import hw.driver as driver_module
    from hw.exc import WaveformError
    from tests.sessionkit import run_session

    def refuse(spec, pins):
        raise WaveformError("a test's stand-in for a compiler bug")

    # The board compiles what the engine arms (one path from a block to pulses).
    monkeypatch.setattr(driver_module, "compile_cycle", refuse)
    run = run_session(tmp_path, rx_dict(), capsys=capsys)
    assert run.code == 2 and run.summary is None
    assert "cannot run this program: please call your clinic" in run.stderr
    assert "internal error" not in run.stderr
    device = Store.open(run.db)
    try:
        refused = [e for e in device.device_events() if e["kind"] == "start_refused"]
    finally:
        device.close()
    assert refused and "cannot run this program" in refused[-1]["detail"]["reasons"][0]


def test_a_step_that_cannot_be_compiled_mid_session_ends_it_with_a_fault(
        make_engine, virtual_clock, monkeypatch):
    import hw.driver as driver_module
    from hw.exc import WaveformError

    eng = make_engine(rx_dict(blocks=[
        {"label": "a", "minutes": 0.5, "hz": 50, "pulse_us": 300, "on_s": 4, "off_s": 6,
         "ramp_up_s": 1, "ramp_down_s": 1},
        {"label": "b", "minutes": 0.5, "hz": 40, "pulse_us": 300, "on_s": 4, "off_s": 6,
         "ramp_up_s": 1, "ramp_down_s": 1}]))
    eng.start(threaded=False)
    real = driver_module.compile_cycle

    def refuse_40_hz(spec, pins):
        if spec.hz == 40:
            raise WaveformError("a test's stand-in for a compiler bug")
        return real(spec, pins)

    monkeypatch.setattr(driver_module, "compile_cycle", refuse_40_hz)
    eng.board._compiled = {k: v for k, v in eng.board._compiled.items() if k.hz != 40}  # noqa: SLF001
    eng.run()
    st = eng.state
    assert st.phase is Phase.ABORTED and "cannot run this program" in st.end_reason
    events = eng.store.session(st.session_id)["events"]
    assert [e for e in events if e["kind"] == "fault"]


@pytest.mark.parametrize("estop_at_s, may_restart", [(20.0, True), (EARLY_ABORT_S + 20.0, False)])
def test_a_session_aborted_in_its_first_minutes_does_not_use_up_the_day(
        make_engine, sim, virtual_clock, estop_at_s, may_restart):
    board, _ = sim
    rx = rx_dict(max_sessions_per_day=1, sessions_per_week=7)
    rx["blocks"][0]["minutes"] = 10
    noon = dt.datetime.now(dt.timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    wall = lambda: noon + dt.timedelta(seconds=virtual_clock.now())  # noqa: E731
    eng = make_engine(rx, wall_clock=wall)
    first = eng.start(threaded=False)
    eng.schedule_at(estop_at_s, lambda: eng.estop("button"))
    eng.run()
    assert eng.store.session(first)["status"] == "aborted"
    eng.acknowledge()
    again = Engine(prescription=eng.rx, board=eng.board, store=eng.store, clock=virtual_clock,
                   allow_unsigned=True, wall_clock=wall)
    schedule = [r for r in again.start_refusals() if r.kind == "schedule"]
    if not may_restart:
        assert schedule and "1 session already today" in schedule[0]
        return
    assert schedule == []
    second = again.start(threaded=False)
    restart = [e for e in eng.store.session(second)["events"] if e["kind"] == "restart_allowed"]
    assert restart and restart[0]["detail"]["previous_session"] == first
    assert restart[0]["detail"]["previous_status"] == "aborted"
    assert restart[0]["detail"]["previous_ran_s"] <= EARLY_ABORT_S
    again.stop()


def test_max_ma_keeps_its_name_from_the_prescription_to_the_driver(make_engine):
    # one name per quantity: the file's `max_ma` is the engine's, the screen's and the
    # driver's (which clamps to it)
    eng = make_engine(rx_dict(channels=[30.0, 20.0]))
    eng.start(threaded=False)
    assert [ch.max_ma for ch in eng.rx.channels] == [30.0, 20.0]
    assert [ch.max_ma for ch in eng.state.channels] == [30.0, 20.0]
    assert eng.board.max_ma == (30.0, 20.0)
    assert eng.board.set_amplitude(1, 25.0) <= 20.0
    eng.stop()
