"""The trace reader that driver, engine and safety tests use (hw/sim/trace.py)."""
from __future__ import annotations

import pytest

from hw.sim.trace import Pulse, Trace, TraceRecorder, SIGNALS, format_value

HEADER = "t_us,signal,value\n"
ZERO = "".join(f"0,{s},{1 if s.startswith('lead') else 0}\n" for s in SIGNALS)


def write(tmp_path, rows: str):
    p = tmp_path / "t.csv"
    p.write_text(HEADER + ZERO + rows)
    return Trace.read(p)


def test_value_at_and_signal(tmp_path):
    tr = write(tmp_path, "10,ch0.ma,12.5\n20,ch0.ma,0\n")
    assert tr.signal("ch0.ma") == [(0, 0.0), (10, 12.5), (20, 0.0)]
    assert [tr.value_at("ch0.ma", t) for t in (9, 10, 19, 20)] == [0.0, 12.5, 12.5, 0.0]


def test_pulses_pair_phases_and_report_odd_ones(tmp_path):
    tr = write(tmp_path, "".join([
        "5,ch0.ma,40\n", "5,enable,1\n",
        "20,ch0.b,1\n", "60,ch0.b,0\n",                                      # B before any A
        "100,ch0.a,1\n", "400,ch0.a,0\n", "450,ch0.b,1\n", "750,ch0.b,0\n",   # biphasic
        "1100,ch0.a,1\n", "1400,ch0.a,0\n",                                  # A, late B
        "2100,ch0.b,1\n", "2200,ch0.b,0\n",
        "2300,ch0.a,1\n", "2400,ch0.a,0\n",                                  # A only
        "2500,enable,0\n", "3100,ch0.a,1\n", "3300,ch0.a,0\n", "3310,ch0.b,1\n", "3510,ch0.b,0\n",
    ]))
    assert tr.pulses(0) == [Pulse(20, 0, 0, 40, 40.0, True), Pulse(100, 300, 50, 300, 40.0, True),
                            Pulse(1100, 300, 700, 100, 40.0, True), Pulse(2300, 100, 0, 0, 40.0, True),
                            Pulse(3100, 200, 10, 200, 40.0, False)]
    assert tr.pulses(1) == []


def test_current_segments_signed_and_gated(tmp_path):
    tr = write(tmp_path, "5,ch1.ma,20\n5,enable,1\n100,ch1.a,1\n300,ch1.a,0\n310,ch1.b,1\n"
                         "400,enable,0\n510,ch1.b,0\n600,enable,1\n700,ch1.a,1\n700,ch1.b,1\n"
                         "800,ch1.a,0\n800,ch1.b,0\n")
    assert tr.current_segments(1) == [(100, 300, 20.0), (310, 400, -20.0)]


def test_recorder_keeps_one_row_per_microsecond():
    rec = TraceRecorder({s: 0 for s in SIGNALS})
    en = SIGNALS.index("enable")
    rec.record(en, 10, 1)
    rec.record(en, 20, 0)
    rec.record(en, 20, 1)  # back to the earlier value within the same µs: no change at all
    rec.record(en, 30, 0)
    rec.record(en, 30, 1)
    rec.record(en, 30, 0)
    assert list(rec.times[en]) == [0, 10, 30] and list(rec.values[en]) == [0, 1, 0]


@pytest.mark.parametrize("value, text", [(0.0, "0"), (50.0, "50"), (30.0048828125, "30.005"),
                                         (99.9755859375, "99.976"), (12.5, "12.5")])
def test_milliamp_formatting(value, text):
    assert format_value("ch0.ma", value) == text
    assert format_value("enable", 1.0) == "1"


def test_not_a_trace_is_refused(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n")
    with pytest.raises(ValueError):
        Trace.read(p)


def test_a_bounded_recorder_keeps_only_the_newest_rows():
    from hw.sim.trace import SIGNALS, TraceRecorder
    rec = TraceRecorder({name: 0 for name in SIGNALS}, max_rows=100)
    sig = SIGNALS.index("ch0.a")
    for k in range(1, 1001):
        rec.record(sig, k * 10, k % 2)
    times = rec.times[sig].tolist()
    assert len(times) <= 100 and times[-1] == 10_000
    assert times == sorted(times) and times[0] > 0  # the oldest rows went first
    unbounded = TraceRecorder({name: 0 for name in SIGNALS})
    for k in range(1, 1001):
        unbounded.record(sig, k * 10, k % 2)
    assert len(unbounded.times[sig]) == 1001


KILLED_MID_WRITE = r"""
import os, signal, sys, threading, time
from hw.sim.trace import SIGNALS, TraceRecorder
path, earlier_size = sys.argv[1], int(sys.argv[2])
rec = TraceRecorder({name: 0 for name in SIGNALS})
for t in range(1, 400_001):
    rec.record(t % 4, t, float(t % 2))
def watch():
    # kill this process the moment anything of the new trace is on disk
    d = os.path.dirname(path)
    while True:
        for name in os.listdir(d):
            size = os.path.getsize(os.path.join(d, name))
            if size > 0 and (name != os.path.basename(path) or size != earlier_size):
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.0005)
threading.Thread(target=watch, daemon=True).start()
rec.write(path)
time.sleep(5)
"""


def test_a_trace_killed_mid_write_never_leaves_a_cut_file(tmp_path):
    """A writer killed while the trace is being written leaves the earlier file whole, or
    none: never rows cut off mid-session with a leg high."""
    import subprocess
    import sys as _sys
    path = tmp_path / "trace.csv"
    earlier = "t_us,signal,value\n" + "".join(f"0,{name},0\n" for name in SIGNALS)
    # the whole new trace, as the killed writer would have written it
    rec = TraceRecorder({name: 0 for name in SIGNALS})
    for t in range(1, 400_001):
        rec.record(t % 4, t, float(t % 2))
    rec.write(tmp_path / "whole.csv")
    whole = (tmp_path / "whole.csv").read_text()
    for _ in range(5):
        path.write_text(earlier)
        done = subprocess.run([_sys.executable, "-c", KILLED_MID_WRITE, str(path),
                               str(len(earlier))],
                              capture_output=True, timeout=120)
        assert done.returncode == -9, done.stderr.decode()[-500:]
        # the kill may land just after the rename on a loaded machine: then the new trace
        # is there whole; never anything in between
        got = path.read_text()
        assert got == earlier or got == whole, f"a cut trace of {len(got)} characters"
