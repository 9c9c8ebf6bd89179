"""The prescription model and validator (issue 2, part 4): every problem named by its
field path, device limits from schedules/limits.py, cross-field rules at the extremes a
patient can reach, and a JSON Schema that agrees with the validator where it can."""
from __future__ import annotations

import dataclasses
import functools
import datetime as dt
import json
import math
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from schedules.limits import BLOCK_NUMERIC_FIELDS, DEVICE_LIMITS, SCHEDULE_LIMITS, SESSION_MAX_MINUTES
from schedules.model import Range
from schedules.validate import (
    VALIDATOR_ONLY_RULES,
    PrescriptionError,
    block_max_duration_s,
    check_prescription,
    json_schema,
    load_prescription,
    parse_prescription,
    schema_path,
)
from tests.strategies import valid_prescriptions

DATA = Path(__file__).parent / "data"
# The data files' dates are fixed; they are judged as of this day, whatever the clock says.
DATA_TODAY = dt.date(2026, 11, 21)
TODAY = dt.date.today()


def example(today: dt.date = TODAY) -> dict:
    """contract.md's example, in force on `today`."""
    d = json.loads((DATA / "rx-valid-contract-example.json").read_text())
    d["issued"] = (today - dt.timedelta(days=1)).isoformat()
    d["expires"] = (today + dt.timedelta(days=90)).isoformat()
    return d


def problems_after(change, today: dt.date = TODAY) -> list[str]:
    d = example(today)
    change(d)
    return check_prescription(d, today=today)


def adj(value, lo, hi):
    return {"value": value, "min": lo, "max": hi}


# ------------------------------------------------------------------ valid prescriptions

def test_contract_example_parses_into_the_model():
    rx = load_prescription(DATA / "rx-valid-contract-example.json", today=DATA_TODAY)
    assert rx.id == "rx-0001" and rx.patient_id == "P-0042" and rx.clinician_id == "C-0007"
    assert rx.issued == dt.date(2026, 11, 20) and rx.expires == dt.date(2027, 2, 20)
    assert [c.max_ma for c in rx.channels] == [60]
    warm, strength = rx.blocks
    assert (warm.hz, warm.pulse_us, warm.on_s, warm.off_s, warm.cycles) == (8, 250, 5, 5, 18)
    assert (strength.hz, strength.cycles, strength.ramp_up_s, strength.ramp_down_s) == (50, 15, 2, 1)
    assert rx.planned_contractions == 33
    assert rx.duration_s == 18 * 60
    assert rx.signature is None and not rx.supervised


def test_two_channel_adjustable_example_parses():
    rx = load_prescription(DATA / "rx-valid-two-channels-adjustable.json", today=DATA_TODAY)
    alt, cool = rx.blocks
    assert len(rx.channels) == 2 and rx.supervised
    assert alt.pattern == "alternating" and alt.hz == 150 and alt.ramp_up_s == 5
    assert alt.ranges["on_s"] == Range(10, 60) and alt.ranges["minutes"] == Range(10, 30)
    assert "hz" not in alt.ranges
    assert cool.continuous and cool.pattern == "synchronous" and cool.label == "cool-down"
    # The patient moves a value within its range, never beyond.
    assert alt.with_value("pulse_us", 450).pulse_us == 450
    with pytest.raises(ValueError, match="outside the prescribed range"):
        alt.with_value("pulse_us", 460)


