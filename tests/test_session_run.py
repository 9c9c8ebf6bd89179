"""`homeapp session run` end to end on the simulated board, checked from the trace the
board recorded and from the exported log (contract.md)."""
from __future__ import annotations

import json

import pytest

from tests.sessionkit import delivered_after, delivered_between, run_session, rx_dict

US = 1_000_000


def bursts(trace, channel: int, gap_us: int = 1_000_000) -> list[tuple[int, int]]:
    """Contractions as the board played them: pulse trains separated by a rest (from the
    legs, so a train counts even while the patient's intensity is still zero)."""
    out: list[list[int]] = []
    for p in trace.pulses(channel):
        if out and p.start_us - out[-1][1] < gap_us:
            out[-1][1] = p.end_us
        else:
            out.append([p.start_us, p.end_us])
    return [tuple(b) for b in out]


def peak(trace, channel: int, t0_us: int = 0, t1_us: int = 10**15) -> float:
    segs = delivered_between(trace, channel, t0_us, t1_us)
    return max((abs(ma) for _, _, ma in segs), default=0.0)


def test_a_whole_session_delivers_the_planned_contractions(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 0, "do": "intensity", "channel": 1, "ma": 12},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    assert run.summary["status"] == "completed"
    assert run.summary["contractions"] == [6, 6]
    tr = run.trace_obj()
    for ch, asked in ((0, 20), (1, 12)):
        trains = bursts(tr, ch)
        assert len(trains) == 6
        # each contraction lasts on_s (first to last pulse), cycles every 10 s, no drift
        starts = [t0 for t0, _ in trains]
        assert [b - a for a, b in zip(starts, starts[1:])] == [10 * US] * 5
        assert all(abs((t1 - t0) - 4 * US) <= 20_000 for t0, t1 in trains)
        assert peak(tr, ch) <= asked
    session = run.export()["sessions"][0]
    assert session["status"] == "completed"
    assert session["planned_contractions"] == 6
    assert [c["contractions"] for c in session["channels"]] == [6, 6]
    assert session["channels"][0]["peak_ma"] == pytest.approx(20, abs=0.05)


def test_no_pulse_above_the_cap_or_above_what_the_patient_asked(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 250},   # far above the cap of 60
        {"t": 0, "do": "intensity", "channel": 1, "ma": 10},
        {"t": 25, "do": "intensity", "channel": 1, "ma": 5},     # lowering acts at once
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    tr = run.trace_obj()
    assert 0 < peak(tr, 0) <= 60
    assert peak(tr, 1) <= 10
    assert peak(tr, 1, 25 * US) <= 5
    events = run.export()["sessions"][0]["events"]
    refused = [e for e in events if e["kind"] == "refused"]
    assert refused and refused[0]["detail"]["asked_ma"] == 250 and refused[0]["detail"]["limit_ma"] == 60


def test_intensity_rises_at_a_limited_rate(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [{"t": 0, "do": "intensity", "channel": 0, "ma": 40}],
                      capsys=capsys)
    tr = run.trace_obj()
    # 4 mA/s: the first contraction (0-4 s) cannot reach more than about 16 mA
    assert peak(tr, 0, 0, 4 * US) <= 16.5
    assert peak(tr, 0, 10 * US, 14 * US) == pytest.approx(40, abs=0.05)


def test_no_pulse_during_a_pause_and_intensity_restarts_from_zero(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 12, "do": "pause"},
        {"t": 20, "do": "resume"},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    tr = run.trace_obj()
    assert delivered_between(tr, 0, 12 * US, 20 * US) == []
    assert delivered_between(tr, 1, 12 * US, 20 * US) == []
    # after the resume nothing flows until the patient raises it again
    assert delivered_after(tr, 0, 20 * US) == []
    s = run.summary
    # the cycle cut by the pause is played again: every planned contraction is delivered
    assert s["contractions"] == [6, 6] and s["status"] == "completed"


def test_restore_after_pause_by_intensity_request(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 8},
        {"t": 12, "do": "pause"},
        {"t": 14, "do": "resume"},
        {"t": 14, "do": "intensity", "channel": 0, "ma": 8},
    ], capsys=capsys)
    tr = run.trace_obj()
    assert peak(tr, 0, 14 * US) == pytest.approx(8, abs=0.05)


def test_nothing_after_a_stop(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 11.5, "do": "stop"},  # in the middle of a contraction
    ], capsys=capsys)
    assert run.code == 0 and run.summary["status"] == "stopped"
    tr = run.trace_obj()
    assert delivered_after(tr, 0, int(11.5 * US)) == []
    assert tr.value_at("ch0.a", 15 * US) == 0 and tr.value_at("ch0.b", 15 * US) == 0
    assert tr.value_at("enable", 15 * US) == 0


