"""Prescription signing (issue 7): keys, fingerprints, sign/verify round trips, every
refusal reason, the trust store, and the rx keygen/sign/verify commands."""
from __future__ import annotations

import copy
import datetime as dt
import json
import os
import stat

import pytest

from schedules.signing import (KeyFileError, SignatureError, TrustStore, canonical_json, generate_keypair,
                               key_id, load_private_key, load_public_key, save_private_key, save_public_key,
                               sign_prescription, verify_prescription)

RX = {"format": "homeapp.prescription/1",
      "id": "rx-0001", "patient_id": "P-0042", "clinician_id": "C-0007",
      # in force whenever the suite runs: signing refuses an expired prescription
      "issued": dt.date.today().isoformat(), "expires": (dt.date.today() + dt.timedelta(days=90)).isoformat(),
      "sessions_per_week": 5, "max_sessions_per_day": 1, "min_hours_between": 4,
      "supervision": "none",
      "channels": [{"label": "left quadriceps", "max_ma": 60}],
      "blocks": [
          {"label": "warm-up", "minutes": 3, "hz": 8, "pulse_us": 250, "on_s": 5, "off_s": 5,
           "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"},
          {"label": "strength", "minutes": 15, "hz": {"value": 50, "min": 40, "max": 60}, "pulse_us": 300,
           "on_s": 10, "off_s": 50, "ramp_up_s": 2, "ramp_down_s": 1, "pattern": "synchronous"}]}


@pytest.fixture
def keys():
    return generate_keypair()


@pytest.fixture
def trust(tmp_path, keys):
    store = TrustStore(tmp_path / "trust")
    store.add(keys[1], label="dr-lee")
    return store


def test_canonical_json_is_sorted_compact_utf8_and_ignores_signature():
    a = {"b": 1, "a": "µs", "signature": {"x": 1}}
    assert canonical_json(a) == '{"a":"µs","b":1}'.encode("utf-8")
    assert canonical_json({"a": "µs", "b": 1}) == canonical_json(a)


def test_a_validated_prescriptions_read_only_source_verifies(keys, trust):
    from types import MappingProxyType
    signed = sign_prescription(RX, keys[0])
    view = MappingProxyType({**signed, "channels": [MappingProxyType(c) for c in signed["channels"]]})
    assert verify_prescription(view, trust) == key_id(keys[1])


def test_key_id_is_a_readable_stable_fingerprint(keys):
    private_key, public_key = keys
    kid = key_id(public_key)
    groups = kid.split("-")
    assert len(groups) == 8 and all(len(g) == 4 and int(g, 16) >= 0 for g in groups)
    assert kid == key_id(private_key.public_key())
    assert kid != key_id(generate_keypair()[1])


def test_key_files_round_trip_and_private_key_is_0600(tmp_path, keys):
    private_key, public_key = keys
    save_private_key(tmp_path / "k.key", private_key)
    save_public_key(tmp_path / "k.pub", public_key)
    assert stat.S_IMODE(os.stat(tmp_path / "k.key").st_mode) == 0o600
    assert key_id(load_private_key(tmp_path / "k.key").public_key()) == key_id(public_key)
    assert key_id(load_public_key(tmp_path / "k.pub")) == key_id(public_key)
    with pytest.raises(FileExistsError):
        save_private_key(tmp_path / "k.key", generate_keypair()[0])
    with pytest.raises(KeyFileError, match="public key"):
        load_private_key(tmp_path / "k.pub")
    with pytest.raises(KeyFileError, match="private key"):
        load_public_key(tmp_path / "k.key")
    (tmp_path / "junk").write_text("hello")
    with pytest.raises(KeyFileError, match="not a readable"):
        load_public_key(tmp_path / "junk")


def test_sign_then_verify_gives_the_signers_key_id(keys, trust):
    signed = sign_prescription(RX, keys[0])
    assert "signature" not in RX  # the input is not modified
    assert signed["signature"]["alg"] == "ed25519"
    assert signed["signature"]["key_id"] == key_id(keys[1])
    # through JSON and back (what a file does) it still verifies
    assert verify_prescription(json.loads(json.dumps(signed, indent=2)), trust) == key_id(keys[1])


def test_unsigned_is_refused(trust):
    with pytest.raises(SignatureError) as e:
        verify_prescription(RX, trust)
    assert e.value.reason == "unsigned"