def test_model_is_immutable_and_source_is_a_private_copy():
    d = example()
    rx = parse_prescription(d, today=TODAY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rx.blocks[0].hz = 150  # type: ignore[misc]
    with pytest.raises(TypeError):
        rx.source["id"] = "changed"  # type: ignore[index]
    d["blocks"][0]["hz"] = 400
    assert rx.source["blocks"][0]["hz"] == 8
    assert dict(rx.source) == example()  # what the clinician signed, field for field


def test_labels_and_pattern_are_optional():
    def strip(d):
        for b in d["blocks"]:
            del b["label"], b["pattern"]
        del d["channels"][0]["label"]
    d = example()
    strip(d)
    rx = parse_prescription(d, today=TODAY)
    assert [b.label for b in rx.blocks] == ["block 1", "block 2"]
    assert rx.channels[0].label == "channel 1"
    assert {b.pattern for b in rx.blocks} == {"synchronous"}


def test_integral_floats_count_as_whole_numbers():
    assert problems_after(lambda d: d.update(sessions_per_week=5.0)) == []
    assert problems_after(lambda d: d.update(sessions_per_week=2.5)) == [
        "sessions_per_week: 2.5 is not a whole number"]


def test_a_valid_signature_field_is_kept():
    sig = {"alg": "ed25519", "key_id": "ab12", "value": "AAAA"}
    rx = parse_prescription({**example(), "signature": sig}, today=TODAY)
    assert dict(rx.signature) == sig


# ---------------------------------------------------------- the invalid cases

# (file, the line `rx check` must print): the messages of the contract, exactly.
INVALID_FILES = [
    ("rx-invalid-hz-400.json", "blocks[1].hz: 400 is above the device limit of 150 (allowed 1 to 150 Hz)"),
    ("rx-invalid-pulse-5000.json",
     "blocks[0].pulse_us: 5000 is above the device limit of 450 (allowed 50 to 450 µs)"),
    ("rx-invalid-cap-250.json", "channels[0].max_ma: 250 is above the device limit of 100 (allowed 0 to 100 mA)"),
    ("rx-invalid-ramps-longer-than-contraction.json",
     "blocks[0]: ramp_up_s + ramp_down_s = 7 is longer than on_s = 5"),
    ("rx-invalid-expired.json", "expires: 2026-01-01 has passed (today is 2026-11-21)"),
    ("rx-invalid-unknown-format.json", 'format: "x" is not supported (expected "homeapp.prescription/1")'),
    ("rx-invalid-no-channels.json", "channels: 0 channels given (allowed 1 to 2)"),
    ("rx-invalid-negative-rest.json", "blocks[0].off_s: -5 is below the device limit of 0 (allowed 0 to 120 s)"),
    ("rx-invalid-hz-as-text.json", 'blocks[0].hz: "fifty" is not a number'),
    ("rx-invalid-unknown-field.json", "blocks[1].pulse_width: unknown field (did you mean pulse_us?)"),
]


@pytest.mark.parametrize("name,line", INVALID_FILES)
def test_each_invalid_file_is_refused_with_its_field_named(name, line):
    with pytest.raises(PrescriptionError) as e:
        load_prescription(DATA / name, today=DATA_TODAY)
    assert line in e.value.problems
    assert line in str(e.value)


def test_a_typo_is_reported_both_as_unknown_and_as_the_missing_field():
    problems = check_prescription(json.loads((DATA / "rx-invalid-unknown-field.json").read_text()),
                                  today=DATA_TODAY)
    assert problems == ["blocks[1].pulse_width: unknown field (did you mean pulse_us?)",
                        "blocks[1].pulse_us: missing (a number, 50 to 450 µs)"]


def test_every_problem_is_reported_not_only_the_first():
    problems = check_prescription(json.loads((DATA / "rx-invalid-many-problems.json").read_text()),
                                  today=DATA_TODAY)
    assert sorted(problems) == sorted([
        "patient_id: missing (text)",
        "expires: 2026-01-01 has passed (today is 2026-11-21)",
        'supervision: "nurse" is not one of "none", "caregiver"',
        "channels[0].max_ma: 250 is above the device limit of 100 (allowed 0 to 100 mA)",
        "blocks[0].pulse_us: 5000 is above the device limit of 450 (allowed 50 to 450 µs)",
        'blocks[0].pattern: "alternating" needs 2 channels (1 given)',
        "blocks[1].hz: 400 is above the device limit of 150 (allowed 1 to 150 Hz)",
        "blocks[1].on_s: true is not a number",
    ])


# --------------------------------------------------------------- shape and field rules

@pytest.mark.parametrize("change,line", [
    (lambda d: d["blocks"][0].update(hz=True), "blocks[0].hz: true is not a number"),
    (lambda d: d["blocks"][0].update(hz=None), "blocks[0].hz: null is not a number"),
    (lambda d: d["blocks"][0].update(hz=[50]), "blocks[0].hz: [50] is not a number"),
    (lambda d: d["blocks"][0].update(hz=math.nan), "blocks[0].hz: nan is not a finite number"),
    (lambda d: d["blocks"][0].update(minutes=math.inf), "blocks[0].minutes: inf is not a finite number"),
    (lambda d: d["blocks"][0].update(hz=0.5), "blocks[0].hz: 0.5 is below the device limit of 1 (allowed 1 to 150 Hz)"),
    (lambda d: d["blocks"][0].update(hz=150.0000001),
     "blocks[0].hz: 150.0000001 is above the device limit of 150 (allowed 1 to 150 Hz)"),
    (lambda d: d["blocks"][0].update(on_s=61), "blocks[0].on_s: 61 is above the device limit of 60 (allowed 1 to 60 s)"),
    (lambda d: d["blocks"][0].update(off_s=121),
     "blocks[0].off_s: 121 is above the device limit of 120 (allowed 0 to 120 s)"),
    (lambda d: d["blocks"][0].update(minutes=0.25),
     "blocks[0].minutes: 0.25 is below the device limit of 0.5 (allowed 0.5 to 60 min)"),
    (lambda d: d["blocks"][0].update(pattern="wave"),
     'blocks[0].pattern: "wave" is not one of "synchronous", "alternating"'),
    (lambda d: d["blocks"][0].update(label=""), "blocks[0].label: is empty"),
    (lambda d: d["channels"][0].update(max_ma=-1),
     "channels[0].max_ma: -1 is below the device limit of 0 (allowed 0 to 100 mA)"),
    (lambda d: d["channels"][0].update(gain=2), "channels[0].gain: unknown field (known fields: label, max_ma)"),
    (lambda d: d["channels"].append({"max_ma": 1}) or d["channels"].append({"max_ma": 1}),
     "channels: 3 channels given (allowed 1 to 2)"),
    (lambda d: d.update(channels={"max_ma": 60}), "channels: expected a list of 1 to 2 channels, got an object"),
    (lambda d: d.update(blocks=[]), "blocks: no blocks (at least one is needed)"),
    (lambda d: d["blocks"].append("strength"), "blocks[2]: expected an object, got text"),
    (lambda d: d.update(sessions_per_week=30), "sessions_per_week: 30 is above the limit of 21 (allowed 1 to 21)"),
    (lambda d: d.update(min_hours_between=-1), "min_hours_between: -1 is below the limit of 0 (allowed 0 to 24 h)"),
    (lambda d: d.update(id="  "), "id: is empty"),
    (lambda d: d.update(sessions_per_week=8),
     "sessions_per_week: 8 cannot fit in a week of at most 1 per day (max_sessions_per_day); at most 7"),
    (lambda d: d["blocks"][0].update(hz=10**5000), "blocks[0].hz: a huge number is above the device limit of 150 (allowed 1 to 150 Hz)"),
    (lambda d: d.update(clinician_id=7), "clinician_id: 7 is not text"),
    (lambda d: d.update(notes="x"), "notes: unknown field (known fields: format, id, patient_id, clinician_id, "
                                    "issued, expires, valid_from, sessions_per_week, max_sessions_per_day, min_hours_between, "
                                    "supervision, channels, blocks, signature)"),
    (lambda d: d.pop("format"), 'format: missing (expected "homeapp.prescription/1")'),
    (lambda d: d.update(format="homeapp.prescription/2"),
     'format: "homeapp.prescription/2" is not supported (expected "homeapp.prescription/1")'),
    (lambda d: d.update(signature="trust me"), "signature: expected an object, got text"),
    (lambda d: d.update(signature={"alg": "ed25519", "key_id": "k"}), "signature.value: missing"),
])
def test_field_rule(change, line):
    assert line in problems_after(change)


def test_unknown_format_is_the_only_problem_reported():
    # The fields of another format may mean other things: judging them as /1 would mislead.
    assert problems_after(lambda d: d.update(format="x", channels=[])) == [
        'format: "x" is not supported (expected "homeapp.prescription/1")']


def test_not_an_object():
    assert check_prescription(["homeapp.prescription/1"]) == ["prescription: expected a JSON object, got a list"]
    with pytest.raises(PrescriptionError):
        parse_prescription(None)


# -------------------------------------------------------------------------------- dates

def test_dates():
    t = dt.date(2026, 11, 21)
    d = example(t)
    assert check_prescription({**d, "issued": "2026-11-21", "expires": "2026-11-21"}, today=t) == []
    assert check_prescription({**d, "issued": "2026-11-22"}, today=t) == [
        "issued: 2026-11-22 is in the future (today is 2026-11-21); issued is the day the prescription "
        "was written: to start sessions later, set valid_from"]
    assert check_prescription({**d, "expires": "2026-11-20"}, today=t) == [
        "expires: 2026-11-20 has passed (today is 2026-11-21)"]
    assert check_prescription({**d, "issued": "2026-11-25", "expires": "2026-11-24"}, today=t) == [
        "expires: 2026-11-24 is before issued 2026-11-25",
        "issued: 2026-11-25 is in the future (today is 2026-11-21); issued is the day the prescription "
        "was written: to start sessions later, set valid_from"]
    assert check_prescription({**d, "expires": "2027-02-30"}, today=t) == [
        'expires: "2027-02-30" is not a date (expected YYYY-MM-DD)']
    assert check_prescription({**d, "issued": "20261120"}, today=t) == [
        'issued: "20261120" is not a date (expected YYYY-MM-DD)']


def test_today_may_be_given_as_a_datetime():
    t = dt.datetime(2026, 11, 21, 23, 59)
    assert check_prescription(example(t.date()), today=t) == []


def test_today_defaults_to_the_local_date():
    d = example(TODAY)
    assert check_prescription(d) == []
    d["expires"] = (TODAY - dt.timedelta(days=1)).isoformat()
    assert [p.split(":")[0] for p in check_prescription(d)] == ["expires"]


# ----------------------------------------------------------------- cross-field rules

def test_ramps_may_fill_the_contraction_exactly():
    assert problems_after(lambda d: d["blocks"][0].update(ramp_up_s=3, ramp_down_s=2)) == []
    # Decimal sums that meet the rule on paper meet it here (0.1 + 0.2 > 0.3 in binary).
    assert problems_after(lambda d: d["blocks"][0].update(on_s=1.3, ramp_up_s=0.1, ramp_down_s=1.2)) == []


def test_cross_field_rules_hold_at_the_patients_extremes():
    # Ramps must fit the shortest contraction the patient can choose.
    assert problems_after(lambda d: d["blocks"][1].update(on_s=adj(10, 2, 10))) == [
        "blocks[1]: ramp_up_s + ramp_down_s = 3 is longer than on_s = 2 (at its smallest)"]
    assert problems_after(lambda d: d["blocks"][1].update(ramp_up_s=adj(2, 1, 5), ramp_down_s=adj(1, 0, 5.5))) == [
        "blocks[1].ramp_down_s.max: 5.5 is above the device limit of 5 (allowed 0 to 5 s)"]
    assert problems_after(lambda d: d["blocks"][1].update(ramp_up_s=adj(2, 1, 5), on_s=adj(10, 5, 10))) == [
        "blocks[1]: ramp_up_s + ramp_down_s = 6 (at their largest) is longer than on_s = 5 (at its smallest)"]


def test_ramps_filling_the_contraction_at_the_extremes_are_allowed():
    assert problems_after(lambda d: d["blocks"][1].update(on_s=adj(10, 3, 10))) == []
    assert problems_after(lambda d: d["blocks"][1].update(ramp_up_s=adj(2, 1, 5), ramp_down_s=adj(1, 0, 5))) == []


def test_session_total_with_the_longest_minutes():
    # 3 min warm-up + 15 cycles of 60 s: 18 min. 87 min of warm-up makes 102.
    assert problems_after(lambda d: d["blocks"][0].update(minutes=60)) == []
    over = problems_after(lambda d: d["blocks"].append(dict(d["blocks"][1], minutes=30)))
    assert over == []  # 3 + 15 + 30 = 48
    assert problems_after(lambda d: d["blocks"][0].update(minutes=adj(3, 3, 60))
                          or d["blocks"].append(dict(d["blocks"][1], minutes=15))) == []  # 60+15+15
    assert problems_after(lambda d: d["blocks"][0].update(minutes=adj(3, 3, 60))
                          or d["blocks"].append(dict(d["blocks"][1], minutes=16))) == [
        "blocks: session total 91 min (with the longest adjustable settings) is longer than the limit of 90 min"]
    assert problems_after(lambda d: d["blocks"][0].update(minutes=60)
                          or d["blocks"].append(dict(d["blocks"][1], minutes=20))) == [
        "blocks: session total 95 min is longer than the limit of 90 min"]
    # An adjustable frequency does not change the length: no "longest settings" there.
    assert problems_after(lambda d: d["blocks"][0].update(minutes=60, hz=adj(8, 8, 9))
                          or d["blocks"].append(dict(d["blocks"][1], minutes=20))) == [
        "blocks: session total 95 min is longer than the limit of 90 min"]


def test_session_total_counts_whole_cycles_not_minutes():
    # 60 min of 180 s cycles is 20 cycles; 29.9 more minutes of 180 s cycles round up to
    # 10 cycles = 30 min: 90 min exactly is allowed, one cycle more is not.
    long = {"minutes": 60, "hz": 50, "pulse_us": 300, "on_s": 60, "off_s": 120, "ramp_up_s": 0, "ramp_down_s": 0}
    assert problems_after(lambda d: d.update(blocks=[long, dict(long, minutes=28.6)])) == []
    assert problems_after(lambda d: d.update(blocks=[long, dict(long, minutes=31.6)])) == [
        "blocks: session total 93 min is longer than the limit of 90 min"]


def test_block_max_duration_is_the_longest_reachable():
    # Brute force over a fine grid of cycle lengths never beats the computed bound, and
    # the bound is approached (within one grid step of cycle length times the cycles).
    for m, c_lo, c_hi in [(1, 2, 180), (10, 30, 70), (0.5, 1, 180), (60, 60, 61), (3, 10, 10)]:
        bound = block_max_duration_s(minutes_max=m, cycle_min_s=c_lo, cycle_max_s=c_hi, can_be_continuous=False)
        steps = 20000
        brute = max((c_lo + (c_hi - c_lo) * i / steps) * max(1, round(m * 60 / (c_lo + (c_hi - c_lo) * i / steps)))
                    for i in range(steps + 1))
        assert brute <= bound + 1e-6
        assert bound - brute < 1 + (c_hi - c_lo) / steps * m * 60
    assert block_max_duration_s(minutes_max=10, cycle_min_s=10, cycle_max_s=10, can_be_continuous=False) == 600
    assert block_max_duration_s(minutes_max=10, cycle_min_s=0, cycle_max_s=0, can_be_continuous=True) == 600


def test_alternating_needs_two_channels_and_rest_at_least_the_contraction():
    def two(d):
        d["channels"].append({"label": "right", "max_ma": 40})
    assert problems_after(lambda d: two(d) or d["blocks"][1].update(pattern="alternating")) == []
    assert problems_after(lambda d: d["blocks"][1].update(pattern="alternating")) == [
        'blocks[1].pattern: "alternating" needs 2 channels (1 given)']
    assert problems_after(lambda d: two(d) or d["blocks"][0].update(pattern="alternating", on_s=6)) == [
        'blocks[0]: "alternating" needs off_s >= on_s, but off_s = 5 and on_s = 6']
    assert problems_after(lambda d: two(d) or d["blocks"][0].update(pattern="alternating", on_s=adj(5, 2, 5))) == []
    assert problems_after(lambda d: two(d) or d["blocks"][1].update(pattern="alternating",
                                                                     off_s=adj(50, 5, 60))) == [
        'blocks[1]: "alternating" needs off_s >= on_s, but off_s = 5 (at its smallest) and on_s = 10']


@pytest.mark.parametrize("value,line", [
    (adj(50, 40, 200), "blocks[0].hz.max: 200 is above the device limit of 150 (allowed 1 to 150 Hz)"),
    (adj(50, 0, 60), "blocks[0].hz.min: 0 is below the device limit of 1 (allowed 1 to 150 Hz)"),
    (adj(30, 40, 60), "blocks[0].hz: value 30 is outside its own range 40 to 60"),
    (adj(50, 60, 40), "blocks[0].hz: min 60 is above max 40"),
    ({"value": 50, "min": 40}, "blocks[0].hz.max: missing (an adjustable value needs value, min and max, "
                               "each 1 to 150 Hz)"),
    ({**adj(50, 40, 60), "step": 5}, "blocks[0].hz.step: unknown field (an adjustable value has value, min and max)"),
    (adj("50", 40, 60), 'blocks[0].hz.value: "50" is not a number'),
])
def test_adjustable_value_rules(value, line):
    assert line in problems_after(lambda d: d["blocks"][0].update(hz=value))


def test_amplitude_cap_is_not_adjustable():
    assert problems_after(lambda d: d["channels"][0].update(max_ma=adj(50, 0, 60))) == [
        'channels[0].max_ma: {"value": 50, "min": 0, "max": 60} is not a number']


# ------------------------------------------------------------------------ loading files

def test_load_problems_are_one_clear_line(tmp_path):
    cases = {
        "missing.json": (None, "no such file"),
        "broken.json": ('{"format": 1,', "not JSON (Expecting property name enclosed in double quotes at line 1"),
        "list.json": ("[1, 2]", "expected a JSON object at the top level, got a list"),
        "dup.json": ('{"id": "a", "id": "b"}', 'not acceptable JSON (duplicate key "id")'),
        "nan.json": ('{"hz": NaN}', "not acceptable JSON (NaN is not valid JSON)"),
        "latin1.bin": (b"{\"id\": \"\xe9\"}", "not JSON (not UTF-8 text)"),
    }
    for name, (content, expect) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        with pytest.raises(PrescriptionError) as e:
            load_prescription(path, today=TODAY)
        assert len(e.value.problems) == 1, name
        assert e.value.problems[0].startswith(f"{path}: {expect}"), e.value.problems
    with pytest.raises(PrescriptionError, match="is a directory"):
        load_prescription(tmp_path)


def test_load_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(example()).encode())
    assert load_prescription(path, today=TODAY).id == "rx-0001"


