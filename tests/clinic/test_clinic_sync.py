"""Every session reaches the clinic, once: the device's real `homeapp sync` against the
real service over TLS on localhost, on SQLite and on PostgreSQL, through kill -9 of
either side and connections cut at random bytes."""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import pytest

from clinic.service import CLI

from .kit import ClinicServer, DeviceDir, DropProxy, clinic_for, set_up_clinic, write_sessions


@pytest.fixture
def paired(db_url, tls_files, tmp_path):
    """(clinic, server, proxy, device): a device paired through a cuttable relay."""
    clinic = clinic_for(db_url)
    code = set_up_clinic(clinic)
    server = ClinicServer(db_url, tls_files).start()
    proxy = DropProxy(server.port)
    device = DeviceDir(tmp_path / "device")
    pair = device.run("clinic", "pair", "--url", proxy.url, "--code", code, "--ca-cert", str(tls_files[2]))
    assert pair.returncode == 0, pair.stderr
    try:
        yield clinic, server, proxy, device
    finally:
        proxy.close()
        server.stop()


def sync(device: DeviceDir) -> tuple[int, dict]:
    r = device.run("sync")
    line = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    assert r.returncode in (0, 3), r.stderr     # never a refusal: everything is genuine
    assert "Traceback" not in r.stderr
    return r.returncode, line


