"""Figures of the clinic service (`make bench`), each beside its goal:

- ingest: one day's upload per device (a 20-minute two-channel session: 45 contractions a
  channel, 40 events, a report), many devices in parallel, each as the device's sync sends
  it when it knows what the clinic holds (one signed request continuing its chain; the
  answer carries the prescription offer), against PostgreSQL (goal >= 200 uploads/s:
  10,000 devices in a minute) and SQLite, with where the CPU went: the service's processes,
  the database server's, and the load generator's (the devices' side, which shares these
  cores here), and the rate the service alone would sustain;
- the device's side: wall time and bytes of that day's sync over loopback TLS (goal <= 1 s);
- the engine loop's worst gap (heartbeat to heartbeat, from the board's trace) during a
  real-time session, without and with the app's sync (its own process) working beside it;
  the clinic, another machine in real life, is kept apart here: niceness 19, its database
  in /dev/shm.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench import Figure

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 400
CONCURRENCY = 48
SERVER_PROCESSES = 2      # `serve --workers`: one per core
CONTRACTIONS, EVENTS = 45, 40
#: The engine-gap session: its length, and the windows without and with a sync in turn.
GAP_SESSION_MIN = 2.0
GAP_WINDOW_S = 10
GAP_MARGIN_S = 1.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _serve(db_url: str, *tls: str, workers: int = 1) -> tuple[subprocess.Popen, int]:
    args = [sys.executable, "-m", "clinic.cli", "serve", "--port", "0", "--db", db_url, "--workers", str(workers)]
    if tls:
        args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    first = proc.stdout.readline()
    if "listening on" not in first:
        proc.kill()
        raise RuntimeError(f"the clinic did not start: {first!r}")
    return proc, int(first.rsplit(":", 1)[1])


# ---------------------------------------------------------------------------- CPU accounting

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one live process and of its children that ended and
    were waited for (0 when it is gone). The children count: PostgreSQL's backend of a
    connection the service's pool opened and closed again within the timed run has ended
    by its end, and its CPU is then only in the postmaster's account of its children."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree(pid: int) -> list[int]:
    """The process and every descendant (the service's workers, PostgreSQL's backends)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, ()))
    return out


def _tree_cpu_s(pid: int) -> dict[int, float]:
    return {p: _cpu_s(p) for p in _tree(pid)}


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds a process tree used between two readings (processes that started in
    between count from zero; the backends and workers live through the timed run)."""
    return sum(after[p] - before.get(p, 0.0) for p in after)


def _day_records(kid: str, day: int) -> list[tuple[str, dict]]:
    """One day's records: a 20-minute two-channel session with its contractions, events, report."""
    start = dt.datetime(2026, 11, 1, 9, tzinfo=dt.timezone.utc) + dt.timedelta(days=day)
    sid = f"s-{kid[:9]}-{day}"
    records = [("session", {"id": sid, "prescription_id": "rx-0001", "started_at": start.isoformat(),
                            "ended_at": (start + dt.timedelta(minutes=20)).isoformat(), "status": "completed",
                            "planned_contractions": CONTRACTIONS,
                            "channels": [{"contractions": CONTRACTIONS, "peak_ma": 41.5, "mean_ma": 38.2,
                                          "contractions_cut_short": 0}] * 2, "recovered_at": None})]
    for ch in range(2):
        for k in range(CONTRACTIONS):
            records.append(("contraction", {"session_id": sid, "channel": ch, "index": k, "start_t": 10.0 + 26 * k,
                                            "end_t": 20.0 + 26 * k, "peak_ma": 35.0 + (k % 7), "completed": True}))
    for k in range(EVENTS):
        records.append(("event", {"session_id": sid, "t": 3.5 + 29 * k, "kind": "intensity",
                                  "detail": {"channel": k % 2, "ma": 30 + k % 9}}))
    records.append(("report", {"session_id": sid, "pain": 2, "effort": 4.5, "comment": None,
                               "reported_at": (start + dt.timedelta(minutes=22)).isoformat()}))
    return records


def _body(key, kid: str, records: list[tuple[str, dict]], first_seq: int, prev: str) -> tuple[bytes, str]:
    """An upload body continuing a chain at `first_seq` after the record hashed `prev`."""
    from tests.clinic.kit import upload_body
    body, _, head = upload_body(key, kid, records, first_seq, prev)
    return body, head