# ------------------------------------------------------------------------- JSON Schema

@functools.cache
def _schema_text() -> str:
    return schema_path().read_text(encoding="utf-8")


def schema() -> dict:
    return json.loads(_schema_text())


@functools.cache
def _schema_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def schema_ok(d) -> bool:
    return _schema_validator().is_valid(d)


def test_shipped_schema_is_generated_from_the_limits_table():
    # Regenerate with: .venv/bin/python -m schedules.validate
    assert schema() == json_schema()
    jsonschema.Draft202012Validator.check_schema(schema())
    props = schema()["properties"]
    block = props["blocks"]["items"]["properties"]
    for name in BLOCK_NUMERIC_FIELDS:
        plain = block[name]["oneOf"][0]
        assert (plain["minimum"], plain["maximum"]) == (DEVICE_LIMITS[name].low, DEVICE_LIMITS[name].high)
    cap = props["channels"]["items"]["properties"]["max_ma"]
    assert (cap["minimum"], cap["maximum"]) == (DEVICE_LIMITS["max_ma"].low, DEVICE_LIMITS["max_ma"].high)
    for name, limit in SCHEDULE_LIMITS.items():
        assert (props[name]["minimum"], props[name]["maximum"]) == (limit.low, limit.high)


# Cases the schema can express: schema and validator must agree on each.
SCHEMA_CASES = [
    lambda d: None,
    lambda d: d["blocks"][1].update(hz=400),
    lambda d: d["blocks"][0].update(pulse_us=5000),
    lambda d: d["channels"][0].update(max_ma=250),
    lambda d: d.update(format="x"),
    lambda d: d.update(channels=[]),
    lambda d: d["blocks"][0].update(off_s=-5),
    lambda d: d["blocks"][0].update(hz="fifty"),
    lambda d: d["blocks"][0].update(hz=True),
    lambda d: d["blocks"][1].update(pulse_width=300),
    lambda d: d.pop("patient_id"),
    lambda d: d.update(supervision="nurse"),
    lambda d: d.update(sessions_per_week=2.5),
    lambda d: d.update(sessions_per_week=3.0),
    lambda d: d.update(id=" "),
    lambda d: d.update(issued="2026/11/20"),
    lambda d: d.update(blocks=[]),
    lambda d: d["blocks"][0].update(hz=adj(8, 1, 150)),
    lambda d: d["blocks"][0].update(hz=adj(8, 1, 151)),
    lambda d: d["blocks"][0].update(hz={"value": 8, "min": 1}),
    lambda d: d["blocks"][0].pop("label"),
    lambda d: d["channels"][0].update(max_ma=adj(50, 0, 60)),
    lambda d: d.update(signature={"alg": "ed25519", "key_id": "k", "value": "v"}),
    lambda d: d.update(signature={"alg": "ed25519", "key_id": "k"}),
    lambda d: d.update(signature={"alg": "ed25519", "key_id": "k", "value": "v", "extra": 1}),
]
# Cases only the validator can judge (VALIDATOR_ONLY_RULES): the schema lets them pass.
VALIDATOR_ONLY_CASES = [
    lambda d: d.update(expires="2000-01-01", issued="1999-01-01"),
    lambda d: d.update(issued="2999-01-01", expires="2999-02-01"),
    lambda d: d.update(expires="2027-02-30"),
    lambda d: d["blocks"][0].update(ramp_up_s=4, ramp_down_s=3),
    lambda d: d["blocks"][0].update(pattern="alternating"),
    lambda d: d["blocks"].extend([dict(d["blocks"][1], minutes=60)] * 2),
    lambda d: d["blocks"][0].update(hz=adj(8, 10, 20)),
    lambda d: d["blocks"][0].update(hz=math.nan),
    lambda d: d.update(sessions_per_week=8),
]


