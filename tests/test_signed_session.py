"""Issue 7's round trip through the real commands: keygen, sign, verify, a session run
under the signed prescription without --allow-unsigned; one byte changed is refused, with
the reason on stderr and in the device log."""
from __future__ import annotations

import json

from homeapp.cli import main
from homeapp.store import Store
from tests.sessionkit import rx_dict


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_signed_prescription_runs_and_one_changed_byte_is_refused(tmp_path, capsys):
    keys, trust = tmp_path / "keys", tmp_path / "trust"
    trust.mkdir()
    code, out, _ = _cli(capsys, "rx", "keygen", "--out", str(keys))
    assert code == 0
    (trust / "clinician.pub").write_bytes((keys / "clinician.pub").read_bytes())
    rx = tmp_path / "rx.json"
    rx.write_text(json.dumps(rx_dict(), indent=1))
    signed = tmp_path / "rx.signed.json"
    assert _cli(capsys, "rx", "sign", str(rx), "--key", str(keys / "clinician.key"),
                "--out", str(signed))[0] == 0
    code, out, _ = _cli(capsys, "rx", "verify", str(signed), "--trust", str(trust))
    assert code == 0
    key_id = json.loads(signed.read_text())["signature"]["key_id"]
    assert key_id in out

    db = tmp_path / "log.db"
    run = ["session", "run", "--prescription", str(signed), "--db", str(db), "--virtual-time",
           "--trust", str(trust)]
    code, out, err = _cli(capsys, *run, "--trace", str(tmp_path / "ok.csv"))
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"

    text = signed.read_text()
    assert '"max_ma": 60' in text
    tampered = tmp_path / "rx.tampered.json"
    tampered.write_text(text.replace('"max_ma": 60', '"max_ma": 70', 1))  # one byte: 6 -> 7
    code, out, err = _cli(capsys, "session", "run", "--prescription", str(tampered), "--db", str(db),
                          "--virtual-time", "--trust", str(trust), "--trace", str(tmp_path / "bad.csv"))
    assert code == 2 and out == ""
    assert "altered after signing" in err
    with Store.open(db) as store:
        assert len(store.sessions()) == 1  # no session was started for the tampered file
        refused = [e for e in store.device_events() if e["kind"] == "start_refused"]
    assert refused and "altered after signing" in json.dumps(refused[-1])

    other = tmp_path / "other-trust"
    other.mkdir()
    code, _, err = _cli(capsys, *run, "--trace", str(tmp_path / "unknown.csv"), "--trust", str(other))
    assert code == 2 and "unknown key" in err
