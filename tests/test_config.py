"""The device configuration (homeapp/config.py), PIN hashing and `homeapp config`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from homeapp.cli import main
from homeapp.config import ConfigError, load_config
from homeapp.pinhash import PinFormatError, hash_pin, is_valid_hash, verify_pin

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "deploy" / "config.example.toml"

# Hashing is slow on purpose; make the two hashes once for the whole module.
CARE = hash_pin("2468")
CLIN = hash_pin("13579")


def example_with_pins(**replace: str) -> str:
    text = EXAMPLE.read_text()
    text = text.replace('caregiver_pin_hash = ""', f'caregiver_pin_hash = "{CARE}"')
    text = text.replace('clinician_pin_hash = ""', f'clinician_pin_hash = "{CLIN}"')
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(path)
    return e.value.problems


# --- PIN hashing ---------------------------------------------------------------------

def test_hash_verifies_only_its_own_pin():
    assert verify_pin("2468", CARE)
    assert not verify_pin("2469", CARE)
    assert not verify_pin("13579", CARE)
    assert not verify_pin("", CARE)


def test_hashes_are_salted():
    again = hash_pin("2468")
    assert again != CARE and verify_pin("2468", again)
    assert CARE.startswith("scrypt$n=16384,r=8,p=1$")


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", " 1234", "", "١٢٣٤"])
def test_pins_are_4_to_8_ascii_digits(pin):
    with pytest.raises(PinFormatError):
        hash_pin(pin)


@pytest.mark.parametrize("bad", ["1234", "scrypt$n=16384,r=8,p=1$abc$def",
                                 "scrypt$n=1000,r=8,p=1$" + "A" * 24 + "$" + "A" * 44,
                                 "bcrypt$2b$12$whatever", ""])
def test_malformed_hashes_are_rejected(bad):
    assert not is_valid_hash(bad)
    with pytest.raises(PinFormatError):
        verify_pin("1234", bad)


# --- load_config ---------------------------------------------------------------------

def test_example_with_hashes_is_a_valid_real_device(tmp_path):
    cfg = load_config(write(tmp_path, example_with_pins()))
    assert cfg.board == "real" and cfg.show_trainer_panel is False
    assert cfg.pins.enable == 24 and cfg.pins.legs == ((17, 27), (22, 23))
    assert cfg.pigpio_host == "127.0.0.1" and cfg.pigpio_port == 8888
    assert cfg.db_path == Path("/var/lib/homeapp/homeapp.db")
    assert cfg.device_key_path == Path("/var/lib/homeapp/device_key.pem")
    assert cfg.trust_dir == Path("/var/lib/homeapp/trust")
    assert verify_pin("2468", cfg.caregiver_pin_hash)
    assert verify_pin("13579", cfg.clinician_pin_hash)


def test_example_as_shipped_asks_for_both_pins(tmp_path):
    problems = problems_of(EXAMPLE)
    assert len(problems) == 2
    assert all("pin_hash: missing" in p for p in problems)


def test_no_file_is_the_simulated_developer_default(monkeypatch, tmp_path):
    monkeypatch.delenv("HOMEAPP_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("homeapp.config.SYSTEM_CONFIG", tmp_path / "absent.toml")
    cfg = load_config()
    assert cfg.board == "simulated" and cfg.show_trainer_panel is True
    assert cfg.data_dir == tmp_path / "xdg" / "homeapp"
    assert cfg.caregiver_pin_hash is None


def test_homeapp_config_env_wins(monkeypatch, tmp_path):
    p = write(tmp_path, '[device]\nboard = "simulated"\nlanguage = "sv"\n')
    monkeypatch.setenv("HOMEAPP_CONFIG", str(p))
    assert load_config().language == "sv"


def test_unknown_pin_name(tmp_path):
    problems = problems_of(write(tmp_path, example_with_pins(
        **{"estop = 16": "estop = 16\nenabel = 5"})))
    assert len(problems) == 1
    assert "pins.enabel is not a line of the board" in problems[0]


def test_pin_used_twice(tmp_path):
    problems = problems_of(write(tmp_path, example_with_pins(**{"heartbeat = 25": "heartbeat = 24"})))
    assert problems == [f"{tmp_path / 'config.toml'}: pins.heartbeat: GPIO 24 is already "
                        f"used by pins.enable"]


def test_pin_in_clear_is_refused_string_or_number(tmp_path):
    text = example_with_pins().replace(f'"{CARE}"', '"1234"').replace(f'"{CLIN}"', "987654")
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 2
    assert all("looks like a PIN stored in clear" in p for p in problems)
    assert "security.caregiver_pin_hash" in problems[0]
    assert "security.clinician_pin_hash" in problems[1]


def test_same_pin_hash_for_both_roles_is_refused(tmp_path):
    text = example_with_pins().replace(f'"{CLIN}"', f'"{CARE}"')
    problems = problems_of(write(tmp_path, text))
    assert problems and "its own PIN" in problems[0]


def test_every_problem_reported_at_once_with_key_paths(tmp_path):
    text = example_with_pins(**{
        'board = "real"': 'board = "reall"',
        'language = "en"': 'language = "de"',
        'host = "127.0.0.1"': 'host = "127.0.0.1"\ntimeout = 3',
        "port = 8888": "port = 80",
        'data_dir = "/var/lib/homeapp"': 'data_dir = "relative/dir"',
        "ch1_b = 23": "ch1_b = 9",
    }) + "\n[extra]\nx = 1\n"
    problems = problems_of(write(tmp_path, text))
    keys = ["device.board", "device.language", "pigpio.timeout", "pigpio.port",
            "paths.data_dir", "pins.ch1_b", "extra"]
    for key in keys:
        assert any(f": {key}" in p for p in problems), (key, problems)
    assert len(problems) == len(keys)


def test_real_board_refuses_a_remote_pigpiod(tmp_path):
    problems = problems_of(write(tmp_path, example_with_pins(
        **{'host = "127.0.0.1"': 'host = "192.0.2.7"'})))
    assert len(problems) == 1 and "pigpio.host" in problems[0] and "this machine only" in problems[0]


def test_simulated_board_may_use_any_host_and_needs_no_pins(tmp_path):
    cfg = load_config(write(tmp_path, '[device]\nboard = "simulated"\n[pigpio]\nhost = "sim.local"\n'))
    assert cfg.pigpio_host == "sim.local" and cfg.clinician_pin_hash is None


def test_not_toml(tmp_path):
    problems = problems_of(write(tmp_path, "[device\n"))
    assert len(problems) == 1 and "not valid TOML" in problems[0]


# --- the command line ----------------------------------------------------------------

def test_config_check_exit_codes(tmp_path, capsys):
    good = write(tmp_path, example_with_pins())
    assert main(["config", "check", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(example_with_pins(**{"heartbeat = 25": "heartbeat = 24", "ch0_a = 17": "ch0_a = 99"}))
    assert main(["config", "check", str(bad)]) == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "pins.ch0_a" in lines[0] and "pins.heartbeat" in lines[1]


def test_hash_pin_from_stdin_round_trips():
    out = subprocess.run([sys.executable, "-m", "homeapp.cli", "config", "hash-pin", "--pin-stdin"],
                         input="97531\n", capture_output=True, text=True, check=True).stdout
    assert verify_pin("97531", out.strip())
    bad = subprocess.run([sys.executable, "-m", "homeapp.cli", "config", "hash-pin", "--pin-stdin"],
                         input="12\n", capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and "4 to 8 digits" in bad.stderr


def test_config_pins_lists_outputs_enable_first(tmp_path, capsys):
    p = write(tmp_path, example_with_pins(**{"enable = 24": "enable = 5"}))
    assert main(["config", "pins", str(p)]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[:2] == ["enable 5", "ch0_a 17"] and "heartbeat 25" in lines


def test_config_paths_follow_the_file(tmp_path, capsys):
    p = write(tmp_path, '[device]\nboard = "simulated"\n[paths]\ndata_dir = "/srv/h"\ndb = "/srv/log.db"\n')
    assert main(["config", "paths", str(p)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "data_dir /srv/h", "db_path /srv/log.db", "trust_dir /srv/h/trust",
        "device_key_path /srv/h/device_key.pem"]


def test_module_entry_matches_the_commands(tmp_path, capsys):
    from homeapp.config import main as config_main
    p = write(tmp_path, example_with_pins(**{"enable = 24": "enable = 5"}))
    for what in ("pins", "paths"):
        assert config_main([what, str(p)]) == 0
        direct = capsys.readouterr().out
        assert main(["config", what, str(p)]) == 0
        assert capsys.readouterr().out == direct
    assert config_main(["pins", str(write(tmp_path, "[pins]\nenable = 99\n"))]) == 2
    assert "pins.enable" in capsys.readouterr().err


def test_pins_are_read_even_while_other_settings_need_attention(capsys):
    # The shipped example lacks the PIN hashes (the app will not start), but the boot-time
    # script still needs its pin map to hold the right lines low.
    assert main(["config", "check", str(EXAMPLE)]) == 2
    capsys.readouterr()
    assert main(["config", "pins", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "enable 24"