def test_200_sessions_across_a_dozen_syncs_with_kills_and_drops(paired):
    clinic, server, proxy, device = paired
    rng = random.Random(1402)
    written = 0
    outcomes = []
    for round_ in range(12):
        with device.store() as store:
            n = 200 // 12 + (1 if round_ < 200 % 12 else 0)
            write_sessions(store, n, first=written)
            written += n
        action = round_ % 4
        if action == 0:                              # a plain sync
            code, _ = sync(device)
            assert code == 0
        elif action == 1:                            # the connection cut at a random byte
            proxy.cut_after = rng.randrange(200, 60_000)
            code, _ = sync(device)
            proxy.cut_after = None
        elif action == 2:                            # the device's sync killed -9
            proc = device.popen("sync")
            time.sleep(rng.uniform(0.3, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            code = -9
        else:                                        # the clinic killed -9 mid-sync, then restarted
            proc = device.popen("sync")
            time.sleep(rng.uniform(0.4, 1.2))
            server.kill9()
            proc.wait(timeout=60)
            code = proc.returncode
            assert code in (0, 3), proc.stderr.read()
            server.start()                           # same port: the device knows only that address
        outcomes.append(code)
    assert written == 200
    code, line = sync(device)
    assert code == 0 and line["status"] == "ok"
    assert sync(device) == (0, {"uploaded": 0, "prescription": None, "status": "ok"})  # nothing twice

    on_device = device.export()
    at_clinic = json.loads(clinic.export(CLI, "P-0042"))
    ids = [s["id"] for s in at_clinic["sessions"]]
    assert len(ids) == len(set(ids)) == 200
    assert at_clinic == on_device
    assert clinic.export(CLI, "P-0042", "csv") == device.run("log", "export", "--db", str(device.db),
                                                                "--format", "csv").stdout
    assert clinic.export(CLI, "P-0042") == device.run("log", "export", "--db", str(device.db)).stdout
    assert proxy.cuts >= 1 and 3 in outcomes, outcomes   # the failures really happened


def test_the_clinic_keeps_a_bundle_the_device_key_verifies(paired, tmp_path):
    clinic, server, proxy, device = paired
    with device.store() as store:
        write_sessions(store, 3)
    assert sync(device)[0] == 0
    bundle = tmp_path / "from-clinic.bundle"
    bundle.write_text(clinic.bundle(CLI, "P-0042"))
    r = device.run("log", "verify-bundle", str(bundle), "--device-key", str(device.data / "device_key.pub"))
    assert r.returncode == 0, r.stderr


def test_an_unreachable_clinic_keeps_everything_queued(paired):
    clinic, server, proxy, device = paired
    with device.store() as store:
        write_sessions(store, 2)
    server.stop()
    r = device.run("sync")
    assert r.returncode == 3 and json.loads(r.stdout)["status"] == "unreachable"
    assert "cannot be reached" in r.stderr
    server.start()
    # the header, two sessions of 1 + 12 contractions + 4 events + 1 report, the pairing event
    assert sync(device) == (0, {"uploaded": 1 + 2 * (1 + 12 + 4 + 1) + 1, "prescription": None, "status": "ok"})
    assert len(json.loads(clinic.export(CLI, "P-0042"))["sessions"]) == 2


def test_a_clinic_whose_certificate_is_not_trusted_is_refused(db_url, tls_files, tmp_path):
    import trustme
    clinic = clinic_for(db_url)
    code = set_up_clinic(clinic)
    server = ClinicServer(db_url, tls_files).start()
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    try:
        device = DeviceDir(tmp_path / "device")
        r = device.run("clinic", "pair", "--url", server.url, "--code", code, "--ca-cert", str(other_ca))
        assert r.returncode == 2 and "certificate is not trusted" in r.stderr
        r = device.run("clinic", "pair", "--url", "http://clinic.example.org", "--code", code)
        assert r.returncode == 2 and "https only" in r.stderr
    finally:
        server.stop()


def test_what_is_logged_with_the_clock_set_back_still_reaches_the_clinic(paired):
    """The upload's cursor is the log's own order: a session and a device event logged
    after the clock was set back (more than the hour the old time cursor allowed) are not
    skipped, and nothing is sent twice."""
    import datetime as dt
    clinic, server, proxy, device = paired
    now = dt.datetime.now(dt.timezone.utc)
    with device.store() as store:
        write_sessions(store, 1, start=now - dt.timedelta(hours=2))
        store.add_device_event(kind="start_refused", detail={"reason": "before"}, at=now)
    assert sync(device)[0] == 0
    with device.store() as store:                    # the clock set back three days
        store.add_device_event(kind="start_refused", detail={"reason": "after"}, at=now - dt.timedelta(days=3))
        write_sessions(store, 1, first=1, start=now - dt.timedelta(days=4))
    code, line = sync(device)
    assert code == 0 and line["uploaded"] == 1 + 12 + 4 + 1 + 1, line
    assert sync(device) == (0, {"uploaded": 0, "prescription": None, "status": "ok"})
    at_clinic = json.loads(clinic.export(CLI, "P-0042"))
    assert at_clinic == device.export()
    assert len(at_clinic["sessions"]) == 2
    assert [e["detail"].get("reason") for e in at_clinic["device_events"] if e["kind"] == "start_refused"] \
        == ["after", "before"]


def test_a_device_that_lost_its_sync_state_pairs_again_and_resumes_where_the_clinic_stands(paired):
    """sync.db (what was acknowledged, where the clinic is) lost, the device's key kept:
    paired again with a new code for the same patient, the device takes back the chain
    the clinic holds (verified) and sends only what the clinic does not have."""
    clinic, server, proxy, device = paired
    with device.store() as store:
        write_sessions(store, 3)
    assert sync(device)[0] == 0
    for name in ("sync.db", "sync.db-wal", "sync.db-shm"):
        (device.data / name).unlink(missing_ok=True)
    with device.store() as store:
        write_sessions(store, 2, first=3)
    code = clinic.new_pairing_code(CLI, "P-0042")[0]
    pair = device.run("clinic", "pair", "--url", proxy.url, "--code", code,
                      "--ca-cert", str(device.data / "clinic-ca.pem"))
    assert pair.returncode == 0, pair.stderr
    code, line = sync(device)
    # two sessions of 1 + 12 contractions + 4 events + 1 report, and the second pairing's event
    assert code == 0 and line["uploaded"] == 2 * (1 + 12 + 4 + 1) + 1, line
    assert sync(device) == (0, {"uploaded": 0, "prescription": None, "status": "ok"})
    at_clinic = json.loads(clinic.export(CLI, "P-0042"))
    assert [s["id"] for s in at_clinic["sessions"]] == [f"s-{n:05d}" for n in range(5)]
    assert at_clinic == device.export()
    reads = [e for e in clinic.audit_entries(patient_ref="P-0042") if e["action"] == "chain_read"]
    assert reads and reads[0]["detail"]["records"] == 1 + 3 * 18 + 1


def test_a_chain_said_to_be_the_devices_own_is_taken_back_only_when_it_is(tmp_path):
    import base64

    from homeapp import syncproto
    from homeapp.store import Store
    from homeapp.sync import Outbox, _verify_own_chain
    from schedules.signing import generate_keypair, key_id
    key, public = generate_keypair()
    kid = key_id(public)
    other, _ = generate_keypair()
    with Store.open(tmp_path / "homeapp.db") as store:
        write_sessions(store, 2)
        with Outbox(tmp_path / "sync.db") as outbox:
            outbox.refresh(store, device_key_id=kid)
            lines = [line for _, _, line in outbox.lines_after(-1, limit=1000)]
    head = json.loads(lines[-1])["hash"]

    def end(signer, count=len(lines) - 1, head=head):
        return {"kind": "end", "count": count, "head": head, "device_key_id": kid,
                "signature": base64.b64encode(signer.sign(syncproto.end_payload(kid, count, head))).decode()}
    check = lambda lines, end, head=head: _verify_own_chain(lines, end, head, public_key=public, key_id=kid)  # noqa: E731
    assert check(lines, end(key)) is None
    assert "not signed by this device's key" in check(lines, end(other))
    changed = lines[:3] + [lines[3].replace('"peak_ma":', '"peak_ma":1', 1)] + lines[4:]
    assert "record 3 does not continue the chain" in check(changed, end(key))
    assert "record 4 does not continue the chain" in check(lines[:4] + lines[5:], end(key))
    assert "head is not the one" in check(lines[:-1], end(key), head)
    assert "does not begin with this device's header" in _verify_own_chain(
        lines, end(key), head, public_key=public, key_id="another-key")


def test_the_app_sends_a_backlog_in_small_requests(paired):
    """The app's thread sends at most `records_per_request` records a request (making a
    body never holds the interpreter long beside the engine); everything arrives once."""
    from homeapp.device_key import ensure_device_key
    from homeapp.sync import Syncer
    from schedules.signing import TrustStore
    clinic, server, proxy, device = paired
    with device.store() as store:
        write_sessions(store, 3)
        key, kid = ensure_device_key(device.data)
        syncer = Syncer(data_dir=device.data, store=store, device_key=key, device_key_id=kid,
                        trust=TrustStore(device.data / "trust"), records_per_request=7)
        try:
            result = syncer.sync()
        finally:
            syncer.close()
    assert result.uploaded == 1 + 3 * (1 + 12 + 4 + 1) + 1      # the header, three days, the pairing event
    uploads = [e["detail"]["stored"] for e in clinic.audit_entries(patient_ref="P-0042") if e["action"] == "upload"]
    assert sorted(uploads) == [0] * (len(uploads) - 8) + [7] * 8
    assert json.loads(clinic.export(CLI, "P-0042")) == device.export()


def _clinic_link(device):
    """The app's clinic link on this device, as the app opens it; waits until it is open."""
    from homeapp.clinic_link import ClinicLink
    from homeapp.config import load_config
    from schedules.signing import TrustStore
    config = load_config(device.config)
    link = ClinicLink(config=config, trust=TrustStore(config.trust_dir))
    assert link._started.wait(60)
    return link


def _nice(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def test_the_apps_sync_runs_in_a_process_of_its_own_below_the_apps_priority(paired):
    """The app's sync shares no interpreter lock and no priority with the engine's loop:
    its work is done by a child process at a higher niceness, and what it sends arrives."""
    from homeapp.sync_process import SYNC_NICE
    clinic, server, proxy, device = paired
    with device.store() as store:
        write_sessions(store, 4)
    link = _clinic_link(device)
    try:
        syncer = link.background.syncer
        pid = syncer.pid
        assert pid is not None and pid != os.getpid()
        assert _nice(pid) == min(19, _nice(os.getpid()) + SYNC_NICE)
        result = syncer.sync()
        assert result.uploaded == 1 + 4 * (1 + 12 + 4 + 1) + 1   # the header, four days, the pairing event
        assert syncer.status()["last_ok_at"] and syncer.status()["acknowledged"] == result.acknowledged
    finally:
        link.close()
    assert syncer.pid is None                                       # closing the link ends the child
    assert json.loads(clinic.export(CLI, "P-0042")) == device.export()


def test_the_sync_process_killed_mid_upload_is_started_again_and_resumes(paired):
    """kill -9 of the app's sync process in the middle of a backlog's upload: the next
    sync starts a new process, and the clinic ends with every session once."""
    from homeapp.sync import ClinicUnreachable
    from homeapp.sync_process import SyncProcess
    clinic, server, proxy, device = paired
    with device.store() as store:
        write_sessions(store, 60, contractions=20, events=10)
    syncer = SyncProcess(data_dir=device.data, db_path=device.db, trust_dir=device.data / "trust",
                         records_per_request=50)
    try:
        first = syncer.pid

        def kill_after_the_first_upload() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(e["action"] == "upload" for e in clinic.audit_entries(patient_ref="P-0042")):
                    os.kill(first, signal.SIGKILL)
                    return
                time.sleep(0.005)
        killer = threading.Thread(target=kill_after_the_first_upload)
        killer.start()
        with pytest.raises(ClinicUnreachable, match="sync process ended"):
            syncer.sync()
        killer.join()
        uploads = [e for e in clinic.audit_entries(patient_ref="P-0042") if e["action"] == "upload"]
        assert 1 <= len(uploads) < 60 * (1 + 40 + 10 + 1) // 50       # cut mid-way, not before nor after
        result = syncer.sync()
        assert syncer.pid not in (None, first)
        assert result.uploaded > 0
        assert syncer.sync().uploaded == 0                          # nothing twice
    finally:
        syncer.close()
    at_clinic = json.loads(clinic.export(CLI, "P-0042"))
    assert [s["id"] for s in at_clinic["sessions"]] == [f"s-{n:05d}" for n in range(60)]
    assert at_clinic == device.export()