def test_nothing_after_an_estop_not_even_after_its_release(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 0, "do": "intensity", "channel": 1, "ma": 20},
        {"t": 11.2, "do": "estop"},
        {"t": 13, "do": "estop_release"},
        {"t": 14, "do": "resume"},
        {"t": 14, "do": "intensity", "channel": 0, "ma": 20},
    ], capsys=capsys)
    assert run.code == 0 and run.summary["status"] == "aborted"
    tr = run.trace_obj()
    for ch in (0, 1):
        assert delivered_after(tr, ch, int(11.2 * US)) == []
    kinds = [e["kind"] for e in run.export()["sessions"][0]["events"]]
    assert "estop" in kinds


def test_the_watchdog_cuts_the_output_after_a_freeze(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 11, "do": "freeze"},  # the app hangs in the middle of a contraction
    ], capsys=capsys)
    assert run.code == 0
    assert run.summary["status"] == "interrupted"
    tr = run.trace_obj()
    assert delivered_between(tr, 0, 10 * US, 11 * US) != []  # it was stimulating
    assert delivered_after(tr, 0, int(11.3 * US)) == []
    assert tr.value_at("enable", int(11.3 * US)) == 0


def test_electrode_loss_cuts_that_channel_and_pauses_until_it_is_back(tmp_path, capsys):
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 0, "do": "intensity", "channel": 1, "ma": 20},
        {"t": 11.3, "do": "lead_off", "channel": 1},
        {"t": 13, "do": "resume"},            # refused: the electrode is still off
        {"t": 16, "do": "lead_on", "channel": 1},
        {"t": 17, "do": "resume"},
        {"t": 17, "do": "intensity", "channel": 1, "ma": 20},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    tr = run.trace_obj()
    assert delivered_between(tr, 1, int(11.3 * US), 17 * US) == []
    assert delivered_between(tr, 0, int(11.3 * US), 17 * US) == []
    assert delivered_after(tr, 1, 17 * US) != []
    events = run.export()["sessions"][0]["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.index("lead_off") < kinds.index("pause") < kinds.index("lead_on") < kinds.index("resume")
    assert any(e["kind"] == "refused" and e["detail"].get("what") == "resume" for e in events)


def test_an_electrode_never_reattached_ends_the_session_aborted(tmp_path, capsys):
    """docs/contract.md: `aborted` covers an electrode lost and not recovered; a pause the
    patient chose and never ended is `stopped`."""
    lost = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 11.3, "do": "lead_off", "channel": 1},
    ], name="lost", capsys=capsys)
    assert lost.code == 0, lost.stderr
    session = lost.export()["sessions"][0]
    assert session["status"] == "aborted"
    assert lost.summary["status"] == "aborted"
    paused = run_session(tmp_path, rx_dict(), [{"t": 11.3, "do": "pause"}], name="paused",
                         capsys=capsys)
    assert paused.export()["sessions"][0]["status"] == "stopped"


def test_the_same_run_gives_a_byte_identical_trace(tmp_path, capsys):
    acts = [{"t": 0, "do": "intensity", "channel": 0, "ma": 15}, {"t": 13, "do": "pause"},
            {"t": 15, "do": "resume"}, {"t": 15.5, "do": "intensity", "channel": 1, "ma": 7}]
    a = run_session(tmp_path, rx_dict(), acts, name="a", capsys=capsys)
    b = run_session(tmp_path, rx_dict(), acts, name="b", capsys=capsys)
    assert a.trace.read_bytes() == b.trace.read_bytes()


def test_an_invalid_prescription_is_refused_before_any_pulse(tmp_path, capsys):
    bad = rx_dict()
    bad["blocks"][0]["hz"] = 400
    run = run_session(tmp_path, bad, capsys=capsys)
    assert run.code == 2
    assert "blocks[0].hz" in run.stderr
    assert run.summary is None


def test_a_supervised_prescription_needs_the_caregiver(tmp_path, capsys):
    rx = rx_dict(supervision="caregiver")
    refused = run_session(tmp_path, rx, name="locked", capsys=capsys)
    assert refused.code == 2 and "caregiver" in refused.stderr
    assert refused.trace.exists()
    assert refused.trace_obj().current_segments(0) == []
    ok = run_session(tmp_path, rx, name="unlocked", extra=["--caregiver-unlocked"], capsys=capsys)
    assert ok.code == 0 and ok.summary["status"] == "completed"


def test_an_unsigned_prescription_is_refused_without_allow_unsigned(tmp_path, capsys):
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(rx_dict()))
    trust = tmp_path / "trust"
    trust.mkdir()
    from homeapp.cli import main
    code = main(["session", "run", "--prescription", str(rx_path), "--db", str(tmp_path / "x.db"),
                 "--trace", str(tmp_path / "t.csv"), "--virtual-time", "--trust", str(trust)])
    assert code == 2
    assert "unsigned" in capsys.readouterr().err