def test_unknown_key_is_refused_naming_the_key(trust):
    other, other_pub = generate_keypair()
    signed = sign_prescription(RX, other)
    with pytest.raises(SignatureError) as e:
        verify_prescription(signed, trust)
    assert e.value.reason == f"signed by an unknown key {key_id(other_pub)} (not in the trust store)"


@pytest.mark.parametrize("change", [
    lambda rx: rx["channels"][0].__setitem__("max_ma", 61),
    lambda rx: rx.__setitem__("expires", "2028-02-20"),
    lambda rx: rx["blocks"][1]["hz"].__setitem__("max", 150),
    lambda rx: rx.__setitem__("extra", True),
    lambda rx: rx.pop("supervision"),
])
def test_any_change_after_signing_is_refused(keys, trust, change):
    signed = sign_prescription(RX, keys[0])
    altered = copy.deepcopy(signed)
    change(altered)
    with pytest.raises(SignatureError) as e:
        verify_prescription(altered, trust)
    assert e.value.reason == "altered after signing (the signature does not match its content)"


@pytest.mark.parametrize("sig", [
    "abc", {"alg": "rsa", "key_id": "0000-0000-0000-0000-0000-0000-0000-0000", "value": "AA=="},
    {"alg": "ed25519", "key_id": "nope", "value": "AA=="},
    {"alg": "ed25519", "key_id": "0000-0000-0000-0000-0000-0000-0000-0000", "value": "!!"},
    {"alg": "ed25519", "key_id": "0000-0000-0000-0000-0000-0000-0000-0000", "value": "AAAA"},
])
def test_malformed_signature_field_is_refused(trust, sig):
    with pytest.raises(SignatureError) as e:
        verify_prescription({**RX, "signature": sig}, trust)
    assert e.value.reason.startswith("malformed signature field")


def test_trust_store_never_silently_overwrites(tmp_path, keys):
    store = TrustStore(tmp_path / "t")
    kid = store.add(keys[1], label="dr-lee")
    assert store.add(keys[1], label="dr-lee") == kid  # same key again: no-op
    with pytest.raises(ValueError, match="already trusted"):
        store.add(generate_keypair()[1], label="dr-lee")
    with pytest.raises(ValueError, match="label"):
        store.add(generate_keypair()[1], label="../evil")
    assert list(store.keys()) == [kid]
    assert store.labels() == {kid: "dr-lee"}
    (tmp_path / "t" / "broken.pub").write_text("not a key")
    assert list(store.keys()) == [kid] and "broken.pub" in store.problems[0]


# --- the commands ----------------------------------------------------------------------

def run(argv: list[str]) -> int:
    """Through the real `homeapp` entry point."""
    from homeapp.cli import main
    return main(argv)