@pytest.mark.parametrize("i", range(len(SCHEMA_CASES)))
def test_schema_and_validator_agree(i):
    d = example()
    SCHEMA_CASES[i](d)
    assert schema_ok(d) == (check_prescription(d, today=TODAY) == [])


@pytest.mark.parametrize("i", range(len(VALIDATOR_ONLY_CASES)))
def test_what_only_the_validator_checks(i):
    d = example()
    VALIDATOR_ONLY_CASES[i](d)
    assert schema_ok(d)
    assert check_prescription(d, today=TODAY) != []


def test_validator_only_rules_are_listed_in_the_schema():
    for rule in VALIDATOR_ONLY_RULES:
        assert rule in schema()["description"]


# -------------------------------------------------------------------- property tests

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _extremes(block, name):
    r = block.ranges.get(name)
    return (r.min, r.max) if r else (getattr(block, name), getattr(block, name))


def assert_inside_device_limits(rx):
    assert 1 <= len(rx.channels) <= 2
    for ch in rx.channels:
        assert DEVICE_LIMITS["max_ma"].contains(ch.max_ma)
    for b in rx.blocks:
        for name in BLOCK_NUMERIC_FIELDS:
            lo, hi = _extremes(b, name)
            assert DEVICE_LIMITS[name].contains(lo) and DEVICE_LIMITS[name].contains(hi)
            assert lo <= getattr(b, name) <= hi
        assert _extremes(b, "ramp_up_s")[1] + _extremes(b, "ramp_down_s")[1] <= _extremes(b, "on_s")[0] + 1e-9
        if b.pattern == "alternating":
            assert len(rx.channels) == 2 and _extremes(b, "off_s")[0] + 1e-9 >= _extremes(b, "on_s")[1]
    assert rx.duration_s <= SESSION_MAX_MINUTES * 60 + 1e-9
    assert rx.issued <= TODAY <= rx.expires


