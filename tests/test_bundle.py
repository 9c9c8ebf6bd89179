"""Log bundles (issue 7): written from the log, verified intact, and every kind of tampering
(changed, removed, inserted, reordered records; wrong key; cut short; not a bundle) caught
and named."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from homeapp.bundle import FORMAT, BundleError, read_bundle, record_hash, verify_bundle, write_bundle
from homeapp.device_key import ensure_device_key
from schedules.signing import generate_keypair, key_id, load_public_key
from tests.bench.bench_report import synthetic_export


@pytest.fixture(scope="module")
def export():
    return synthetic_export(12, contractions_per_session=3)


@pytest.fixture
def device(tmp_path):
    private_key, kid = ensure_device_key(tmp_path / "data")
    return private_key, private_key.public_key()


@pytest.fixture
def bundle(tmp_path, export, device):
    path = tmp_path / "log.bundle"
    write_bundle(export, path, device_key=device[0])
    return path


def lines_of(path):
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def find(lines, kind, nth=0):
    """Index (in `lines`) of the nth record of a kind."""
    hits = [i for i, l in enumerate(lines) if json.loads(l).get("kind") == kind]
    return hits[nth]


def test_device_key_made_once_and_private_part_is_0600(tmp_path):
    k1, id1 = ensure_device_key(tmp_path / "d")
    k2, id2 = ensure_device_key(tmp_path / "d")
    assert id1 == id2 == key_id(load_public_key(tmp_path / "d" / "device_key.pub"))
    assert (tmp_path / "d" / "device_key.pem").stat().st_mode & 0o777 == 0o600


def test_intact_bundle_verifies_and_reads_back(bundle, export, device):
    assert verify_bundle(bundle, device[1]) == []
    b = read_bundle(bundle)
    assert b.device_key_id == key_id(device[1]) and b.header["format"] == FORMAT
    back = b.export()
    assert [s["id"] for s in back["sessions"]] == [s["id"] for s in export["sessions"]]
    s3 = export["sessions"][3]
    assert back["sessions"][3]["events"] == [{"session_id": s3["id"], **e} for e in s3["events"]]
    assert back["sessions"][3]["contraction_list"] == [{"session_id": s3["id"], **c} for c in s3["contraction_list"]]
    assert {k: back["sessions"][3][k] for k in ("status", "channels", "started_at")} == \
        {k: s3[k] for k in ("status", "channels", "started_at")}
    assert back["prescriptions"] == export["prescriptions"]
    assert lines_of(bundle)[-1].startswith('{"kind": "end"')


def test_every_record_chains_to_the_previous(bundle):
    recs = [json.loads(l) for l in lines_of(bundle)[:-1]]
    for prev, rec in zip(recs, recs[1:]):
        assert rec["prev_hash"] == prev["hash"]
        assert rec["hash"] == record_hash(rec["seq"], rec["kind"], rec["data"], rec["prev_hash"])


def test_changed_record_is_named(bundle, device):
    lines = lines_of(bundle)
    i = find(lines, "event", 5)
    rec = json.loads(lines[i])
    rec["data"]["detail"]["ma"] = 99
    lines[i] = json.dumps(rec)
    write_lines(bundle, lines)
    assert verify_bundle(bundle, device[1]) == [
        f"record {rec['seq']} (event of session {rec['data']['session_id']}): content changed"]


def test_changed_record_with_recomputed_hash_is_named(bundle, device):
    lines = lines_of(bundle)
    i = find(lines, "session", 2)
    rec = json.loads(lines[i])
    rec["data"]["status"] = "completed" if rec["data"]["status"] != "completed" else "stopped"
    rec["hash"] = record_hash(rec["seq"], rec["kind"], rec["data"], rec["prev_hash"])
    lines[i] = json.dumps(rec)
    write_lines(bundle, lines)
    problems = verify_bundle(bundle, device[1])
    assert problems == [f"record {rec['seq']} (session {rec['data']['id']}): content changed "
                        f"(its hash was recomputed; record {rec['seq'] + 1} no longer links to it)"]


def test_removed_record_is_named(bundle, device):
    lines = lines_of(bundle)
    i = find(lines, "contraction", 4)
    seq = json.loads(lines[i])["seq"]
    del lines[i]
    write_lines(bundle, lines)
    assert verify_bundle(bundle, device[1]) == [f"record {seq} missing between {seq - 1} and {seq + 1}"]


def test_records_cut_off_the_end_are_named(bundle, device):
    lines = lines_of(bundle)
    last_seq = json.loads(lines[-2])["seq"]
    write_lines(bundle, lines[:-3] + lines[-1:])
    assert verify_bundle(bundle, device[1]) == [
        f"records {last_seq - 1}-{last_seq} missing at the end (after {last_seq - 2}): the bundle was cut short"]


def test_reordered_records_are_named(bundle, device):
    lines = lines_of(bundle)
    i = find(lines, "event", 2)
    a, b = json.loads(lines[i])["seq"], json.loads(lines[i + 1])["seq"]
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    write_lines(bundle, lines)
    assert verify_bundle(bundle, device[1]) == [f"records {a} and {b} out of order"]


def test_record_moved_far_is_named(bundle, device):
    lines = lines_of(bundle)
    i = find(lines, "session", 1)
    seq = json.loads(lines[i])["seq"]
    moved = lines.pop(i)
    lines.insert(len(lines) - 3, moved)
    write_lines(bundle, lines)
    problems = verify_bundle(bundle, device[1])
    assert len(problems) == 1 and problems[0].startswith(f"record {seq} out of order (found after record ")


def test_inserted_records_are_named(bundle, device):
    lines = lines_of(bundle)
    i = find(lines, "event", 3)
    orig = json.loads(lines[i])
    fake = dict(orig, data={**orig["data"], "kind": "estop", "detail": {}})
    fake["hash"] = record_hash(fake["seq"], fake["kind"], fake["data"], fake["prev_hash"])
    lines.insert(i + 1, json.dumps(fake))                 # a forged duplicate of record seq
    beyond = dict(orig, seq=10_000)
    lines.insert(3, json.dumps(beyond))                   # a seq past the signed count
    write_lines(bundle, lines)
    problems = verify_bundle(bundle, device[1])
    assert problems == [
        f"inserted record at line 4 (event of session {orig['data']['session_id']}, seq 10000): "
        f"beyond the {len(lines) - 4} signed records",
        f"inserted record at line {i + 3} (event of session {orig['data']['session_id']}): a second record "
        f"{orig['seq']}, not part of the signed chain"]


def test_rewritten_and_resigned_bundle_fails_the_signature(bundle, export, device, tmp_path):
    forger_key, forger_pub = generate_keypair()
    forged = tmp_path / "forged.bundle"
    write_bundle(export, forged, device_key=forger_key)
    problems = verify_bundle(forged, device[1])
    assert len(problems) == 1 and problems[0].startswith("signature does not match the device key")
    assert key_id(forger_pub) in problems[0]


def test_head_rewritten_without_the_key_fails_the_signature(bundle, device):
    lines = lines_of(bundle)
    end = json.loads(lines[-1])
    end["count"] -= 1
    lines[-1] = json.dumps(end)
    write_lines(bundle, lines)
    problems = verify_bundle(bundle, device[1])
    assert problems[0] == "signature does not match the device key"


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a log bundle (binary data"),
    (b'{"sessions": []}\n', "does not start with a homeapp.log-bundle/1 header"),
    (b'{"format": "homeapp.prescription/1", "id": "rx"}', "its format is 'homeapp.prescription/1'"),
    (b"hello world\n", "does not start with a homeapp.log-bundle/1 header"),
])
def test_files_that_are_not_bundles_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(BundleError, match="not a log bundle") as e:
        read_bundle(path)
    assert message in str(e.value)


def test_corrupt_line_is_named(bundle, device):
    lines = lines_of(bundle)
    lines[5] = lines[5][: len(lines[5]) // 2]
    write_lines(bundle, lines)
    problems = verify_bundle(bundle, device[1])
    assert problems[0] == "line 6: not a JSON record (corrupt or cut)"
    assert "record 5 missing between 4 and 6" in problems


class FakeStore:
    def __init__(self, export):
        self._export = export
        self.asked_since = "unset"

    def export(self, since=None):
        self.asked_since = since
        return {"sessions": [s for s in self._export["sessions"]
                             if since is None or dt.datetime.fromisoformat(s["started_at"]) >= since]}

    def prescriptions(self):
        return self._export["prescriptions"]


def test_since_limits_the_sessions(tmp_path, export, device):
    store = FakeStore(export)
    since = export["sessions"][6]["started_at"][:10]
    write_bundle(store, tmp_path / "b", device_key=device[0], since=since)
    assert store.asked_since == dt.datetime.fromisoformat(since).replace(tzinfo=dt.timezone.utc)
    b = read_bundle(tmp_path / "b")
    assert b.header["since"] == since
    assert {s["id"] for s in b.export()["sessions"]} == {s["id"] for s in export["sessions"][6:]}
    assert b.export()["prescriptions"] == export["prescriptions"]  # the one in force, whatever `since`
    # a bare export dict is filtered by the bundle writer itself
    write_bundle(export, tmp_path / "c", device_key=device[0], since=since)
    assert len(read_bundle(tmp_path / "c").export()["sessions"]) == len(export["sessions"]) - 6


# --- the commands ----------------------------------------------------------------------

def run(argv: list[str]) -> int:
    """Through the real `homeapp` entry point."""
    from homeapp.cli import main
    return main(argv)


def test_cli_verify_bundle(bundle, tmp_path, capsys, device):
    pub = tmp_path / "data" / "device_key.pub"
    assert run(["log", "verify-bundle", str(bundle), "--device-key", str(pub)]) == 0
    assert "intact" in capsys.readouterr().out
    lines = lines_of(bundle)
    lines[4], lines[5] = lines[5], lines[4]
    write_lines(bundle, lines)
    assert run(["log", "verify-bundle", str(bundle), "--device-key", str(pub)]) == 2
    out = capsys.readouterr()
    assert "records 4 and 5 out of order" in out.err and "NOT intact" in out.out


@pytest.mark.parametrize("make", [
    lambda t, b: ["log", "verify-bundle", str(b), "--device-key", str(t / "data" / "device_key.pem")],  # private
    lambda t, b: ["log", "verify-bundle", str(b), "--device-key", str(t / "missing.pub")],
    lambda t, b: ["log", "verify-bundle", str(t / "data" / "device_key.pub"), "--device-key",
                  str(t / "data" / "device_key.pub")],  # a key is not a bundle
    lambda t, b: ["log", "verify-bundle", str(t / "nope.bundle"), "--device-key", str(t / "data" / "device_key.pub")],
    lambda t, b: ["log", "bundle", "--db", str(t / "none.db"), "--out", str(t / "o"), "--data-dir", str(t / "data")],
    lambda t, b: ["log", "bundle", "--db", str(b), "--out", str(t / "o"), "--since", "last tuesday",
                  "--data-dir", str(t / "data")],
])
def test_cli_errors_are_one_line(tmp_path, bundle, capsys, make):
    assert run(make(tmp_path, bundle)) == 2
    err = capsys.readouterr().err
    assert err.startswith("homeapp: ") and err.count("\n") == 1 and "Traceback" not in err, err


def test_cli_bundle_from_a_real_log_holds_every_record(tmp_path, capsys):
    from homeapp.store import Store
    from schedules.validate import parse_prescription
    from tests.bench.bench_report import RX

    today = dt.date.today()
    rx = parse_prescription({**RX, "issued": today.isoformat(),
                             "expires": (today + dt.timedelta(days=30)).isoformat()}, today=today)
    db = tmp_path / "log.db"
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    with Store.open(db) as store:
        store.save_prescription(rx)
        for n in range(2):
            sid = f"s-{n}"
            store.start_session(session_id=sid, prescription_id=rx.id, started_at=start + dt.timedelta(hours=5 * n),
                                planned_contractions=2, channels=2)
            store.add_event(sid, t=1.0, kind="intensity", detail={"channel": 0, "ma": 20})
            store.add_event(sid, t=2.0, kind="estop", detail={})
            store.add_contraction(sid, channel=0, index=0, start_t=1, end_t=11, peak_ma=20, completed=True)
            store.add_contraction(sid, channel=1, index=0, start_t=1, end_t=11, peak_ma=18, completed=False)
            store.end_session(sid, status="aborted", ended_at=start + dt.timedelta(hours=5 * n, minutes=1))
            store.save_report(sid, pain=3, effort=4.5)
        store.save_report("s-1", pain=2, effort=4.0, comment="corrected")
        refused_at = start + dt.timedelta(hours=12)
        store.add_device_event(kind="start_refused", at=refused_at,
                               detail={"reasons": ["the emergency stop button is pressed"]})
    out = tmp_path / "usb" / "log.bundle"
    out.parent.mkdir()
    assert run(["log", "bundle", "--db", str(db), "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    assert "signed by device key" in capsys.readouterr().out
    kinds = [r.kind for r in read_bundle(out).records]
    assert kinds == ["prescription"] + ["session", "contraction", "contraction", "event", "event", "report"] \
        + ["session", "contraction", "contraction", "event", "event", "report", "report"] \
        + ["device_event"]                  # a refused start reaches the clinician too
    back = read_bundle(out).export()
    assert [(e["kind"], e["detail"]) for e in back["device_events"]] == \
        [("start_refused", {"reasons": ["the emergency stop button is pressed"]})]
    assert back["prescriptions"][0]["source"]["id"] == rx.id
    assert [r["comment"] for r in back["sessions"][1]["reports"]] == [None, "corrected"]
    assert run(["log", "verify-bundle", str(out), "--device-key", str(tmp_path / "data" / "device_key.pub")]) == 0
    # the device event is chained and signed like the rest: a change to it is named
    lines = lines_of(out)
    rec = json.loads(lines[-2])
    rec["data"]["kind"] = "pin_lockout"
    write_lines(tmp_path / "altered.bundle", lines[:-2] + [json.dumps(rec), lines[-1]])
    assert verify_bundle(tmp_path / "altered.bundle", load_public_key(tmp_path / "data" / "device_key.pub")) == [
        f"record {rec['seq']} (device event pin_lockout at {refused_at.isoformat()}): content changed"]
    # --since leaves the first session out
    since = (start + dt.timedelta(hours=1)).isoformat()
    assert run(["log", "bundle", "--db", str(db), "--out", str(tmp_path / "b2"), "--since", since,
                "--data-dir", str(tmp_path / "data")]) == 0
    assert [s["id"] for s in read_bundle(tmp_path / "b2").export()["sessions"]] == ["s-1"]


def test_a_reformatted_but_unchanged_line_still_verifies(bundle, device):
    lines = lines_of(bundle)
    lines[7] = json.dumps(json.loads(lines[7]), indent=None, separators=(", ", ": "))
    write_lines(bundle, lines)
    assert verify_bundle(bundle, device[1]) == []


def test_a_huge_forged_count_is_named_not_looped_over(bundle, device):
    lines = lines_of(bundle)
    end = json.loads(lines[-1])
    end["count"] = 10**15
    lines[-1] = json.dumps(end)
    write_lines(bundle, lines)
    problems = verify_bundle(bundle, device[1])
    assert problems[0] == "signature does not match the device key"
    assert problems[1].endswith(f"-{10**15} missing at the end (after {len(lines) - 2}): the bundle was cut short")