@pytest.mark.parametrize("line, fragment", [
    ('{"t": 1, "do": "jump"}', "unknown action"),
    ("not json", "not a JSON object"),
])
def test_a_bad_actions_file_is_refused_before_any_pulse(tmp_path, capsys, line, fragment):
    act = tmp_path / "a.jsonl"
    act.write_text(line + "\n")
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(rx_dict()))
    trace = tmp_path / "t.csv"
    from homeapp.cli import main
    code = main(["session", "run", "--prescription", str(rx_path), "--db", str(tmp_path / "x.db"),
                 "--trace", str(trace), "--virtual-time", "--allow-unsigned", "--actions", str(act)])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not trace.exists()


def test_an_unwritable_database_path_is_one_clear_message(tmp_path, capsys):
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(rx_dict()))
    from homeapp.cli import main
    code = main(["session", "run", "--prescription", str(rx_path),
                 "--db", str(tmp_path / "missing-folder" / "x.db"),
                 "--trace", str(tmp_path / "t.csv"), "--virtual-time", "--allow-unsigned"])
    err = capsys.readouterr().err
    assert code == 2
    assert "missing-folder" in err and "Traceback" not in err


def test_a_continuous_block_is_one_contraction_logged_with_what_was_delivered(tmp_path, capsys):
    block = {"label": "tone", "minutes": 0.5, "hz": 100, "pulse_us": 200, "on_s": 4, "off_s": 0,
             "ramp_up_s": 2, "ramp_down_s": 2, "pattern": "synchronous"}
    run = run_session(tmp_path, rx_dict(channels=[30.0], blocks=[block]),
                      [{"t": 0, "do": "intensity", "channel": 0, "ma": 10}], capsys=capsys)
    assert run.code == 0, run.stderr
    assert run.summary["contractions"] == [1] and run.summary["peak_ma"][0] == pytest.approx(10, abs=0.05)
    tr = run.trace_obj()
    trains = bursts(tr, 0)
    assert len(trains) == 1  # no gap between the segments the board played
    assert abs((trains[0][1] - trains[0][0]) - 30 * US) <= 10_000
    pulses = tr.pulses(0)
    assert [b.start_us - a.start_us for a, b in zip(pulses, pulses[1:])] == [10_000] * (len(pulses) - 1)


def test_after_a_freeze_the_trace_runs_past_the_watchdog_even_after_a_pause(tmp_path, capsys):
    # the plan's end moves later by every pause: the trace must still reach the watchdog's cut
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 10},
        {"t": 1, "do": "pause"}, {"t": 9, "do": "resume"},
        {"t": 68.9, "do": "freeze"},
    ], capsys=capsys)
    assert run.code == 0 and run.summary["status"] == "interrupted"
    tr = run.trace_obj()
    # the last heartbeat edge was at 68.8 s: the watchdog's cut 250 ms later is in the trace
    assert tr.signal("enable")[-1] == (69_050_000, 0)


@pytest.mark.parametrize("first", ["freeze", "estop"])
def test_the_e_stop_reaches_the_board_while_the_app_is_frozen(tmp_path, capsys, first):
    # The button is wired to the board, not to the app: frozen or not, the output is cut
    # at the press by the board's own e-stop wiring (not 250 ms later by the watchdog).
    second = "estop" if first == "freeze" else "freeze"
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 11, "do": first},
        {"t": 11, "do": second},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    tr = run.trace_obj()
    press_us = 11 * US
    assert delivered_between(tr, 0, 10 * US, press_us) != []  # it was stimulating
    assert tr.value_at("estop", press_us) == 1
    assert tr.value_at("enable", press_us) == 0
    assert delivered_after(tr, 0, press_us) == []
    assert [p for p in tr.pulses(0) if p.start_us >= press_us and p.enabled] == []


def test_electrodes_and_the_e_stop_still_change_after_a_freeze(tmp_path, capsys):
    # Only the app's own commands stop with a freeze: a lead coming off and the e-stop
    # pressed and released later are in the trace at their times; the pause is not.
    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 20},
        {"t": 5, "do": "freeze"},
        {"t": 5.5, "do": "pause"},
        {"t": 6, "do": "lead_off", "channel": 1},
        {"t": 7, "do": "estop"},
        {"t": 7.5, "do": "estop_release"},
        {"t": 8, "do": "lead_on", "channel": 1},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    assert run.summary["status"] == "interrupted"
    tr = run.trace_obj()
    assert tr.signal("lead.ch1") == [(0, 1), (6 * US, 0), (8 * US, 1)]
    assert tr.signal("estop") == [(0, 0), (7 * US, 1), (int(7.5 * US), 0)]
    kinds = [e["kind"] for e in run.export()["sessions"][0]["events"]]
    assert "pause" not in kinds and "estop" not in kinds and "lead_off" not in kinds
