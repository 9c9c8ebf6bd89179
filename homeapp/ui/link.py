"""The UI's side of the engine: it never waits for the engine on the UI thread.

The engine guards its state with a lock that its own loop holds while it talks to the
board (arming the next cycle, the heartbeat, a safe stop). A touch must never freeze the
screen behind that, so:
- a state poller thread copies `engine.state` at 20 Hz; the UI reads the latest copy;
- touches become commands, run in order by one worker thread;
- STOP does not queue behind anything: it runs at once on a thread of its own.
Results come back to the UI thread through Kivy's Clock.
"""
from __future__ import annotations

import logging
import queue
import threading

from kivy.clock import Clock

log = logging.getLogger(__name__)


class EngineLink:
    def __init__(self, engine, poll_hz: float = 20.0):
        self.engine = engine
        self._state = engine.state
        self._period = 1.0 / poll_hz
        self._queue: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._worker = threading.Thread(target=self._work, name="ui-engine-commands", daemon=True)
        self._poller = threading.Thread(target=self._poll, name="ui-engine-state", daemon=True)
        self._worker.start()
        self._poller.start()

    @property
    def state(self):
        """The latest snapshot (never waits)."""
        return self._state

    def call(self, name: str, *args, done=None, **kwargs) -> None:
        """Run `engine.<name>(*args, **kwargs)` on the worker; `done(result, error)` then runs
        on the UI thread."""
        self._queue.put((name, args, kwargs, done))

    def stop_now(self, done=None) -> None:
        """STOP: straight to the engine on a thread of its own, ahead of queued commands."""
        def run():
            error = None
            try:
                self.engine.stop()
            except Exception as e:  # the engine's stop drops the output first, whatever else fails
                log.exception("engine stop")
                error = e
            self.refresh()
            if done is not None:
                Clock.schedule_once(lambda _dt: done(None, error), 0)
        threading.Thread(target=run, name="ui-stop", daemon=True).start()

    def refresh(self) -> None:
        try:
            self._state = self.engine.state
        except Exception:
            log.exception("reading the engine state")

    def close(self) -> None:
        self._closed.set()
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, args, kwargs, done = item
            result, error = None, None
            try:
                result = getattr(self.engine, name)(*args, **kwargs)
            except Exception as e:
                error = e
                if type(e).__name__ not in ("StartRefused", "ValueError"):
                    log.exception("engine %s", name)
            self.refresh()
            if done is not None:
                Clock.schedule_once(lambda _dt, r=result, e=error: done(r, e), 0)

    def _poll(self) -> None:
        while not self._closed.wait(self._period):
            self.refresh()
