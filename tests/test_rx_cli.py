"""`homeapp rx check/show/presets/new` (issue 2, part 6): exit codes of contract.md, one
line per problem naming the field, never a traceback. Most cases call `homeapp.cli.main`;
the issue's acceptance cases also run the real console script."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from homeapp.cli import main
from schedules.presets import PRESETS

DATA = Path(__file__).parent / "data"
HOMEAPP = Path(sys.executable).parent / "homeapp"

def relative_dates(src: Path, dst: Path) -> Path:
    """A copy of a data file whose dates are in force today (shifting them as a block,
    so an expired file stays expired)."""
    d = json.loads(src.read_text(encoding="utf-8"))
    if isinstance(d, dict) and "issued" in d and "expires" in d:
        shift = dt.date.today() - dt.date(2026, 11, 21)
        for k in ("issued", "expires"):
            d[k] = (dt.date.fromisoformat(d[k]) + shift).isoformat()
        dst.write_text(json.dumps(d), encoding="utf-8")
    else:
        shutil.copy(src, dst)
    return dst


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(HOMEAPP), *args], capture_output=True, text=True, timeout=60)


# The "How it is checked": each file, the field its line must name.
ACCEPTANCE = [
    ("rx-invalid-hz-400.json", "blocks[1].hz: 400 is above the device limit of 150"),
    ("rx-invalid-pulse-5000.json", "blocks[0].pulse_us: 5000 is above the device limit of 450"),
    ("rx-invalid-cap-250.json", "channels[0].max_ma: 250 is above the device limit of 100"),
    ("rx-invalid-ramps-longer-than-contraction.json", "blocks[0]: ramp_up_s + ramp_down_s = 7 is longer than on_s = 5"),
    ("rx-invalid-expired.json", "expires: "),
    ("rx-invalid-unknown-format.json", 'format: "x" is not supported'),
    ("rx-invalid-no-channels.json", "channels: 0 channels given"),
    ("rx-invalid-negative-rest.json", "blocks[0].off_s: -5 is below the device limit of 0"),
    ("rx-invalid-hz-as-text.json", 'blocks[0].hz: "fifty" is not a number'),
    ("rx-invalid-unknown-field.json", "blocks[1].pulse_width: unknown field"),
]


@pytest.mark.parametrize("name,line", ACCEPTANCE)
def test_console_script_refuses_each_invalid_case(name, line, tmp_path):
    path = relative_dates(DATA / name, tmp_path / name)
    r = run("rx", "check", str(path))
    assert r.returncode == 2, r
    assert any(out.startswith(line) for out in r.stdout.splitlines()), r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    assert r.stderr.startswith(f"{path}: invalid (")


@pytest.mark.parametrize("name", ["rx-valid-contract-example.json", "rx-valid-two-channels-adjustable.json"])
def test_console_script_accepts_valid_files(name, tmp_path):
    path = relative_dates(DATA / name, tmp_path / name)
    r = run("rx", "check", str(path))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[0] == f"{path}: valid"
    assert "unsigned" in r.stdout.splitlines()[1]


def test_check_with_explicit_today(capsys):
    assert main(["rx", "check", str(DATA / "rx-valid-contract-example.json"), "--today", "2026-11-21"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{DATA / 'rx-valid-contract-example.json'}: valid",
        "rx-0001 for P-0042: 2 blocks, 18 min, 1 channel, 5/week, valid 2026-11-20 to 2027-02-20, unsigned"]
    assert main(["rx", "check", str(DATA / "rx-valid-contract-example.json"), "--today", "2027-02-21"]) == 2
    assert capsys.readouterr().out == "expires: 2027-02-20 has passed (today is 2027-02-21)\n"


def test_check_lists_every_problem_one_per_line(capsys):
    assert main(["rx", "check", str(DATA / "rx-invalid-many-problems.json"), "--today", "2026-11-21"]) == 2
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 8
    assert err.endswith("invalid (8 problems)\n")


@pytest.mark.parametrize("content,expect", [
    (None, "no such file"),
    ("{\"format\": ", "not JSON ("),
    ("[1]", "expected a JSON object at the top level, got a list"),
    ("\"homeapp\"", "expected a JSON object at the top level, got text"),
])
@pytest.mark.parametrize("command", ["check", "show"])
def test_bad_files_get_one_clear_line(command, content, expect, tmp_path, capsys):
    path = tmp_path / "rx.json"
    if content is not None:
        path.write_text(content)
    assert main(["rx", command, str(path)]) == 2
    out, err = capsys.readouterr()
    # check reports on stdout (its report is its output), show on stderr.
    report = out if command == "check" else err
    assert report.startswith(f"{path}: {expect}")
    assert len(report.splitlines()) == 1 and "Traceback" not in out + err


def test_console_script_bad_input_never_a_traceback(tmp_path):
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    for args in (["rx", "check", str(tmp_path / "nope.json")], ["rx", "show", str(tmp_path / "dir.json")],
                 ["rx", "check", str(tmp_path / "bin.json")], ["rx", "new", "--preset", "nope"],
                 ["rx", "check", "x.json", "--today", "tomorrow"]):
        r = run(*args)
        assert r.returncode == 2, (args, r)
        assert "Traceback" not in r.stdout + r.stderr


def test_show_prints_the_summary(capsys):
    path = str(DATA / "rx-valid-two-channels-adjustable.json")
    assert main(["rx", "show", path, "--today", "2026-11-21"]) == 0
    out = capsys.readouterr().out
    for text in ("Prescription rx-0002", "valid 2026-11-20 to 2027-11-20",
                 "schedule: 5 sessions/week, at most 1 per day, at least 4 h between sessions",
                 "supervision: a caregiver must unlock each session",
                 "0: left quadriceps, intensity cap 60 mA", "1: right quadriceps, intensity cap 55 mA",
                 "1. alternating strength: 20 min -> 17 cycles of 10 s (patient may set 10-60) on / "
                 "60 s (patient may set 60-120) off, runs 19.8 min",
                 "150 Hz, 300 µs (patient may set 250-450) per phase, ramps up 5 s / down 5 s, alternating",
                 "patient may set the block length 10-30 min",
                 "2. cool-down: continuous for 0.5 min (one contraction, no rest)",
                 "total: 20.3 min, 18 contractions per channel", "signature: unsigned"):
        assert text in out, text


def test_show_names_the_signing_key(tmp_path, capsys):
    d = json.loads((DATA / "rx-valid-contract-example.json").read_text())
    d["signature"] = {"alg": "ed25519", "key_id": "c0ffee12", "value": "AAAA"}
    (tmp_path / "s.json").write_text(json.dumps(d))
    assert main(["rx", "show", str(tmp_path / "s.json"), "--today", "2026-11-21"]) == 0
    # no trust store given: the key is named, and the output says the signature was not checked
    assert "signature: signed by key c0ffee12, signature NOT checked (no trust store given" in capsys.readouterr().out


def test_show_refuses_an_invalid_file_on_stderr(capsys):
    assert main(["rx", "show", str(DATA / "rx-invalid-hz-400.json"), "--today", "2026-11-21"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("blocks[1].hz: 400 is above the device limit of 150")


def test_presets_lists_every_preset_with_rationale(capsys):
    assert main(["rx", "presets"]) == 0
    out = capsys.readouterr().out
    for name, preset in PRESETS.items():
        assert f"{name}  " in out and preset.rationale in out


#: A prescription names a real patient and clinician (no "UNASSIGNED" default any more).
WHO = ("--patient-id", "P-7", "--clinician-id", "C-3")


def test_new_writes_a_valid_prescription_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "rx.json"
    before = dt.date.today()
    assert main(["rx", "new", "--preset", "quadriceps-after-knee-surgery", "--out", str(out),
                 "--patient-id", "P-7", "--clinician-id", "C-3"]) == 0
    after = dt.date.today()
    d = json.loads(out.read_text(encoding="utf-8"))
    assert (d["patient_id"], d["clinician_id"]) == ("P-7", "C-3")
    issued = dt.date.fromisoformat(d["issued"])
    assert issued in (before, after)        # the day it was written (a run may cross midnight)
    assert d["expires"] == (issued + dt.timedelta(days=90)).isoformat()
    capsys.readouterr()
    assert main(["rx", "check", str(out)]) == 0
    out.write_text("signed already")
    assert main(["rx", "new", "--preset", "circulation", "--out", str(out), *WHO]) == 2
    assert "already exists (use --force to overwrite)" in capsys.readouterr().err
    assert out.read_text() == "signed already"
    assert main(["rx", "new", "--preset", "circulation", "--out", str(out), "--force", *WHO]) == 0
    assert json.loads(out.read_text())["blocks"][0]["hz"] == {"value": 8, "min": 8, "max": 9}


def test_new_to_stdout_round_trips_through_the_console_script(tmp_path):
    r = run("rx", "new", "--preset", "atrophied-muscle", *WHO)
    assert r.returncode == 0 and r.stderr == ""
    (tmp_path / "a.json").write_text(r.stdout)
    assert run("rx", "check", str(tmp_path / "a.json")).returncode == 0


def test_new_unknown_preset_lists_the_known_names(capsys):
    assert main(["rx", "new", "--preset", "quads"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("homeapp: unknown preset 'quads' (known: fibre-type-1, ")
    assert all(name in err for name in PRESETS) and len(err.splitlines()) == 1


def test_new_refuses_a_blank_id(capsys):
    assert main(["rx", "new", "--preset", "circulation", "--patient-id", " ", "--clinician-id", "C-3"]) == 2
    assert "patient_id: is empty" in capsys.readouterr().err


def test_old_preset_names_are_listed_and_accepted_as_aliases(tmp_path, capsys):
    assert main(["rx", "presets"]) == 0
    out = capsys.readouterr().out
    assert "'reduced-circulation' is an old name: it now means 'restrict-circulation'" in out
    out_file = tmp_path / "rx.json"
    assert main(["rx", "new", "--preset", "muscle-tone-static", "--out", str(out_file), *WHO]) == 0
    err = capsys.readouterr().err
    assert "'muscle-tone-static' is an old name: it now means 'reduce-tone-static'" in err
    assert json.loads(out_file.read_text(encoding="utf-8"))["id"].startswith("rx-reduce-tone-static-")


def test_new_without_ids_is_refused_and_a_placeholder_fails_check(tmp_path, capsys):
    """No --patient-id: exit 2 with a clear line, no file; a file naming UNASSIGNED fails rx check."""
    out = tmp_path / "rx.json"
    assert main(["rx", "new", "--preset", "circulation", "--out", str(out)]) == 2
    assert "patient" in capsys.readouterr().err and not out.exists()
    assert main(["rx", "new", "--preset", "circulation", "--out", str(out), *WHO]) == 0
    d = json.loads(out.read_text(encoding="utf-8"))
    d["patient_id"] = d["clinician_id"] = "UNASSIGNED"
    out.write_text(json.dumps(d), encoding="utf-8")
    capsys.readouterr()
    assert main(["rx", "check", str(out)]) == 2
    said = "".join(capsys.readouterr())
    assert "patient_id" in said and "clinician_id" in said and "placeholder" in said


def test_unknown_field_is_suggested_by_meaning(tmp_path, capsys):
    """'frequency' names hz, as 'pulse_width' names pulse_us."""
    out = tmp_path / "rx.json"
    assert main(["rx", "new", "--preset", "circulation", "--out", str(out), *WHO]) == 0
    d = json.loads(out.read_text(encoding="utf-8"))
    d["blocks"][0]["frequency"] = 8
    out.write_text(json.dumps(d), encoding="utf-8")
    capsys.readouterr()
    assert main(["rx", "check", str(out)]) == 2
    assert "blocks[0].frequency: unknown field (did you mean hz?)" in "".join(capsys.readouterr())


def test_trust_list_of_an_absent_store_is_empty(tmp_path, capsys):
    assert main(["rx", "trust", "list", "--trust", str(tmp_path / "no-such")]) == 0
    said = "".join(capsys.readouterr())
    assert "empty" in said and "no such" not in said
