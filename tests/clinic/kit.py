"""Helpers of the clinic's tests and figures: the real service in its own process (TLS,
killable), a device's data directory driven through the real `homeapp` command line, and
sessions written into a device's log through the store's own API."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from clinic.db import migrate, open_engine
from clinic.service import CLI, Clinic
from homeapp.store import Store

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long test password"


def write_tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway certificate authority (trustme) and a server certificate for localhost
    and 127.0.0.1 in `folder`: (cert chain PEM, key PEM, the CA's PEM)."""
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain, key, ca_pem = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    with open(chain, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    ca.cert_pem.write_to_path(str(ca_pem))
    return chain, key, ca_pem


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    return out


class ClinicServer:
    """`homeapp-clinic serve` over TLS on a free port, as a separate process."""

    def __init__(self, db_url: str, tls_files: tuple[Path, Path, Path], *, port: int = 0) -> None:
        self.db_url = db_url
        self.cert, self.key, self.ca = tls_files
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def start(self) -> "ClinicServer":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clinic.cli", "serve", "--port", str(self.port), "--tls-cert", str(self.cert),
             "--tls-key", str(self.key), "--db", self.db_url],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env(), cwd=ROOT)
        first = self.proc.stdout.readline()
        if not first.startswith("listening on https://"):
            self.proc.kill()
            raise RuntimeError(f"the clinic did not start: {first!r}")
        self.port = int(first.rsplit(":", 1)[1])
        return self

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


def stop_process(proc: subprocess.Popen) -> None:
    """End a served clinic as SIGTERM does (a clean stop), killing it if it has not ended in 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def upload_body(key: Any, kid: str, records: list[tuple[str, dict]], first_seq: int,
                prev: str) -> tuple[bytes, int, str]:
    """A device's upload body continuing its chain at `first_seq` after the record hashed
    `prev`: the records' lines and the end line signed with `key`; returns (body, the last
    record's seq, its hash)."""
    import base64

    from homeapp import syncproto
    from homeapp.sync import record_line
    lines = []
    for seq, (kind, data) in enumerate(records, start=first_seq):
        line, prev = record_line(seq, kind, data, prev)
        lines.append(line)
    last = first_seq + len(records) - 1
    end = {"kind": "end", "count": last, "head": prev, "device_key_id": kid,
           "signature": base64.b64encode(key.sign(syncproto.end_payload(kid, last, prev))).decode()}
    return ("\n".join(lines) + "\n" + json.dumps(end) + "\n").encode(), last, prev


def clinic_for(db_url: str) -> Clinic:
    engine = open_engine(db_url)
    migrate(engine)
    return Clinic(engine)


def set_up_clinic(clinic: Clinic, *, clinician: str = "alice", patient: str = "P-0042") -> str:
    """A clinician with a patient; returns a fresh pairing code."""
    try:
        clinic.clinician(clinician)
    except Exception:
        clinic.add_clinician(clinician, PASSWORD)
    clinic.add_patient(patient, clinician)
    return clinic.new_pairing_code(CLI, patient)[0]


class DeviceDir:
    """A device's data directory with its configuration, driven by `homeapp --config F`."""

    def __init__(self, root: Path, *, clinic_url: str | None = None, ca_cert: Path | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = root / "config.toml"
        text = f'[paths]\ndata_dir = "{self.data}"\n'
        if clinic_url:
            text += f'\n[clinic]\nurl = "{clinic_url}"\n' + (f'ca_cert = "{ca_cert}"\n' if ca_cert else "")
        self.config.write_text(text)
        self.db = self.data / "homeapp.db"

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "homeapp.cli", "--config", str(self.config), *argv],
                              capture_output=True, text=True, env=env(), cwd=ROOT, timeout=timeout)

    def popen(self, *argv: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "homeapp.cli", "--config", str(self.config), *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)

    def store(self) -> Store:
        return Store.open(self.db)

    def export(self) -> dict[str, Any]:
        with self.store() as s:
            return json.loads(json.dumps(s.export()))


def write_sessions(store: Store, count: int, *, first: int = 0, contractions: int = 6, events: int = 4,
                   channels: int = 2, start: dt.datetime | None = None, report: bool = True) -> list[str]:
    """`count` ended sessions through the store's own API (what the engine writes), one a day."""
    start = start or dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.timezone.utc)
    ids = []
    for n in range(first, first + count):
        sid = f"s-{n:05d}"
        at = start + dt.timedelta(days=n)
        store.start_session(session_id=sid, prescription_id="rx-0001", started_at=at,
                            planned_contractions=contractions, channels=channels)
        for ch in range(channels):
            for k in range(contractions):
                store.add_contraction(sid, channel=ch, index=k, start_t=10.0 + 60 * k, end_t=20.0 + 60 * k,
                                      peak_ma=20.0 + k + ch * 0.5 + n % 7, completed=True)
        for k in range(events):
            store.add_event(sid, t=1.5 * k + 0.25, kind="intensity", detail={"channel": k % channels, "ma": 10 + k})
        store.end_session(sid, status="completed" if n % 9 else "stopped", ended_at=at + dt.timedelta(minutes=20))
        if report:
            store.save_report(sid, pain=n % 11, effort=float(n % 21) / 2, comment=f"day {n} ✓" if n % 3 else None)
        ids.append(sid)
    return ids


class DropProxy:
    """A TCP relay in front of the clinic that can cut a connection after a given number
    of bytes in either direction (a dropped network at any byte of a TLS stream)."""

    def __init__(self, upstream_port: int) -> None:
        import socket
        import threading
        self.upstream_port = upstream_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.cut_after: int | None = None     # bytes (both directions together) before a cut
        self.cuts = 0
        self._stop = False
        self._threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def _accept(self) -> None:
        import socket
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            budget = [self.cut_after]
            for a, b in ((client, upstream), (upstream, client)):
                self._threading.Thread(target=self._pipe, args=(a, b, budget, client, upstream), daemon=True).start()

    def _pipe(self, src, dst, budget, *both) -> None:
        import socket
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                if budget[0] is not None:
                    if len(data) >= budget[0]:
                        dst.sendall(data[:budget[0]])
                        self.cuts += 1
                        for s in both:   # an abrupt cut: reset, not a clean close
                            try:
                                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                                s.close()
                            except OSError:
                                pass
                        return
                    budget[0] -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in both:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()
