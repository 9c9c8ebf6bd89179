"""The progression rules (schedules/progression.py) over real logs: every session below is run
by `homeapp session run --virtual-time --start-at` on the simulated board and read back with
`homeapp log export`, exactly what a device uploads and the clinic exports."""
from __future__ import annotations

import ast
import contextlib
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from homeapp.cli import main
from schedules import progression
from schedules.progression import suggest
from schedules.validate import check_prescription
from tests.review_demo import _session, short_rx

UTC = dt.timezone.utc
ISSUED = dt.date(2026, 11, 6)
TODAY = dt.date(2026, 11, 15)          # ten days into the program
GOOD = {"pain": 2, "effort": 4}


def program(**changes) -> dict:
    """review_demo's one-minute program, four sessions a week; `changes` at the top level,
    `cap`/`block` for the first channel's cap and the block's fields."""
    rx = short_rx(issued=ISSUED, per_week=4)
    rx["channels"][0]["max_ma"] = changes.pop("cap", 60)
    rx["blocks"][0].update(changes.pop("block", {}))
    rx.update(changes)
    return rx


def log_of(tmp_path: Path, rx: dict, days: list[int], *, ma: float | None = None,
           report=GOOD, extra: dict[int, list[dict]] | None = None) -> dict:
    """Run one session on each of `days` (days after ISSUED, 09:00 UTC), the patient turning
    channel 0 up to `ma` (default: the cap) and reporting `report` (a dict, or a function of
    the day); return the log as `homeapp log export` prints it."""
    work = tmp_path / f"log-{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    rx_path = work / "rx.json"
    rx_path.write_text(json.dumps(rx))
    db = work / "device.db"
    for day in days:
        target = rx["channels"][0]["max_ma"] if ma is None else ma
        actions = [{"t": 1, "do": "intensity", "channel": 0, "ma": target}]
        actions += (extra or {}).get(day, [])
        rep = report(day) if callable(report) else report
        actions.append({"t": 0, "do": "report", **rep})
        _session(work, rx_path, db, dt.datetime.combine(ISSUED + dt.timedelta(days=day), dt.time(9), tzinfo=UTC),
                 actions)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["log", "export", "--db", str(db)]) == 0
    return json.loads(out.getvalue())


def advise(export: dict, rx: dict) -> progression.Suggestion:
    return suggest(export, rx, today=TODAY, tz=UTC)


def test_reaching_the_cap_with_little_pain_and_good_adherence_raises_the_cap(tmp_path):
    rx = program()
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8]), rx)
    assert s.change and s.codes[0] == "raise_cap"
    assert [(c.path, c.old, c.new) for c in s.changes] == [("channels[0].max_ma", 60, 65)]
    assert "cap_reached" in s.codes and "tolerated" in s.codes
    p = s.proposed
    assert check_prescription(p, today=TODAY) == []
    assert p["id"] == "rx-knee-20261115" and p["issued"] == "2026-11-15" and p["expires"] == "2027-02-13"
    assert "signature" not in p
    # only the cap moved: the rest of the program is the one in force
    assert p["blocks"] == rx["blocks"] and p["sessions_per_week"] == rx["sessions_per_week"]
    assert rx["channels"][0]["max_ma"] == 60          # the input is never changed


def test_asking_for_more_than_the_cap_counts_as_reaching_it(tmp_path):
    rx = program()
    # the patient stops at 55 mA then asks for 70: refused (logged), so the cap held them back
    ask = {d: [{"t": 30, "do": "intensity", "channel": 0, "ma": 70}] for d in (1, 3, 5, 7, 8)}
    export = log_of(tmp_path, rx, [1, 3, 5, 7, 8], ma=55, extra=ask)
    assert any(e["kind"] == "refused" for e in export["sessions"][0]["events"])
    assert advise(export, rx).codes[0] == "raise_cap"


def test_below_the_cap_there_is_room_left_and_no_change(tmp_path):
    rx = program()
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8], ma=40), rx)
    assert not s.change and s.codes == ["below_cap"]
    assert "40 of 60 mA" in s.reasons[0].text


def test_pain_of_six_holds_the_program(tmp_path):
    rx = program()
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8], report=lambda d: {"pain": 6 if d == 5 else 2, "effort": 4}), rx)
    assert not s.change and "pain_high" in s.codes


def test_rising_pain_holds_the_program(tmp_path):
    rx = program()
    pains = {1: 0, 3: 1, 5: 2, 7: 3, 8: 3}
    s = advise(log_of(tmp_path, rx, list(pains), report=lambda d: {"pain": pains[d], "effort": 4}), rx)
    assert not s.change and "pain_rising" in s.codes and "pain_high" not in s.codes


def test_low_adherence_holds_the_program(tmp_path):
    rx = program(sessions_per_week=5)
    s = advise(log_of(tmp_path, rx, [1, 4, 8]), rx)
    assert not s.change and "adherence_low" in s.codes
    assert "%" in next(r.text for r in s.reasons if r.code == "adherence_low")


def test_an_estop_and_a_session_ended_early_hold_the_program(tmp_path):
    rx = program()
    incident = {5: [{"t": 15, "do": "estop"}, {"t": 20, "do": "estop_release"}], 7: [{"t": 25, "do": "stop"}]}
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8], extra=incident), rx)
    assert not s.change
    assert "incidents" in s.codes and "ended_early" in s.codes
    assert "e-stop" in next(r.text for r in s.reasons if r.code == "incidents")