@PROPERTY
@given(valid_prescriptions(today=TODAY))
def test_generated_prescriptions_are_valid_and_inside_the_limits(d):
    rx = parse_prescription(d, today=TODAY)
    assert_inside_device_limits(rx)
    assert schema_ok(d)
    # Every adjustment the patient can make keeps the session within 90 minutes.
    for b in rx.blocks:
        for name, r in b.ranges.items():
            assert b.with_value(name, r.max).duration_s <= SESSION_MAX_MINUTES * 60 + 1e-9


_ANY_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.booleans(), st.none(),
    st.text(max_size=5), st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({"value": st.floats(-500, 500), "min": st.floats(-500, 500), "max": st.floats(-500, 500)}),
)


@PROPERTY
@given(valid_prescriptions(today=TODAY), st.data())
def test_whatever_the_validator_accepts_lies_inside_the_device_limits(d, data):
    # Replace a few numeric fields with anything at all; if it still passes, it is in limits.
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(["block", "channel"]))
        if where == "block":
            b = data.draw(st.sampled_from(d["blocks"]))
            b[data.draw(st.sampled_from(BLOCK_NUMERIC_FIELDS))] = data.draw(_ANY_VALUE)
        else:
            data.draw(st.sampled_from(d["channels"]))["max_ma"] = data.draw(_ANY_VALUE)
    try:
        rx = parse_prescription(d, today=TODAY)
    except PrescriptionError as e:
        assert e.problems and all(": " in p for p in e.problems)
    else:
        assert_inside_device_limits(rx)


