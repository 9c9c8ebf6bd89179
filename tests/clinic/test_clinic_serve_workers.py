"""`homeapp-clinic serve --workers N`: several service processes on one port, the same
first line, every request answered, a clean end on SIGTERM and on SIGINT with no
process left behind; a bad N refused by name."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from .kit import ROOT, env


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.add(int(entry))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_workers_share_the_port_and_end_cleanly(db_url, stop_with):
    proc = subprocess.Popen([sys.executable, "-m", "clinic.cli", "serve", "--port", "0", "--workers", "2",
                             "--db", db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                            cwd=ROOT)
    try:
        first = proc.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:"), first
        port = int(first.rsplit(":", 1)[1])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(20):                 # new connections: the kernel hands them to either worker
                r = client.get("/api/patients", headers={"Connection": "close"})
                assert r.status_code == 401 and "sign in first" in r.json()["error"]
        workers = _children(proc.pid)
        assert len([w for w in workers if os.path.exists(f"/proc/{w}")]) >= 2
        proc.send_signal(stop_with)
        assert proc.wait(timeout=30) == 0
        time.sleep(0.2)
        assert not [w for w in workers if os.path.exists(f"/proc/{w}") and
                    open(f"/proc/{w}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
        assert "Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_a_bad_worker_count_is_refused_by_name(tmp_path):
    r = subprocess.run([sys.executable, "-m", "clinic.cli", "serve", "--port", "0", "--workers", "0",
                        "--db", f"sqlite:///{tmp_path}/c.db"], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert r.returncode == 2 and "--workers 0: give 1 to 64" in r.stderr and r.stdout == ""