def _devices(db_url: str, n: int) -> list[tuple]:
    """n devices paired through the service's own API, each with yesterday's upload (the
    header and a day, sent before the clock starts) and today's (timed)."""
    from clinic.db import migrate, open_engine
    from clinic.service import CLI, Clinic
    from homeapp import syncproto
    from homeapp.sync import GENESIS
    from schedules.signing import generate_keypair, key_id
    clinic = Clinic(open_engine(db_url))
    migrate(clinic.engine)
    clinic.add_clinician("bench", "a long bench password")
    out = []
    for i in range(n):
        clinic.add_patient(f"P-{i:05d}", "bench")
        code, _ = clinic.new_pairing_code(CLI, f"P-{i:05d}")
        key, public = generate_keypair()
        kid = key_id(public)
        clinic.pair_device(code, public)
        header = [("header", {"format": syncproto.LOG_FORMAT, "device_key_id": kid,
                              "created_at": "2026-11-01T08:00:00+00:00", "since": None})]
        first = header + _day_records(kid, 0)
        yesterday, head = _body(key, kid, first, 0, GENESIS)
        today_records = _day_records(kid, 1)
        today, _ = _body(key, kid, today_records, len(first), head)
        out.append((key, kid, yesterday, today, len(today_records)))
    return out


async def _post_all(port: int, requests: list[tuple[list[tuple[str, str]], bytes]]) -> float:
    """Every upload as a device sends it, CONCURRENCY at a time, each on a connection of
    its own (a device's sync opens one): the request line, the signed headers, the body,
    then the answer read whole. h11 (httpx's own HTTP/1.1 layer) on asyncio streams: the
    devices' side of the bench costs the shared cores as little as it can."""
    import h11
    queue = list(requests)
    failures: list[str] = []

    async def one(headers: list[tuple[str, str]], body: bytes) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = h11.Connection(h11.CLIENT)
        try:
            writer.write(conn.send(h11.Request(method="POST", target="/api/device/log", headers=[
                ("Host", f"127.0.0.1:{port}"), ("Content-Length", str(len(body))), ("Connection", "close"),
                *headers])) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            status, answer = 0, b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    answer += bytes(event.data)
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            if status != 200:
                failures.append(f"{status} {answer[:200]!r}")
        finally:
            writer.close()

    async def worker() -> None:
        while queue:
            await one(*queue.pop())
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} uploads failed, e.g. {failures[0]}")
    return wall


def _signed(devices: list[tuple], which: int) -> list[tuple[list[tuple[str, str]], bytes]]:
    """Each device's upload (`which`: 2 yesterday's, 3 today's) with its signed headers,
    made before the clock starts: signing is the device's work, not the clinic's."""
    from homeapp import syncproto
    out = []
    for device in devices:
        key, kid, body = device[0], device[1], device[which]
        headers = syncproto.sign_request(key, kid, "POST", "/api/device/log", body)
        headers["Content-Type"] = syncproto.LOG_CONTENT_TYPE
        out.append((list(headers.items()), body))
    return out


@dataclass
class IngestRun:
    """One timed ingest: the rate, and where the CPU went (ms per upload)."""

    rate: float
    records: int
    service_ms: float
    database_ms: float
    devices_ms: float
    load: tuple[float, float]      # 1-minute load average before and after
    cores: int                     # cores the service can use: one per process (the GIL), at most all

    def service_alone(self) -> float:
        """Uploads/s the service and its database would sustain with its cores to themselves."""
        return self.cores * 1000 / (self.service_ms + self.database_ms)


def _ingest(db_url: str, workers: int, postmaster_pid: int | None = None) -> IngestRun:
    devices = _devices(db_url, DEVICES)
    proc, port = _serve(db_url, workers=workers)
    try:
        time.sleep(1.0 if workers > 1 else 0.1)       # the workers' start-up is not timed
        asyncio.run(_post_all(port, _signed(devices, 2)))     # yesterday: the chains begin
        today = _signed(devices, 3)
        load_before = os.getloadavg()[0]
        service0 = _tree_cpu_s(proc.pid)
        database0 = _tree_cpu_s(postmaster_pid) if postmaster_pid else {}
        own0 = time.process_time()
        wall = asyncio.run(_post_all(port, today))            # this evening: timed
        own = time.process_time() - own0
        service = _used(service0, _tree_cpu_s(proc.pid))
        database = _used(database0, _tree_cpu_s(postmaster_pid)) if postmaster_pid else 0.0
        load_after = os.getloadavg()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return IngestRun(rate=DEVICES / wall, records=devices[0][4], service_ms=service * 1000 / DEVICES,
                     database_ms=database * 1000 / DEVICES, devices_ms=own * 1000 / DEVICES,
                     load=(load_before, load_after), cores=min(workers, os.cpu_count() or 1))