def test_cli_keygen_sign_verify_round_trip_and_one_byte_change(tmp_path, capsys):
    assert run(["rx", "keygen", "--out", str(tmp_path / "keys")]) == 0
    kid = capsys.readouterr().out.split()[-1]
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / "clinician.key").st_mode) == 0o600
    trust = TrustStore(tmp_path / "trust")
    assert trust.add(tmp_path / "keys" / "clinician.pub", label="clinician") == kid

    rx_path, signed_path = tmp_path / "rx.json", tmp_path / "rx.signed.json"
    rx_path.write_text(json.dumps(RX, indent=2))
    assert run(["rx", "verify", str(rx_path), "--trust", str(trust.directory)]) == 2
    assert "refused: unsigned" in capsys.readouterr().err

    assert run(["rx", "sign", str(rx_path), "--key", str(tmp_path / "keys" / "clinician.key"),
                "--out", str(signed_path)]) == 0
    capsys.readouterr()
    assert run(["rx", "verify", str(signed_path), "--trust", str(trust.directory)]) == 0
    assert kid in capsys.readouterr().out

    # one byte changed: the 60 mA cap becomes 80 mA
    raw = signed_path.read_bytes()
    assert raw.count(b'"max_ma": 60') == 1
    (tmp_path / "tampered.json").write_bytes(raw.replace(b'"max_ma": 60', b'"max_ma": 80'))
    assert run(["rx", "verify", str(tmp_path / "tampered.json"), "--trust", str(trust.directory)]) == 2
    err = capsys.readouterr().err
    assert "altered after signing" in err and "Traceback" not in err


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "keys").mkdir()
    assert run(["rx", "keygen", "--out", str(tmp_path / "keys")]) == 0
    assert run(["rx", "keygen", "--out", str(tmp_path / "keys")]) == 2  # never overwrites
    capsys.readouterr()
    rx_path = tmp_path / "rx.json"
    rx_path.write_text(json.dumps(RX))
    (tmp_path / "bad.json").write_text("{not json")
    cases = [
        ["rx", "sign", str(rx_path), "--key", str(tmp_path / "keys" / "clinician.pub")],  # public, not private
        ["rx", "sign", str(rx_path), "--key", str(tmp_path / "missing.key")],
        ["rx", "sign", str(tmp_path / "bad.json"), "--key", str(tmp_path / "keys" / "clinician.key")],
        ["rx", "verify", str(rx_path), "--trust", str(tmp_path / "no-such-dir")],
    ]
    for argv in cases:
        assert run(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("homeapp: "), (argv, err)


def test_cli_trust_add_prints_the_key_id_and_verify_then_accepts(tmp_path, capsys):
    """The installer's path: the key id printed on adding matches keygen's, the key is
    listed under its label, and a prescription signed with it verifies."""
    assert run(["rx", "keygen", "--out", str(tmp_path / "keys")]) == 0
    kid = capsys.readouterr().out.split()[-1]
    trust_dir = tmp_path / "trust"
    assert run(["rx", "trust", "add", str(tmp_path / "keys" / "clinician.pub"),
                "--label", "dr-lind", "--trust", str(trust_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"trusted {kid} (dr-lind) in {trust_dir}"
    assert run(["rx", "trust", "add", str(tmp_path / "keys" / "clinician.pub"),
                "--trust", str(trust_dir)]) == 0           # the same key again: no second file
    assert sorted(p.name for p in trust_dir.iterdir()) == ["dr-lind.pub"]
    capsys.readouterr()
    assert run(["rx", "trust", "list", "--trust", str(trust_dir)]) == 0
    assert capsys.readouterr().out.split() == [kid, "dr-lind"]
    (tmp_path / "rx.json").write_text(json.dumps(RX))
    assert run(["rx", "sign", str(tmp_path / "rx.json"), "--key", str(tmp_path / "keys" / "clinician.key")]) == 0
    capsys.readouterr()
    assert run(["rx", "verify", str(tmp_path / "rx.json"), "--trust", str(trust_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"signed by {kid} (dr-lind)"


def test_cli_trust_add_refuses_what_is_not_a_clinicians_public_key(tmp_path, capsys):
    run(["rx", "keygen", "--out", str(tmp_path / "a")])
    run(["rx", "keygen", "--out", str(tmp_path / "b")])
    trust_dir = str(tmp_path / "trust")
    assert run(["rx", "trust", "add", str(tmp_path / "a" / "clinician.pub"), "--label", "dr-lind",
                "--trust", trust_dir]) == 0
    (tmp_path / "junk.pub").write_text("not a key\n")
    cases = {
        "a different key is already trusted under the label 'dr-lind'":
            [str(tmp_path / "b" / "clinician.pub"), "--label", "dr-lind"],
        "this is a private key": [str(tmp_path / "a" / "clinician.key")],
        "no such key file": [str(tmp_path / "missing.pub")],
        "not a readable PEM public key": [str(tmp_path / "junk.pub")],
        "label 'dr lind': use letters, digits": [str(tmp_path / "b" / "clinician.pub"), "--label", "dr lind"],
    }
    capsys.readouterr()
    for message, argv in cases.items():
        assert run(["rx", "trust", "add", *argv, "--trust", trust_dir]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and err.startswith("homeapp: "), (argv, err)
    assert list(TrustStore(trust_dir).labels().values()) == ["dr-lind"]   # nothing else added
    # a device with no key yet has an empty trust store, not a missing one
    assert run(["rx", "trust", "list", "--trust", str(tmp_path / "nowhere")]) == 0
    assert "empty: no clinician keys yet" in capsys.readouterr().err


def test_cli_refuses_to_sign_an_invalid_prescription(tmp_path, capsys):
    run(["rx", "keygen", "--out", str(tmp_path / "keys")])
    bad = copy.deepcopy(RX)
    bad["blocks"][0]["hz"] = 400
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    capsys.readouterr()
    assert run(["rx", "sign", str(tmp_path / "bad.json"), "--key", str(tmp_path / "keys" / "clinician.key")]) == 2
    err = capsys.readouterr().err
    assert "refusing to sign" in err and "hz" in err
    assert "signature" not in json.loads((tmp_path / "bad.json").read_text())
    # expired: refused too
    old = {**RX, "issued": "2020-01-01", "expires": "2020-03-01"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert run(["rx", "sign", str(tmp_path / "old.json"), "--key", str(tmp_path / "keys" / "clinician.key")]) == 2
    assert "expire" in capsys.readouterr().err


def test_cli_signs_a_prescription_that_starts_later(tmp_path, capsys):
    run(["rx", "keygen", "--out", str(tmp_path / "keys")])
    later = {**RX, "issued": (dt.date.today() + dt.timedelta(days=7)).isoformat()}
    (tmp_path / "later.json").write_text(json.dumps(later))
    assert run(["rx", "sign", str(tmp_path / "later.json"), "--key", str(tmp_path / "keys" / "clinician.key")]) == 0


def test_duplicate_keys_are_refused_before_signing(tmp_path, capsys):
    run(["rx", "keygen", "--out", str(tmp_path / "keys")])
    text = json.dumps(RX)
    (tmp_path / "dup.json").write_text(text[:-1] + ', "supervision": "caregiver"}')
    capsys.readouterr()
    assert run(["rx", "sign", str(tmp_path / "dup.json"), "--key", str(tmp_path / "keys" / "clinician.key")]) == 2
    assert "duplicate key" in capsys.readouterr().err


def test_round_trip_session_runs_under_the_signed_prescription_and_refuses_one_changed_byte(tmp_path, capsys):
    """keygen -> sign -> trust -> `session run` without --allow-unsigned; the same file with
    one byte changed, the unsigned original and a stranger's signature are each refused
    before any pulse, with the reason."""
    from homeapp.cli import main

    assert main(["rx", "keygen", "--out", str(tmp_path / "keys")]) == 0
    TrustStore(tmp_path / "trust").add(tmp_path / "keys" / "clinician.pub", label="dr-lee")
    short = {**RX, "channels": [{"label": "quad", "max_ma": 60}],
             "blocks": [{"label": "short", "minutes": 0.5, "hz": 30, "pulse_us": 200, "on_s": 5, "off_s": 5,
                         "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"}]}
    (tmp_path / "rx.json").write_text(json.dumps(short, indent=2))
    assert main(["rx", "sign", str(tmp_path / "rx.json"), "--key", str(tmp_path / "keys" / "clinician.key"),
                 "--out", str(tmp_path / "signed.json")]) == 0
    signed = (tmp_path / "signed.json").read_bytes()
    (tmp_path / "tampered.json").write_bytes(signed.replace(b'"max_ma": 60', b'"max_ma": 80', 1))
    stranger = generate_keypair()[0]
    (tmp_path / "stranger.json").write_text(json.dumps(sign_prescription(short, stranger)))
    capsys.readouterr()

    def run_session(name: str, *extra: str) -> tuple[int, str, str]:
        code = main(["session", "run", "--prescription", str(tmp_path / name), "--db", str(tmp_path / f"{name}.db"),
                     "--trace", str(tmp_path / f"{name}.csv"), "--virtual-time", "--trust", str(tmp_path / "trust"),
                     *extra])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = run_session("signed.json")
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"
    for name, reason in [("tampered.json", "altered after signing"), ("rx.json", "unsigned"),
                         ("stranger.json", f"signed by an unknown key {key_id(stranger.public_key())}")]:
        code, out, err = run_session(name)
        assert code == 2 and reason in err, (name, err)
    # --allow-unsigned (simulation, tests) takes the unsigned file and the stranger's, whose
    # key nobody here can check, but never the one changed after signing.
    for name, expected in [("rx.json", 0), ("stranger.json", 0), ("tampered.json", 2)]:
        code, _out, err = run_session(name, "--allow-unsigned")
        assert code == expected, (name, err)
    assert "altered after signing" in err