def test_hard_effort_holds_the_program(tmp_path):
    rx = program()
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8], report={"pain": 1, "effort": 8}), rx)
    assert not s.change and "effort_hard" in s.codes


def test_too_few_sessions_and_too_early(tmp_path):
    rx = program()
    export = log_of(tmp_path, rx, [1, 3])
    assert advise(export, rx).codes == ["too_few_sessions"]
    young = program(issued=(TODAY - dt.timedelta(days=3)).isoformat(), id="rx-young-20261112")
    export = log_of(tmp_path, young, [6, 7, 8])
    assert advise(export, young).codes == ["too_early"]


def test_sessions_of_another_program_do_not_count(tmp_path):
    old = program(id="rx-old-20261106")
    export = log_of(tmp_path, old, [1, 3, 5, 7, 8])
    assert advise(export, program()).codes == ["too_few_sessions"]


def test_at_the_device_limit_the_contraction_lengthens_within_the_guidance(tmp_path):
    rx = program(cap=100)
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8]), rx)
    assert s.codes[0] == "lengthen_contraction"
    assert [(c.path, c.old, c.new) for c in s.changes] == [("blocks[0].on_s", 5, 6)]
    assert "cap_at_device_limit" in s.codes
    assert check_prescription(s.proposed, today=TODAY) == []


def test_then_the_rest_shortens(tmp_path):
    rx = program(cap=100, block={"on_s": 10, "off_s": 10})
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8]), rx)
    assert s.codes[0] == "shorten_rest"
    assert [(c.path, c.old, c.new) for c in s.changes] == [("blocks[0].off_s", 10, 8)]
    assert "lengthen_contraction_at_limit" in s.codes


def test_a_preset_that_departs_from_the_guidance_keeps_its_own_rest(tmp_path):
    # type 2b fibres rest 36 s on purpose (docs/presets.md): the rules do not shorten it
    rx = program(cap=100, id="rx-fibre-type-2b-20261106", block={"on_s": 10, "off_s": 36, "minutes": 2})
    assert progression.preset_of(rx).name == "fibre-type-2b"
    s = advise(log_of(tmp_path, rx, [1, 3, 5, 7, 8]), rx)
    assert not s.change and s.codes[0] == "at_limits"
    rest = next(r for r in s.reasons if r.code == "shorten_rest_at_limit")
    assert "preset fibre-type-2b" in rest.text


def test_a_step_the_validator_would_refuse_is_never_proposed(tmp_path):
    # alternating needs off_s >= on_s: shortening a 10 s rest under a 10 s contraction is refused
    rx = program(cap=100, channels=[{"label": "left", "max_ma": 100}, {"label": "right", "max_ma": 100}],
                 block={"on_s": 10, "off_s": 10, "pattern": "alternating"})
    export = log_of(tmp_path, rx, [1, 3, 5, 7, 8])
    s = advise(export, rx)
    assert not s.change and s.codes[0] == "at_limits"
    refused = next(r for r in s.reasons if r.code == "invalid_step")
    assert "off_s >= on_s" in refused.text


def test_an_invalid_prescription_gets_its_problems_not_a_traceback():
    rx = program(block={"hz": 400})
    s = suggest({"sessions": []}, rx, today=TODAY, tz=UTC)
    assert s.codes == ["rx_invalid"] and "blocks[0].hz" in s.reasons[0].text


def test_the_module_is_pure():
    tree = ast.parse(Path(progression.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." if node.level else node.module.split(".")[0])
    import sys
    assert all(m == "." or m == "schedules" or m in sys.stdlib_module_names for m in imported), imported


@pytest.mark.parametrize("cap", [2, 60, 97, 99.5])
def test_the_raised_cap_stays_within_the_device_limit(tmp_path, cap):
    rx = program(cap=cap)
    sessions = [{"id": f"s{d}", "prescription_id": rx["id"],
                 "started_at": dt.datetime.combine(ISSUED + dt.timedelta(days=d), dt.time(9), tzinfo=UTC).isoformat(),
                 "status": "completed", "planned_contractions": 6,
                 "channels": [{"contractions": 6, "peak_ma": cap, "mean_ma": cap}], "events": [],
                 "report": {"pain": 1, "effort": 3}} for d in (1, 3, 5, 7, 8)]
    s = advise({"sessions": sessions}, rx)
    assert s.change and 0 < s.proposed["channels"][0]["max_ma"] - cap <= 5
    assert s.proposed["channels"][0]["max_ma"] <= 100
    assert check_prescription(s.proposed, today=TODAY) == []


def test_a_preset_is_known_by_its_id_or_by_its_blocks_in_either_language():
    from schedules.presets import make_prescription
    args = dict(patient_id="P-1", clinician_id="C-1", issued=ISSUED, expires=ISSUED + dt.timedelta(days=90))
    for lang in ("en", "sv"):
        rx = make_prescription("quadriceps-after-knee-surgery", rx_id="rx-mine", lang=lang, **args)
        assert progression.preset_of(rx).name == "quadriceps-after-knee-surgery"
    assert progression.preset_of(make_prescription("fibre-type-2b", **args)).name == "fibre-type-2b"
    assert progression.preset_of(program()) is None       # a 35 Hz "strength" block is no preset