def _ingest_rows(label: str, run: IngestRun, goal: str, setup: str) -> list[Figure]:
    where = (f"{setup}; load average {run.load[0]:.2f} before, {run.load[1]:.2f} after (2 cores, shared); "
             f"the devices' side (h11 client) on the same cores")
    return [
        Figure(f"clinic ingest, {label}, {DEVICES} devices x 1 day ({run.records} records)", run.rate, "uploads/s",
               goal, where),
        Figure(f"  service CPU per upload, {label}", run.service_ms, "ms", "",
               "every service process: HTTP, signature, chain, parsing, inserts"),
        Figure(f"  database CPU per upload, {label}", run.database_ms, "ms", "",
               "the PostgreSQL server's processes (backends that ended within the run included)"
               if run.database_ms else "SQLite runs inside the service"),
        Figure(f"  devices' side CPU per upload (load generator), {label}", run.devices_ms, "ms", "",
               "connections, requests, answers: on the devices in real life"),
        Figure(f"  uploads/s the service alone would sustain on {run.cores} core{'s' * (run.cores > 1)}, {label}",
               run.service_alone(), "uploads/s", goal,
               "cores / (service + database CPU per upload): the figure without the load generator"),
    ]


def ingest_figures() -> list[Figure]:
    from tests.clinic.pg import PostgresServer, PostgresUnavailable
    rows = []
    try:
        pg = PostgresServer(fsync=True).start()
    except PostgresUnavailable as e:
        rows.append(Figure("clinic ingest on PostgreSQL: NOT MEASURED", float("nan"), "", ">= 200", str(e)))
    else:
        try:
            postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
            run = _ingest(pg.new_database(), SERVER_PROCESSES, postmaster)
            rows += _ingest_rows("PostgreSQL", run, ">= 200",
                                 f"`serve --workers {SERVER_PROCESSES}`, {CONCURRENCY} devices at once, each a day's "
                                 f"sync (one signed request on a new connection), fsync on, plain HTTP (TLS in front)")
        finally:
            pg.stop()
    with tempfile.TemporaryDirectory() as tmp:
        run = _ingest(f"sqlite:///{tmp}/clinic.db", 1)
        rows += _ingest_rows("SQLite", run, "", "1 service process (SQLite has one writer)")
    return rows


# ---------------------------------------------------------------------------- the device's side

def _tls(folder: Path) -> tuple[str, str, str]:
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(folder / "k.pem"))
    with open(folder / "c.pem", "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return str(folder / "c.pem"), str(folder / "k.pem"), str(folder / "ca.pem")


def _paired_syncer(folder: Path, port: int, ca: str, code: str, *, in_app: bool = True):
    """A device's sync paired with the clinic, made as the app makes it (`in_app`: the
    sync's own process, homeapp/sync_process.py), and the device's log."""
    from homeapp.device_key import ensure_device_key
    from homeapp.store import Store
    from homeapp.sync import APP_RECORDS_PER_REQUEST, Syncer
    from homeapp.sync_process import SyncProcess
    from schedules.signing import TrustStore
    store = Store.open(folder / "homeapp.db")
    if in_app:
        syncer = SyncProcess(data_dir=folder, db_path=folder / "homeapp.db", trust_dir=folder / "t",
                             records_per_request=APP_RECORDS_PER_REQUEST)
    else:
        key, kid = ensure_device_key(folder)
        syncer = Syncer(data_dir=folder, store=store, device_key=key, device_key_id=kid,
                        trust=TrustStore(folder / "t"))
    syncer.pair(f"https://localhost:{port}", code, ca_cert=ca)
    return syncer, store


def _clinic_apart(proc) -> None:
    """The clinic is another machine for the device: its processes yield every core the
    device's want (niceness 19); its database is on a memory file system (see device_figures)."""
    for pid in _tree(proc.pid):
        for tid in os.listdir(f"/proc/{pid}/task"):    # Linux: niceness is each thread's
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), 19)
            except OSError:
                pass