def _out_of_limit(limit):
    return st.one_of(st.floats(limit.high, 1e9, exclude_min=True, allow_nan=False),
                     st.integers(int(limit.high) + 1, 10**9),
                     st.floats(-1e9, limit.low, exclude_max=True, allow_nan=False),
                     st.integers(-10**9, math.ceil(limit.low) - 1))


@PROPERTY
@given(valid_prescriptions(today=TODAY), st.data())
def test_each_out_of_limit_field_is_refused_with_its_path_named(d, data):
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(d["blocks"]) - 1))
        name = data.draw(st.sampled_from(BLOCK_NUMERIC_FIELDS))
        path, limit = f"blocks[{i}].{name}", DEVICE_LIMITS[name]
        bad = data.draw(_out_of_limit(limit))
        if isinstance(d["blocks"][i][name], dict) and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(["min", "max", "value"]))
            d["blocks"][i][name][key] = bad
            path = f"{path}.{key}"
        else:
            d["blocks"][i][name] = bad
    else:
        i = data.draw(st.integers(0, len(d["channels"]) - 1))
        path, limit = f"channels[{i}].max_ma", DEVICE_LIMITS["max_ma"]
        bad = data.draw(_out_of_limit(limit))
        d["channels"][i]["max_ma"] = bad
    problems = check_prescription(d, today=TODAY)
    side = "above" if bad > limit.high else "below"
    assert any(p.startswith(f"{path}: ") and f"is {side} the device limit" in p and limit.describe() in p
               for p in problems), (path, bad, problems)
    assert not schema_ok(d)


