"""The clinician's tools say what they know and no more: signatures checked only against a
trust store, prescriptions that name someone, a later start day, key removal at the next
start, an electrode never reattached ends the session aborted."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from homeapp.cli import main
from homeapp.runner import run_session
from homeapp.store import Store
from schedules.signing import TrustStore, generate_keypair, save_private_key, save_public_key
from schedules.validate import check_prescription, parse_prescription

TODAY = dt.date.today()


def rx(**changes) -> dict:
    d = {"format": "homeapp.prescription/1", "id": "rx-tools", "patient_id": "P-0042",
         "clinician_id": "C-0007", "issued": TODAY.isoformat(),
         "expires": (TODAY + dt.timedelta(days=60)).isoformat(),
         "sessions_per_week": 5, "max_sessions_per_day": 1, "min_hours_between": 4, "supervision": "none",
         "channels": [{"label": "left quadriceps", "max_ma": 60}],
         "blocks": [{"label": "strength", "minutes": 1, "hz": 35, "pulse_us": 300, "on_s": 5, "off_s": 5,
                     "ramp_up_s": 1, "ramp_down_s": 1}]}
    d.update(changes)
    return d


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def clinician(tmp_path):
    """A clinician key pair on disk and a device trust store holding the public key."""
    private, public = generate_keypair()
    save_private_key(tmp_path / "clinician.key", private)
    save_public_key(tmp_path / "clinician.pub", public)
    trust = tmp_path / "trust"
    assert main(["rx", "trust", "add", str(tmp_path / "clinician.pub"), "--trust", str(trust),
                 "--label", "dr-lind"]) == 0
    return tmp_path / "clinician.key", trust


# --- rx check / show: the signature ---------------------------------------------------------

def test_check_says_the_signature_was_not_checked_and_with_trust_refuses_an_altered_file(
        tmp_path, clinician, capsys):
    key, trust = clinician
    f = write(tmp_path / "rx.json", rx())
    assert main(["rx", "sign", str(f), "--key", str(key)]) == 0
    data = json.loads(f.read_text())
    data["blocks"][0]["hz"] = 45          # edited after signing
    write(f, data)
    capsys.readouterr()
    assert main(["rx", "check", str(f)]) == 0
    out = capsys.readouterr().out
    assert "signature NOT checked (no trust store given" in out and "valid" in out
    assert main(["rx", "check", str(f), "--trust", str(trust)]) == 2
    out = capsys.readouterr()
    assert "signature: refused: altered after signing" in out.out
    assert main(["rx", "show", str(f), "--trust", str(trust)]) == 2
    assert "altered after signing" in capsys.readouterr().err
    data["blocks"][0]["hz"] = 35          # back as signed
    write(f, data)
    assert main(["rx", "show", str(f), "--trust", str(trust)]) == 0
    assert "signature verified" in capsys.readouterr().out


def test_signing_a_signed_file_with_another_key_says_whose_signature_it_replaces(tmp_path, clinician, capsys):
    key, _trust = clinician
    other = generate_keypair()[0]
    save_private_key(tmp_path / "other.key", other)
    f = write(tmp_path / "rx.json", rx())
    assert main(["rx", "sign", str(f), "--key", str(key)]) == 0
    first_kid = json.loads(f.read_text())["signature"]["key_id"]
    capsys.readouterr()
    assert main(["rx", "sign", str(f), "--key", str(tmp_path / "other.key")]) == 0
    err = capsys.readouterr().err
    assert f"replaces its earlier signature by key {first_kid} (another clinician's key" in err


# --- rx new ---------------------------------------------------------------------------------

def test_new_needs_a_real_patient_and_clinician(tmp_path, capsys):
    assert main(["rx", "new", "--preset", "circulation"]) == 2
    assert "needs --patient-id and --clinician-id" in capsys.readouterr().err
    assert main(["rx", "new", "--preset", "circulation", "--patient-id", "UNASSIGNED",
                 "--clinician-id", "C-1"]) == 2
    assert 'patient_id: "UNASSIGNED" is a placeholder' in capsys.readouterr().err
    # and a file that says UNASSIGNED is not a valid prescription, whoever wrote it
    assert any(p.startswith('clinician_id: "UNASSIGNED" is a placeholder')
               for p in check_prescription(rx(clinician_id="UNASSIGNED")))


def test_new_from_an_existing_prescription_with_set(tmp_path, clinician, capsys):
    key, _trust = clinician
    old = write(tmp_path / "old.json", rx(id="rx-knee-20260101", issued="2026-01-01",
                                          expires=(TODAY + dt.timedelta(days=5)).isoformat()))
    assert main(["rx", "sign", str(old), "--key", str(key)]) == 0
    out = tmp_path / "new.json"
    before = dt.date.today()
    assert main(["rx", "new", "--from", str(old), "--set", "blocks[0].hz=50", "--set", "sessions_per_week=3",
                 "--set", 'blocks[0].pulse_us={"value": 300, "min": 250, "max": 350}', "--out", str(out)]) == 0
    after = dt.date.today()
    d = json.loads(out.read_text())
    issued = dt.date.fromisoformat(d["issued"])
    assert issued in (before, after)        # the day it was written (a run may cross midnight)
    assert d["id"] == f"rx-knee-{issued:%Y%m%d}"
    assert "signature" not in d and d["patient_id"] == "P-0042"
    assert d["blocks"][0]["hz"] == 50 and d["sessions_per_week"] == 3
    assert d["blocks"][0]["pulse_us"] == {"value": 300, "min": 250, "max": 350}
    capsys.readouterr()
    # validated before anything is written: nothing is written on a bad value or path
    bad = tmp_path / "bad.json"
    assert main(["rx", "new", "--from", str(old), "--set", "blocks[0].hz=400", "--out", str(bad)]) == 2
    assert "blocks[0].hz: 400 is above the device limit of 150" in capsys.readouterr().err
    assert main(["rx", "new", "--from", str(old), "--set", "blocks[3].hz=40", "--out", str(bad)]) == 2
    assert "blocks[3] does not exist (blocks has 1 item" in capsys.readouterr().err
    assert main(["rx", "new", "--from", str(old), "--set", "hz40", "--out", str(bad)]) == 2
    assert "expected PATH=VALUE" in capsys.readouterr().err
    assert not bad.exists()


def test_unknown_fields_are_suggested_by_meaning_too():
    problems = check_prescription(rx(blocks=[{**rx()["blocks"][0], "frequency": 35}]))
    assert "blocks[0].frequency: unknown field (did you mean hz?)" in problems
    problems = check_prescription(rx(blocks=[{**rx()["blocks"][0], "pulse_width": 300}]))
    assert "blocks[0].pulse_width: unknown field (did you mean pulse_us?)" in problems
    assert "start_date: unknown field (did you mean valid_from?)" in check_prescription(rx(start_date="2027-01-01"))


# --- valid_from: a prescription that starts later ---------------------------------------------

def test_valid_from_allows_a_later_start_and_keeps_issued_as_issued():
    later = TODAY + dt.timedelta(days=10)
    p = parse_prescription(rx(valid_from=later.isoformat()))
    assert p.issued == TODAY and p.starts_on == later and not p.active_on(TODAY) and p.active_on(later)
    assert check_prescription(rx(issued=later.isoformat()))[0].startswith(
        f"issued: {later} is in the future")
    assert check_prescription(rx(valid_from=(TODAY - dt.timedelta(days=1)).isoformat())) == [
        f"valid_from: {TODAY - dt.timedelta(days=1)} is before issued {TODAY} "
        f"(sessions cannot start before the prescription was written)"]


def test_sessions_before_valid_from_are_refused_with_the_day(tmp_path, capsys):
    later = TODAY + dt.timedelta(days=10)
    f = write(tmp_path / "rx.json", rx(valid_from=later.isoformat()))
    result = run_session(prescription_path=str(f), db_path=str(tmp_path / "log.db"),
                         trace_path=str(tmp_path / "t.csv"), virtual_time=True, allow_unsigned=True)
    assert result.exit_code == 2
    (reason,) = [r for r in result.reasons if getattr(r, "kind", None) == "not_yet_valid"]
    assert reason.params == {"date": later} and later.isoformat() in reason
    # on that day it runs
    result = run_session(prescription_path=str(f), db_path=str(tmp_path / "log.db"),
                         trace_path=str(tmp_path / "t.csv"), virtual_time=True, allow_unsigned=True,
                         start_at=dt.datetime.combine(later, dt.time(10)).astimezone())
    assert result.exit_code == 0 and result.summary["status"] == "completed"
    assert main(["rx", "show", str(f)]) == 0
    assert f"sessions from {later} (not before)" in capsys.readouterr().out


# --- trust store ----------------------------------------------------------------------------

def test_trust_list_of_a_device_with_no_key_yet_says_it_is_empty(tmp_path, capsys):
    assert main(["rx", "trust", "list", "--trust", str(tmp_path / "nothing-yet")]) == 0
    assert "empty: no clinician keys yet" in capsys.readouterr().err


def test_trust_remove_is_logged_and_refuses_the_next_start(tmp_path, clinician, capsys):
    key, trust = clinician
    f = write(tmp_path / "rx.json", rx())
    assert main(["rx", "sign", str(f), "--key", str(key)]) == 0
    db = tmp_path / "log.db"

    def start(days_later: int) -> object:
        return run_session(prescription_path=str(f), db_path=str(db), trace_path=str(tmp_path / "t.csv"),
                           virtual_time=True, trust_dir=str(trust),
                           start_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days_later))

    assert start(0).exit_code == 0
    kid = next(iter(TrustStore(trust).labels()))
    assert main(["rx", "trust", "remove", kid, "--trust", str(trust), "--db", str(db)]) == 0
    assert "prescriptions it signed are refused from the next session start" in capsys.readouterr().out
    with Store.open(db) as store:
        (event,) = [e for e in store.device_events() if e["kind"] == "trust_removed"]
    assert event["detail"] == {"key_id": kid, "label": "dr-lind", "by": "command line"}
    result = start(1)
    assert result.exit_code == 2
    assert any(f"signed by a removed key {kid}" in r for r in result.reasons), result.reasons
    assert main(["rx", "trust", "remove", kid, "--trust", str(trust), "--db", str(db)]) == 2
    assert "no trusted key has this id or label" in capsys.readouterr().err


# --- an electrode lost and never reattached -----------------------------------------------------

def test_an_electrode_never_reattached_ends_the_session_aborted(tmp_path):
    f = write(tmp_path / "rx.json", rx(blocks=[{**rx()["blocks"][0], "minutes": 20}]))
    acts = tmp_path / "a.jsonl"
    acts.write_text('{"t": 1, "do": "intensity", "channel": 0, "ma": 20}\n'
                    '{"t": 12, "do": "lead_off", "channel": 0}\n')
    result = run_session(prescription_path=str(f), db_path=str(tmp_path / "log.db"),
                         trace_path=str(tmp_path / "t.csv"), actions_path=str(acts),
                         virtual_time=True, allow_unsigned=True)
    assert result.exit_code == 0 and result.summary["status"] == "aborted"
    with Store.open(tmp_path / "log.db") as store:
        end = [e for e in store.session(result.summary["session_id"])["events"] if e["kind"] == "end"][-1]
    assert end["detail"]["reason"].startswith("electrode lost on left quadriceps and not reattached")