#: What the device figures' notes say of the clinic's place on this machine.
CLINIC_APART = ("the clinic (another machine in real life) runs here at niceness 19 with its database "
                "in /dev/shm; the device's log and outbox are on the disk")


def device_figures() -> list[Figure]:
    from tests.clinic.kit import clinic_for, set_up_clinic, write_sessions
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as shm:
        d = Path(tmp)
        cert, key, ca = _tls(d)
        db_url = f"sqlite:///{shm}/clinic.db"
        clinic = clinic_for(db_url)
        proc, port = _serve(db_url, cert, key)
        _clinic_apart(proc)
        try:
            (d / "dev").mkdir()
            syncer, store = _paired_syncer(d / "dev", port, ca, set_up_clinic(clinic, patient="P-DAY"))
            syncer.sync()                                    # the pairing's own record
            write_sessions(store, 1, contractions=CONTRACTIONS, events=EVENTS,
                           start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
            t0 = time.perf_counter()
            result = syncer.sync()
            wall = time.perf_counter() - t0
            rows.append(Figure("device sync of one day's session over loopback TLS (in the app)", wall, "s",
                               "<= 1", f"{result.uploaded} records, {result.bytes_sent} bytes sent, "
                                       f"{result.bytes_received} received (sent: bodies and signed headers; "
                                       f"received: bodies); the app's sync process, started before"))
            write_sessions(store, 1, first=1, contractions=CONTRACTIONS, events=EVENTS,
                           start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=30))
            syncer.close()
            store.close()
            cfg = d / "dev.toml"
            cfg.write_text(f'[paths]\ndata_dir = "{d / "dev"}"\n')
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "homeapp.cli", "--config", str(cfg), "sync"],
                                 capture_output=True, text=True, env=_env())
            wall = time.perf_counter() - t0
            rows.append(Figure("`homeapp sync` of one day's session, whole command", wall, "s", "<= 1",
                               f"Python start-up included; {out.stdout.strip()}"))
            rows.extend(_engine_gaps(d, port, ca, clinic))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return rows


#: A bare sleeper in a process of its own, beside the session: how late the machine
#: itself wakes a thread that asks for 100 ms (the load of others, the host), which no
#: change to the device's code can remove.
_SLEEPER = """
import sys, time
late = []
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    t = time.monotonic()
    time.sleep(0.1)
    late.append((time.monotonic() - t - 0.1) * 1000)
late.sort()
print(f"{late[-1]:.1f} {late[int(len(late) * 0.99)]:.1f}")
"""