@settings(max_examples=50, deadline=None)
@given(valid_prescriptions(today=TODAY, max_block_minutes=1, channels=st.just(2), adjustable=False))
def test_strategy_options(d):
    rx = parse_prescription(d, today=TODAY)
    assert len(rx.channels) == 2 and all(not b.ranges for b in rx.blocks)
    assert all(b.minutes <= 1 and b.duration_s <= 180 for b in rx.blocks)


def test_strategy_reaches_the_edges_of_the_valid_space():
    # Other parts test against this strategy: it must reach the corners that matter.
    quick = settings(max_examples=2000, database=None, phases=[Phase.generate])  # no shrinking: slow, not needed
    strategy = valid_prescriptions(today=TODAY)

    def blocks(d):
        return d["blocks"]

    def val(x):
        return x["value"] if isinstance(x, dict) else x

    for name, cond in {
        "150 Hz": lambda d: any(val(b["hz"]) == 150 for b in blocks(d)),
        "2 channels": lambda d: len(d["channels"]) == 2,
        "5 s ramps": lambda d: any(val(b["ramp_up_s"]) == 5 or val(b["ramp_down_s"]) == 5 for b in blocks(d)),
        "60 s contractions": lambda d: any(val(b["on_s"]) == 60 for b in blocks(d)),
        "alternating": lambda d: any(b.get("pattern") == "alternating" for b in blocks(d)),
        "continuous": lambda d: any(val(b["off_s"]) == 0 for b in blocks(d)),
        "adjustable": lambda d: any(isinstance(b["hz"], dict) for b in blocks(d)),
    }.items():
        assert cond(find(strategy, cond, settings=quick)), name
