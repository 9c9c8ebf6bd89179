"""The app's clinic sync in a process of its own, at a lower CPU priority.

A sync is CPU work (the log's records read and chained as JSON, hashed, signed, sent
through TLS); while a backlog uploads, it takes a core the engine's loop may want for its
heartbeat. At `SYNC_NICE` every core the engine wants goes to the engine first. That is
safe only in a process of its own: a thread of the app at a lower priority, preempted
while it holds the interpreter's lock, would keep the engine's thread waiting behind it.
The child shares nothing with the engine but the log's file (SQLite in WAL mode: its
reads never block the engine's writes); docs/design.md has the measurements.

`SyncProcess` has the face the app uses of `homeapp.sync.Syncer` (`sync`, `pair`,
`status`, `url`, `ca_cert`, `close`), so `BackgroundSync` and the clinic link drive it
as they drove a Syncer. It talks to the child over the child's standard input and output,
one JSON line a request and one a reply; refusals come back as the same `SyncError`
kinds. A child that died (killed mid-sync, say) is started again at the next request: a
sync cut at any point resumes from the outbox (homeapp/sync.py).

Run as `python -m homeapp.sync_process`, it is the child.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, TextIO

from .sync import ClinicUnreachable, NotConfigured, SyncError, SyncResult

log = logging.getLogger(__name__)

#: The child's niceness: below the app (0), so the engine's thread is never kept from a
#: core by a sync.
SYNC_NICE = 10

_ERRORS: dict[str, type[SyncError]] = {"SyncError": SyncError, "ClinicUnreachable": ClinicUnreachable,
                                       "NotConfigured": NotConfigured}


class SyncProcess:
    """A `Syncer` in a child process (`python -m homeapp.sync_process`), on the same data
    directory, log, device key and trust store. Each call waits for the child's answer
    (call it from a worker thread, never the UI's or the engine's); `status()`, `url` and
    `ca_cert` answer at once from what the child last reported."""

    def __init__(self, *, data_dir: str | os.PathLike[str], db_path: str | os.PathLike[str],
                 trust_dir: str | os.PathLike[str], device_key_path: str | os.PathLike[str] | None = None,
                 config_url: str | None = None, config_ca_cert: str | os.PathLike[str] | None = None,
                 records_per_request: int | None = None, nice: int = SYNC_NICE) -> None:
        self.options = {"data_dir": str(data_dir), "db_path": str(db_path), "trust_dir": str(trust_dir),
                        "device_key_path": str(device_key_path) if device_key_path else None,
                        "config_url": config_url, "config_ca_cert": str(config_ca_cert) if config_ca_cert else None,
                        "records_per_request": records_per_request, "nice": nice}
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._facts: dict[str, Any] = {"status": {"url": config_url, "paired": False, "device_key_id": None,
                                                  "last_ok_at": None, "last_error": None, "patient_id": None},
                                       "url": config_url, "ca_cert": None}
        with self._lock:
            try:
                self._start()
            except SyncError as e:          # said by status(); the next request tries again
                self._facts["status"] = {**self._facts["status"], "last_error": e.reason}

    # -- the child
    @property
    def pid(self) -> int | None:
        """The child's process id (None when it is not running)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> None:
        env = dict(os.environ)
        # the child imports this very homeapp, whichever path it came from
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._proc = subprocess.Popen([sys.executable, "-m", "homeapp.sync_process"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=None, text=True, encoding="utf-8",
                                      env=env, close_fds=True)
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(self.options) + "\n")
        self._proc.stdin.flush()
        self._answer("start")

    def _answer(self, what: str) -> Any:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            self._reap()
            raise ClinicUnreachable(f"the sync process ended during {what}; nothing is lost, the next sync "
                                    f"starts it again and resumes")
        reply = json.loads(line)
        for key in ("status", "url", "ca_cert"):
            if key in reply:
                self._facts[key] = reply[key]
        if reply.get("ok"):
            return reply.get("value")
        error = _ERRORS.get(reply.get("error"), SyncError)(str(reply.get("reason")))
        if reply.get("result") is not None:
            error.result = SyncResult(**reply["result"])
        if reply.get("fatal"):
            self._reap()
        raise error

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _ask(self, op: str, **args: Any) -> Any:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._reap()
                self._start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None
            try:
                proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._reap()
                raise ClinicUnreachable("the sync process had ended; nothing is lost, the next sync "
                                        "starts it again and resumes") from None
            return self._answer(op)

    # -- the Syncer's face
    def sync(self) -> SyncResult:
        """`Syncer.sync` in the child."""
        return SyncResult(**self._ask("sync"))

    def pair(self, url: str, code: str, *, ca_cert: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """`Syncer.pair` in the child."""
        return self._ask("pair", url=url, code=code, ca_cert=str(ca_cert) if ca_cert is not None else None)

    def status(self) -> dict[str, Any]:
        """`Syncer.status` as the child last reported it (no database, no wait)."""
        return dict(self._facts["status"])

    @property
    def url(self) -> str | None:
        return self._facts["url"]

    @property
    def ca_cert(self) -> str | None:
        return self._facts["ca_cert"]

    def close(self, timeout_s: float = 5.0) -> None:
        """End the child (it finishes the request under way first, up to `timeout_s`)."""
        acquired = self._lock.acquire(timeout=timeout_s)
        try:
            proc = self._proc
            if proc is None:
                return
            try:
                assert proc.stdin is not None
                proc.stdin.close()          # end of input: the child leaves its loop
            except OSError:
                pass
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._reap()
        finally:
            if acquired:
                self._lock.release()


# ---------------------------------------------------------------------------- the child

def _facts(syncer: Any) -> dict[str, Any]:
    return {"status": syncer.status(), "url": syncer.url, "ca_cert": syncer.ca_cert}


def _session_running(db_path: str) -> Callable[[], bool]:
    """True while a session holds the log's session lock (homeapp/store.py)."""
    from .prescriptions import session_lock_path
    from .store import session_lock_held
    lock = session_lock_path(db_path)

    def running() -> bool:
        try:
            return session_lock_held(lock)
        except OSError:
            return False
    return running


def _serve(requests: TextIO, replies: TextIO) -> int:
    def send(reply: dict[str, Any]) -> None:
        replies.write(json.dumps(reply) + "\n")
        replies.flush()

    options = json.loads(requests.readline())
    try:
        os.nice(int(options.get("nice") or 0))
    except OSError:
        pass
    try:
        from schedules.signing import TrustStore

        from .device_key import ensure_device_key
        from .store import Store
        from .sync import Syncer
        store = Store.open(options["db_path"], recover=False)
        key, kid = ensure_device_key(Path(options["data_dir"]), private_key_path=options.get("device_key_path"))
        extra = {"records_per_request": options["records_per_request"]} if options.get("records_per_request") else {}
        syncer = Syncer(data_dir=options["data_dir"], store=store, device_key=key, device_key_id=kid,
                        trust=TrustStore(options["trust_dir"]), db_path=options["db_path"],
                        config_url=options.get("config_url"), config_ca_cert=options.get("config_ca_cert"),
                        session_running=_session_running(options["db_path"]), **extra)
    except Exception as e:  # the log or the key cannot be opened: said, and the child ends
        send({"ok": False, "error": "SyncError", "fatal": True,
              "reason": f"the sync could not open the device's log or key ({getattr(e, 'args', [e])[0]})"})
        return 1
    try:
        send({"ok": True, **_facts(syncer)})
        for line in requests:
            request = json.loads(line)
            op = request.get("op")
            try:
                if op == "sync":
                    value: Any = dataclasses.asdict(syncer.sync())
                elif op == "pair":
                    value = syncer.pair(request["url"], request["code"], ca_cert=request.get("ca_cert"))
                else:
                    raise SyncError(f"the sync process does not know the request {op!r}")
                send({"ok": True, "value": value, **_facts(syncer)})
            except SyncError as e:
                partial = getattr(e, "result", None)
                send({"ok": False, "error": type(e).__name__, "reason": e.reason,
                      "result": dataclasses.asdict(partial) if partial is not None else None, **_facts(syncer)})
            except Exception as e:  # a bug: said, logged, and the child stays for the next turn
                log.exception("clinic sync failed")
                send({"ok": False, "error": "SyncError", "reason": f"internal error ({type(e).__name__}: {e})",
                      **_facts(syncer)})
    finally:
        syncer.close()
        store.close()
    return 0


def main() -> int:
    """The child: the protocol on the standard output it was given; anything else that
    would print goes to standard error."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, format="homeapp sync: %(message)s")
    return _serve(sys.stdin, replies)


if __name__ == "__main__":
    sys.exit(main())