def _engine_gaps(d: Path, port: int, ca: str, clinic) -> list[Figure]:
    """The engine loop's heartbeat gaps in a real-time session of GAP_SESSION_MIN minutes
    whose sync (as in the app: its own process, driven from a thread of the session's
    process) is switched on and off every GAP_WINDOW_S seconds: the windows with and
    without a sync share the machine's load, which on a shared machine sways a gap far
    more than a sync does. In each window with a sync, a device paired just before (its
    own key and outbox, the session's own log) uploads the log's 60-day backlog, then
    syncs every 0.2 s. Beside it, a bare sleeper process measures how late the machine
    wakes anyone."""
    from homeapp.runner import run_session
    from homeapp.store import Store
    from homeapp.sync import APP_RECORDS_PER_REQUEST
    from homeapp.sync_process import SyncProcess
    from hw.sim.trace import Trace
    from tests.clinic.kit import set_up_clinic, write_sessions
    rx = json.loads((ROOT / "tests" / "data" / "rx-valid-two-channels-adjustable.json").read_text())
    today = dt.date.today()
    rx.update(issued=(today - dt.timedelta(days=1)).isoformat(), expires=(today + dt.timedelta(days=30)).isoformat(),
              max_sessions_per_day=3, min_hours_between=0, supervision="none")
    rx["blocks"] = [{"label": "long", "minutes": GAP_SESSION_MIN, "hz": 50, "pulse_us": 300, "on_s": 5, "off_s": 5,
                     "ramp_up_s": 1, "ramp_down_s": 1, "pattern": "synchronous"}]
    (d / "rx.json").write_text(json.dumps(rx))
    folder = d / "gap"
    folder.mkdir()
    store = Store.open(folder / "homeapp.db")
    write_sessions(store, 60, contractions=CONTRACTIONS, events=EVENTS,
                   start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=61))
    windows = int(GAP_SESSION_MIN * 60 // (2 * GAP_WINDOW_S))
    syncers = []
    for n in range(windows):
        data = folder / f"device-{n}"
        syncer = SyncProcess(data_dir=data, db_path=folder / "homeapp.db", trust_dir=data / "t",
                             records_per_request=APP_RECORDS_PER_REQUEST)
        syncer.pair(f"https://localhost:{port}", set_up_clinic(clinic, patient=f"P-GAP-{n}"), ca_cert=ca)
        syncers.append(syncer)
    # the backlog written a moment ago is in the log's write-ahead file: put it in the
    # database now, as SQLite does long before a real session, so that the session's
    # first commits do not pay for copying it
    store.pragma("wal_checkpoint(TRUNCATE)")
    stop = threading.Event()
    on_windows: list[tuple[float, float]] = []
    syncs = [0]
    sync_cpu = [0.0]

    def controller(t0: float) -> None:
        for syncer in syncers:              # off, then on, window after window
            if stop.wait(max(0.0, t0 + (2 * len(on_windows) + 1) * GAP_WINDOW_S - time.monotonic())):
                return
            begin = time.monotonic() - t0
            until = t0 + (2 * len(on_windows) + 2) * GAP_WINDOW_S
            while time.monotonic() < until and not stop.is_set():
                try:
                    syncer.sync()
                    syncs[0] += 1
                except Exception:
                    pass
                stop.wait(0.2)
            sync_cpu[0] += _cpu_s(syncer.pid) if syncer.pid else 0.0
            on_windows.append((begin, time.monotonic() - t0))
    sleeper = subprocess.Popen([sys.executable, "-c", _SLEEPER, str(GAP_SESSION_MIN * 60)],
                               stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    thread = threading.Thread(target=controller, args=(t0,), daemon=True)
    thread.start()
    result = run_session(prescription_path=str(d / "rx.json"), db_path=str(folder / "homeapp.db"),
                         trace_path=str(folder / "t.csv"), actions_path=None, virtual_time=False, allow_unsigned=True)
    stop.set()
    thread.join(60)
    for syncer in syncers:
        syncer.close()
    store.close()
    sleeper_worst, sleeper_p99 = (float(x) for x in sleeper.communicate(timeout=60)[0].split())
    if result.exit_code != 0:
        raise RuntimeError(f"the session was refused: {result.reasons}")
    beats = [t / 1e6 for t, _ in Trace.read(folder / "t.csv").signal("heartbeat")]
    # the trace's clock starts a moment after t0: a gap is counted only well inside a window
    gaps: dict[bool, list[float]] = {False: [], True: []}
    for a, b in zip(beats, beats[1:]):
        window = int(a // GAP_WINDOW_S)
        inside = GAP_MARGIN_S < a - window * GAP_WINDOW_S and b < (window + 1) * GAP_WINDOW_S - GAP_MARGIN_S
        if inside and window < 2 * len(on_windows):
            gaps[window % 2 == 1].append((b - a) * 1000)
    figures = []
    for with_sync in (False, True):
        what = f"{'with' if with_sync else 'without'} a sync"
        mine = sorted(gaps[with_sync])
        p99 = statistics.quantiles(mine, n=100)[98]
        figures.append(Figure(f"engine loop worst heartbeat gap, {what} (same session, {len(on_windows)} "
                              f"{GAP_WINDOW_S} s windows each way)", mine[-1], "ms",
                              f"<= {max(gaps[False]):.1f}" if with_sync else "",
                              (f"{syncs[0]} syncs in the windows with, each window's first uploading 60 days, "
                               f"{sync_cpu[0]:.1f} CPU s in the sync processes (niceness 10); {CLINIC_APART}; "
                               if with_sync else "heartbeat every 100 ms; the watchdog trips at 250; ")
                              + f"load average {os.getloadavg()[0]:.2f}; a bare sleeper process beside it woke "
                                f"up to {sleeper_worst:.1f} ms late (99th percentile {sleeper_p99:.1f})"))
        figures.append(Figure(f"engine loop heartbeat gap, {what}: median / 99th percentile", p99, "ms",
                              f"<= {statistics.quantiles(sorted(gaps[False]), n=100)[98]:.1f}" if with_sync else "",
                              f"median {statistics.median(mine):.1f} ms, 99th percentile shown; {len(mine)} gaps"))
    return figures


def figures() -> list[Figure]:
    return device_figures() + ingest_figures()


if __name__ == "__main__":
    for f in figures():
        print(f)
