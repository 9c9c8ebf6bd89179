"""One factory wires every device (homeapp/device.py): `session run`, `homeapp sim`, the
app and the touchscreen tests all get the configured pin map and board constants."""
from __future__ import annotations

import json

import pytest

from homeapp.cli import main as homeapp_main
from hw.sim.board import SimBoard
from tests.sessionkit import rx_dict, run_session

#: A board wired differently from the reference one, with its own watchdog.
OTHER_BOARD = """
[pins]
ch0_a = 5
ch0_b = 6
ch1_a = 12
ch1_b = 13
enable = 19
heartbeat = 26
estop = 20

[board]
watchdog_ms = 400
"""
MODE_OUTPUT = 1


@pytest.fixture
def boards_built(monkeypatch):
    """Every SimBoard built during the test (the real board, only remembered)."""
    built: list[SimBoard] = []
    real_init = SimBoard.__init__

    def init(self, *args, **kw):
        real_init(self, *args, **kw)
        built.append(self)

    monkeypatch.setattr(SimBoard, "__init__", init)
    return built


def test_session_run_puts_the_configured_pin_map_on_the_simulated_board(tmp_path, capsys, boards_built):
    config = tmp_path / "config.toml"
    config.write_text(OTHER_BOARD)
    run = run_session(tmp_path, rx_dict(), [{"t": 0, "do": "intensity", "channel": 0, "ma": 10}],
                      capsys=capsys, extra=[])
    assert run.code == 0
    assert boards_built[-1].pins.ch0_a == 17          # no configuration: the reference board
    capsys.readouterr()
    argv = ["--config", str(config), "session", "run", "--prescription", str(tmp_path / "run.rx.json"),
            "--db", str(tmp_path / "other.db"), "--trace", str(tmp_path / "other.csv"),
            "--actions", str(tmp_path / "run.actions.jsonl"), "--virtual-time", "--allow-unsigned"]
    assert homeapp_main(argv) == 0, capsys.readouterr().err
    board = boards_built[-1]
    assert (board.pins.ch0_a, board.pins.enable, board.pins.estop, board.pins.watchdog_ms) == (5, 19, 20, 400)
    # the driver drove the configured lines, and nothing on the reference board's
    assert board.get_mode(5) == MODE_OUTPUT and board.get_mode(19) == MODE_OUTPUT
    assert board.get_mode(17) != MODE_OUTPUT and board.get_mode(24) != MODE_OUTPUT
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    # the pulses reached the board's legs under the configured enable: the same delivery
    from hw.sim.trace import Trace
    assert Trace.read(tmp_path / "other.csv").current_segments(0) == run.trace_obj().current_segments(0)


def test_homeapp_sim_serves_the_configured_pin_map(tmp_path):
    import signal
    import subprocess
    import sys

    import pigpio

    config = tmp_path / "config.toml"
    config.write_text(OTHER_BOARD)
    trace = tmp_path / "sim.csv"
    proc = subprocess.Popen([sys.executable, "-m", "homeapp.cli", "--config", str(config), "sim",
                             "--port", "0", "--trace", str(trace)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        port = int(line.rsplit(":", 1)[1])
        pi = pigpio.pi("127.0.0.1", port)
        try:
            assert pi.connected
            for gpio in (26, 19):             # the configured heartbeat and enable lines
                pi.set_mode(gpio, pigpio.OUTPUT)
            pi.write(26, 1)                   # a heartbeat edge: the watchdog lets enable through
            pi.write(19, 1)
        finally:
            pi.stop()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    rows = [r.split(",") for r in trace.read_text().splitlines()[1:]]
    assert any(sig == "heartbeat" and value == "1" for _t, sig, value in rows), rows
    assert any(sig == "enable" and value == "1" for _t, sig, value in rows), rows


def test_the_app_device_uses_the_configured_pins_and_builds_engines(tmp_path):
    from homeapp.config import config_from_dict
    from homeapp.device import open_device
    from hw.clock import VirtualClock
    from hw.pins import load_pin_map
    from schedules.validate import parse_prescription
    import tomllib

    config = config_from_dict(tomllib.loads(OTHER_BOARD), source=None, data_dir_default=tmp_path / "data")
    device = open_device(config, clock=VirtualClock(), sigterm=False)
    try:
        assert device.sim_board.pins == config.pins == device.stimulator.pins
        assert device.pins != load_pin_map()
        engine = device.new_engine(parse_prescription(rx_dict()))
        assert engine.board is device.stimulator and engine.store is device.store
        assert engine.allow_unsigned is True          # the simulated board takes unsigned
        hands = device.hands
        hands.set_lead(1, False)
        assert not hands.lead_connected(1) and not device.stimulator.contact(1)
        hands.press_estop()
        assert hands.estop_pressed and device.stimulator.estop_pressed()
    finally:
        device.close()
    assert (tmp_path / "data" / "device_key.pem").exists()


def test_the_reference_board_is_written_once_in_board_toml():
    import re
    from pathlib import Path

    from homeapp.config import config_from_dict
    from hw.pins import PinMap, load_pin_map

    assert PinMap() == load_pin_map()
    assert config_from_dict({}, source=None, data_dir_default=Path("/nonexistent")).pins == load_pin_map()
    # no second copy of its numbers in the code that reads it
    source = (Path(__file__).resolve().parents[1] / "hw" / "pins.py").read_text()
    for value in (17, 27, 22, 23, 24, 25, 16, 250):
        assert not re.search(rf"[=:]\s*{value}(?![\w.])", source), f"{value} set in hw/pins.py"


def _wait(cond, timeout_s: float = 10.0) -> bool:
    import time
    end = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < end:
        time.sleep(0.002)
    return cond()


def test_the_devices_engines_take_the_estop_at_once_and_a_press_racing_close_is_handled(tmp_path, capfd):
    """The device hands the driver's e-stop callback to the sessions under way on its
    engines (not to one never started); a
    press racing the device's close is dropped quietly, in pigpio's callback thread."""
    import threading

    from homeapp.config import config_from_dict
    from homeapp.device import open_device
    from hw.clock import VirtualClock
    from schedules.validate import parse_prescription

    rx = parse_prescription(rx_dict())
    crashed: list = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: crashed.append(args)
    try:
        for run in range(4):
            config = config_from_dict({}, source=None, data_dir_default=tmp_path / f"data{run}")
            device = open_device(config, clock=VirtualClock(), sigterm=False)
            try:
                idle = device.new_engine(rx)
                engine = device.new_engine(rx)
                engine.start(threaded=False)
                device.hands.press_estop()
                assert _wait(lambda: engine.state.phase.value == "aborted"), engine.state.phase
                assert idle.state.phase.value == "ready"
                device.hands.release_estop()
            finally:
                device.hands.press_estop()        # the edge races the close
                device.close()
    finally:
        threading.excepthook = previous_hook
    assert crashed == []
    assert "Traceback" not in capfd.readouterr().err
