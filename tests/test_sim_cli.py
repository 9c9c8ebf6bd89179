"""`homeapp sim` as contract.md specifies it: first line, free port, trace on SIGTERM/SIGINT."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pigpio
import pytest

from hw.sim import Trace


def start_sim(tmp_path, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "homeapp.cli", "sim", "--port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline().strip()
    return proc, first


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sim_serves_pigpio_and_writes_the_trace_on_signal(tmp_path, sig):
    trace = tmp_path / "trace.csv"
    proc, first = start_sim(tmp_path, "--trace", str(trace))
    try:
        assert first.startswith("listening on 127.0.0.1:")
        port = int(first.rsplit(":", 1)[1])
        assert port > 0
        pi = pigpio.pi("127.0.0.1", port)
        assert pi.connected
        pi.write(24, 1)
        pi.write(25, 1)
        time.sleep(0.35)  # real time: the watchdog fires 250 ms after the edge
        pi.stop()
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    tr = Trace.read(trace)
    (t_on, on), (t_off, off) = tr.signal("enable")[1:]
    assert (on, off) == (1, 0)
    assert t_off - t_on == pytest.approx(250_000, abs=5_000)


def test_sim_without_trace_exits_cleanly(tmp_path):
    proc, first = start_sim(tmp_path)
    try:
        assert first.startswith("listening on ")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_sim_refuses_a_trace_in_a_missing_folder(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "homeapp.cli", "sim", "--port", "0",
                           "--trace", str(tmp_path / "nope" / "t.csv")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and proc.stdout == ""
