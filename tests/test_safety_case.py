"""The safety case stays true: every test `docs/safety/hazards.md` names exists, every
hazard of issue 9 has a row with a control and a proving test, the current density
figures in `docs/safety/standards.md` follow the device limits and the presets, and the
hazard-specific tests that no other file holds."""
from __future__ import annotations

import datetime as dt
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sessionkit import delivered_between, run_session, rx_dict

ROOT = Path(__file__).resolve().parents[1]
HAZARDS = ROOT / "docs" / "safety" / "hazards.md"
STANDARDS = ROOT / "docs" / "safety" / "standards.md"
TEST_ID = re.compile(r"`(tests/[\w/]+\.py::\w+)`")
US = 1_000_000


def hazard_rows() -> list[list[str]]:
    """The cells of every row of the hazard table (rows whose id is H<number>)."""
    rows = []
    for line in HAZARDS.read_text(encoding="utf-8").splitlines():
        if re.match(r"\|\s*H\d+\s*\|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def collected_ids(files: set[str]) -> set[str]:
    """Node ids pytest collects from `files`, parameters stripped (one subprocess)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           *sorted(files)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    ids = {line.split("[", 1)[0] for line in proc.stdout.splitlines() if "::" in line}
    assert ids, proc.stdout[-2000:] + proc.stderr[-2000:]
    return ids


def test_every_test_named_in_the_hazard_table_exists():
    named = set(TEST_ID.findall(HAZARDS.read_text(encoding="utf-8")))
    assert len(named) >= 30, "the hazard table names suspiciously few tests"
    files = {n.split("::", 1)[0] for n in named}
    missing_files = sorted(f for f in files if not (ROOT / f).is_file())
    assert not missing_files, f"hazards.md names test files that do not exist: {missing_files}"
    missing = sorted(named - collected_ids(files))
    assert not missing, f"hazards.md names tests that pytest does not collect: {missing}"


def test_every_hazard_row_has_a_cause_a_severity_a_control_and_a_test():
    rows = hazard_rows()
    assert rows
    for row in rows:
        assert len(row) == 6, row
        ident, hazard, cause, severity, control, tests = row
        assert hazard and cause and control, row
        assert re.match(r"S[1-5]\b", severity), (ident, severity)
        assert TEST_ID.search(tests), f"{ident} ({hazard}) names no proving test"
    idents = [row[0] for row in rows]
    assert len(idents) == len(set(idents)), idents


@pytest.mark.parametrize("words", [
    ("too much current",), ("dc", "charge"), ("after stop",), ("e-stop",),
    ("app dies",), ("electrode reconnects",), ("wrong program",), ("expired", "altered prescription"),
    ("electrode loss", "current density"), ("lost", "altered log"), ("not allowed",),
    ("pigpiod reachable from the network",), ("unsupported board",),
], ids=lambda w: w[0].replace(" ", "-"))
def test_each_hazard_of_issue_9_has_a_row(words):
    hazards = [row[1].lower() for row in hazard_rows()]
    assert any(all(w in h for w in words) for h in hazards), f"no hazard row about {words}"


# --------------------------------------------------------------------- current density

def rms_ma(peak_ma: float, pulse_us: float, hz: float) -> float:
    """R.m.s. current during a contraction: two phases of `pulse_us` per period."""
    return peak_ma * math.sqrt(2 * pulse_us * 1e-6 * hz)


def doc_figure(text: str, name: str) -> float:
    m = re.search(rf"^\|\s*{re.escape(name)}\s*\|\s*([\d.]+)\s*(?:mA|cm²)\s*\|", text, re.M)
    assert m, f"standards.md has no figure {name!r}"
    return float(m.group(1))


def driver_peak_ma() -> float:
    """The highest current the driver sets on the reference board: asked for far more
    than any limit, on the simulated board, read back from what the board's DAC holds."""
    from homeapp.config import config_from_dict
    from homeapp.device import open_device
    from hw.clock import VirtualClock

    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        config = config_from_dict({}, source=None, data_dir_default=Path(tmp))
        device = open_device(config, clock=VirtualClock(), device_key=False, sigterm=False)
        try:
            set_ma = device.stimulator.set_amplitude(0, 10_000.0)
            assert device.sim_board.amplitude_ma(0) == pytest.approx(set_ma, abs=1e-3)
            return set_ma
        finally:
            device.close()


def test_the_driver_peak_is_the_board_full_scale_within_the_device_limit():
    from hw.pins import load_pin_map
    from schedules.limits import DEVICE_LIMITS

    full_scale_ma = load_pin_map().dac_full_scale_ma     # hw/board.toml, what the driver scales by
    assert driver_peak_ma() == pytest.approx(min(full_scale_ma, DEVICE_LIMITS["max_ma"].high), abs=0.05)


def test_current_density_figures_in_standards_md_match_the_device_limits():
    from schedules.limits import DEVICE_LIMITS
    from schedules.presets import PRESETS, make_prescription
    from schedules.validate import parse_prescription

    text = STANDARDS.read_text(encoding="utf-8")
    # the peak the driver really delivers: the board's DAC full scale within the device limit
    peak = round(driver_peak_ma(), 1)
    assert peak <= DEVICE_LIMITS["max_ma"].high
    worst = rms_ma(peak, DEVICE_LIMITS["pulse_us"].high, DEVICE_LIMITS["hz"].high)
    assert doc_figure(text, "worst-case r.m.s. current during a contraction") == round(worst, 1)
    assert doc_figure(text, "electrode area for 2 mA/cm² r.m.s. at the worst case") == round(worst / 2, 1)
    assert doc_figure(text, "electrode area for 2 mA/cm² at the peak current") == round(peak / 2, 1)
    day = dt.date(2026, 11, 21)
    rows = dict(re.findall(r"^\| `([\w-]+)` \| (.+) \|$", text, re.M))
    assert set(rows) == set(PRESETS), "the preset table must list every preset, and only them"
    for name in PRESETS:
        rx = parse_prescription(make_prescription(name, patient_id="P", clinician_id="C", issued=day,
                                                  expires=day + dt.timedelta(days=60)), today=day)
        cap = max(ch.max_ma for ch in rx.channels)

        def widest(block, field):  # a patient may move an adjustable value to its maximum
            rng = block.ranges.get(field)
            return rng.max if rng is not None else getattr(block, field)

        rms = max(rms_ma(cap, widest(b, "pulse_us"), widest(b, "hz")) for b in rx.blocks)
        cells = [float(c) for c in rows[name].split(" | ")]
        assert cells == [cap, round(rms, 1), round(rms / 2, 1)], (name, cells)


# ------------------------------------------------ H6: an electrode reconnects mid-session

def test_a_reconnected_electrode_starts_from_zero_and_rises_at_the_limited_rate(tmp_path, capsys):
    from schedules.limits import INTENSITY_RISE_MA_PER_S

    run = run_session(tmp_path, rx_dict(), [
        {"t": 0, "do": "intensity", "channel": 0, "ma": 30},
        {"t": 11.3, "do": "lead_off", "channel": 0},   # mid-contraction at about 30 mA
        {"t": 13, "do": "lead_on", "channel": 0},
        {"t": 13.5, "do": "resume"},                    # the cut cycle plays again from 13.5 s
        {"t": 15, "do": "intensity", "channel": 0, "ma": 30},
    ], capsys=capsys)
    assert run.code == 0, run.stderr
    tr = run.trace_obj()
    assert max(abs(ma) for *_, ma in delivered_between(tr, 0, 10 * US, int(11.3 * US))) > 25
    # reconnected and resumed: the old set-point does not come back by itself
    assert delivered_between(tr, 0, int(11.3 * US), 15 * US) == []
    # asked again: it rises from zero at the limited rate (one 100 ms tick of slack)
    after = delivered_between(tr, 0, 15 * US, 30 * US)
    assert after
    for t0, _, ma in after:
        allowed = INTENSITY_RISE_MA_PER_S * ((t0 - 15 * US) / US + 0.1)
        assert abs(ma) <= allowed + 1e-9, (t0, ma, allowed)


# --------------------------------------------------------- H14: an unsupported board

def test_the_driver_refuses_a_board_that_is_not_supported(sim, pin_map, virtual_clock, monkeypatch):
    # pigpiod answers HWVER with the board revision; 0xC04170 is a Raspberry Pi 5 Model B
    # 4 GB. pigpio cannot time the Pi 5's RP1 GPIO, so the driver must refuse the board
    # before it drives a single line (the installer's check does not cover a system
    # installed by hand, an image moved to another board, or a Compute Module 5).
    import hw.sim.protocol as protocol
    from hw.driver import Stimulator
    from hw.exc import HwError

    monkeypatch.setattr(protocol, "HW_REVISION", 0xC04170)
    board, server = sim
    with pytest.raises(HwError, match="(?i)pi 5|not supported|unsupported"):
        Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                   max_ma=(10.0, 10.0)).close()
    assert board.trace().signal("enable") == [(0, 0)]


# ------------------------------------------ H10: the log says what the board delivered

@pytest.mark.parametrize("off_s", [6, 0], ids=["intermittent", "continuous"])
def test_the_log_records_the_contractions_and_peak_the_board_delivered(tmp_path, capsys, off_s):
    # The clinician raises or lowers the program from the log: a log that says less was
    # delivered than the board delivered is a false history (hazard H10, severity S3).
    block = {"label": "b", "minutes": 0.5, "hz": 50, "pulse_us": 300, "on_s": 4, "off_s": off_s,
             "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"}
    run = run_session(tmp_path, rx_dict(channels=[30.0], blocks=[block]),
                      [{"t": 0, "do": "intensity", "channel": 0, "ma": 10}], capsys=capsys)
    assert run.code == 0 and run.summary["status"] == "completed", run.stderr
    delivered_peak = max(abs(ma) for *_, ma in run.trace_obj().current_segments(0))
    assert delivered_peak > 9
    logged = run.export()["sessions"][0]
    assert logged["channels"][0]["contractions"] == logged["planned_contractions"]
    assert logged["channels"][0]["peak_ma"] == pytest.approx(delivered_peak, abs=0.05)
