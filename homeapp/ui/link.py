"""The UI's side of the engine: it never waits for the engine on the UI thread.

The engine guards its state with a lock that its own loop holds while it talks to the
board (arming the next cycle, the heartbeat, a safe stop). A touch must never freeze the
screen behind that, so the link owns every thread the UI needs around the engine, and no
screen starts one of its own:
- a state poller ("ui-engine-state") copies `engine.state` at 20 Hz; the UI reads the
  latest copy;
- touches become commands, each a method of the link that names the engine method it
  calls, run in order by one worker ("ui-engine-commands");
- STOP never queues behind anything: a thread of its own ("ui-engine-stop") waits for
  it alone and runs it at once, whatever the worker is doing.
Results come back to the UI thread through Kivy's Clock, as `done(result, error)`.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from kivy.clock import Clock

log = logging.getLogger(__name__)

#: `done(result, error)` on the UI thread once a command has run.
Done = Callable[[Any, "Exception | None"], None]

#: Errors a command is expected to meet (a refused start, a value outside the
#: prescription): passed on to `done`, not logged as failures.
_EXPECTED = ("StartRefused", "ValueError")


class EngineLink:
    """The engine, as the touchscreen talks to it: typed commands on a worker, STOP on a
    path of its own, and the latest state without waiting."""

    def __init__(self, engine, poll_hz: float = 20.0):
        self.engine = engine
        self._state = engine.state
        self._period = 1.0 / poll_hz
        self._queue: queue.Queue = queue.Queue()
        self._closed = threading.Event()
        self._stop_requested = threading.Event()
        self._stop_lock = threading.Lock()
        self._stop_pending = False            # under _stop_lock
        self._stop_done: list[Done] = []      # under _stop_lock
        self._stopper_running = True          # under _stop_lock
        self._worker = threading.Thread(target=self._work, name="ui-engine-commands", daemon=True)
        self._poller = threading.Thread(target=self._poll, name="ui-engine-state", daemon=True)
        self._stopper = threading.Thread(target=self._stop_loop, name="ui-engine-stop", daemon=True)
        self._worker.start()
        self._poller.start()
        self._stopper.start()

    @property
    def state(self):
        """The latest snapshot (never waits)."""
        return self._state

    # ------------------------------------------------------------------ commands
    def submit(self, fn: Callable[..., Any], *args, done: Done | None = None, **kwargs) -> None:
        """Run `fn(*args, **kwargs)` (an engine method) on the worker, in order; then
        `done(result, error)` on the UI thread."""
        self._queue.put((fn, args, kwargs, done))

    def start(self, *, caregiver_unlocked: bool = False, done: Done | None = None) -> None:
        """Begin the session (`done` gets the refusal as its error)."""
        self.submit(self.engine.start, caregiver_unlocked=caregiver_unlocked, done=done)

    def increase(self, channel: int, done: Done | None = None) -> None:
        """+ on a channel."""
        self.submit(self.engine.increase, channel, done=done)

    def decrease(self, channel: int, done: Done | None = None) -> None:
        """- on a channel."""
        self.submit(self.engine.decrease, channel, done=done)

    def restore(self, channel: int, done: Done | None = None) -> None:
        """Back to the level before the pause, on a channel."""
        self.submit(self.engine.restore, channel, done=done)

    def pause(self, done: Done | None = None) -> None:
        """The patient's pause."""
        self.submit(self.engine.pause, done=done)

    def resume(self, done: Done | None = None) -> None:
        """Go on after a pause."""
        self.submit(self.engine.resume, done=done)

    def acknowledge(self, done: Done | None = None) -> None:
        """OK on a whole-screen alert."""
        self.submit(self.engine.acknowledge, done=done)

    def set_param(self, block_index: int, param: str, value: float, done: Done | None = None) -> None:
        """A patient adjustment of a block value."""
        self.submit(self.engine.set_param, block_index, param, value, done=done)

    def save_report(self, *, pain: int, effort: float, comment: str | None = None,
                    done: Done | None = None) -> None:
        """The After screen's answers."""
        self.submit(self.engine.save_report, pain=pain, effort=effort, comment=comment, done=done)

    def note_report_skipped(self, *, comment: str | None = None, done: Done | None = None) -> None:
        """Skip on the After screen: pain and effort not answered."""
        self.submit(self.engine.note_report_skipped, comment=comment, done=done)

    def check_now(self, done: Done | None = None) -> None:
        """Let the engine see a change on the board (e-stop, electrode) now rather than
        at its next tick."""
        self.submit(self.engine.check_now, done=done)

    def check_contact(self, callback: Callable[[tuple | None, list], None], *,
                      caregiver_unlocked: bool = False) -> None:
        """Read every electrode's contact and the start refusals on the worker; then
        `callback(contacts, refusals)` on the UI thread (contacts None, and the error as
        the one refusal, when the board could not be read)."""
        def check():
            try:
                return (tuple(self.engine.poll_contacts()),
                        list(self.engine.start_refusals(caregiver_unlocked=caregiver_unlocked)))
            except Exception as e:  # a board that does not answer is a refusal, not a crash
                log.warning("contact poll failed: %s", e)
                return None, [str(e)]
        self.submit(check, done=lambda result, _error: callback(*result))

    # ------------------------------------------------------------------ STOP
    def stop_now(self, done: Done | None = None) -> None:
        """STOP: straight to the engine on the link's own stop thread, ahead of (and
        beside) anything queued; `done(None, error)` then runs on the UI thread."""
        with self._stop_lock:
            if done is not None:
                self._stop_done.append(done)
            self._stop_pending = True
            if not self._stopper_running:
                # A STOP after `close()` (a start that finished after its screen was left)
                # still stops: the stop thread is started again for it.
                self._stopper_running = True
                self._stopper = threading.Thread(target=self._stop_loop, name="ui-engine-stop",
                                                 daemon=True)
                self._stopper.start()
            self._stop_requested.set()

    def _stop_loop(self) -> None:
        while True:
            self._stop_requested.wait()
            with self._stop_lock:
                self._stop_requested.clear()
                pending, self._stop_pending = self._stop_pending, False
                waiting, self._stop_done = self._stop_done, []
            if pending:
                error = None
                try:
                    self.engine.stop()
                except Exception as e:  # the engine's stop drops the output first, whatever else fails
                    log.exception("engine stop")
                    error = e
                self.refresh()
                for done in waiting:
                    Clock.schedule_once(lambda _dt, d=done, e=error: d(None, e), 0)
            with self._stop_lock:
                if self._closed.is_set() and not self._stop_pending:
                    self._stopper_running = False
                    return

    # ------------------------------------------------------------------ state
    def refresh(self) -> None:
        """Copy the engine's state now."""
        try:
            self._state = self.engine.state
        except Exception:
            log.exception("reading the engine state")

    def close(self) -> None:
        """End the link's threads (a STOP asked for before still runs)."""
        self._closed.set()
        self._queue.put(None)
        self._stop_requested.set()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, kwargs, done = item
            result, error = None, None
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                error = e
                if type(e).__name__ not in _EXPECTED:
                    log.exception("engine command %r failed", fn)
            self.refresh()
            if done is not None:
                # `done` bound now: the worker may take the next command before Kivy's
                # clock runs this, and that command's `done` must not answer for this one.
                Clock.schedule_once(lambda _dt, d=done, r=result, e=error: d(r, e), 0)

    def _poll(self) -> None:
        while not self._closed.wait(self._period):
            self.refresh()
