"""The app's link to the clinic, off the UI and engine threads: the background sync
(homeapp/sync.py's BackgroundSync), pairing from the touchscreen, and a cached status the
screens read without touching a database or the network.

The sync itself runs in a child process at a lower priority (homeapp/sync_process.py):
it shares no interpreter lock and no core with the engine's loop, and opens its own
connection to the log (SQLite in WAL mode: its reads never block the engine's writes)
and its own outbox; the screens only read `status()`, a dict copied after each sync.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)


class ClinicLink:
    """Sync and pairing for the app. `status()` is always quick; `on_change()` is called
    from a worker thread after a sync or a pairing (the UI schedules its own refresh).
    No "session running" callback: the sync's process finds a running session by the
    log's session lock, which a prescription's install takes anyway."""

    def __init__(self, *, config: Any, trust: Any,
                 on_change: Callable[[], None] | None = None) -> None:
        self.config, self.trust = config, trust
        self.on_change = on_change
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {"url": config.clinic_url, "paired": False, "device_key_id": None,
                                        "last_ok_at": None, "last_error": None, "patient_id": None}
        self._syncer = None
        self.background = None
        self._started = threading.Event()
        threading.Thread(target=self._open, name="clinic-open", daemon=True).start()

    def _open(self) -> None:
        """Start the sync's process (it opens the log, the key and the outbox) from a
        worker: a big log's check at opening must not delay the first screen."""
        try:
            from .sync import APP_RECORDS_PER_REQUEST, BackgroundSync
            from .sync_process import SyncProcess
            # the process finds a running session by the log's session lock, as an install does
            self._syncer = SyncProcess(data_dir=self.config.data_dir, db_path=self.config.db_path,
                                       trust_dir=getattr(self.trust, "directory", None) or self.config.trust_dir,
                                       device_key_path=self.config.device_key_path,
                                       config_url=self.config.clinic_url, config_ca_cert=self.config.clinic_ca_cert,
                                       records_per_request=APP_RECORDS_PER_REQUEST)
            self._update(self._syncer.status())
            self.background = BackgroundSync(self._syncer, interval_s=60.0 * self.config.sync_interval_min,
                                             on_change=self._update)
            self.background.start()
        except Exception:
            log.exception("the clinic link could not be opened")
        finally:
            self._started.set()

    def _update(self, status: dict[str, Any]) -> None:
        with self._lock:
            self._status = dict(status)
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("clinic status callback")

    def status(self) -> dict[str, Any]:
        """url, paired, patient_id, device_key_id, last_ok_at (ISO, when the log last
        reached the clinic), last_error."""
        with self._lock:
            return dict(self._status)

    def poke(self) -> None:
        """Sync soon (a session just ended)."""
        if self.background is not None:
            self.background.poke()

    def pair(self, code: str, on_done: Callable[[str | None], None], *, url: str | None = None) -> None:
        """Pair on a worker thread; `on_done(None)` when paired, `on_done(reason)` if not."""
        def work() -> None:
            self._started.wait(30)
            reason = None
            try:
                target = url or self.status().get("url")
                if self._syncer is None:
                    reason = "the device's log or key could not be opened"
                elif not target:
                    reason = "no clinic address: set clinic.url in the configuration"
                else:
                    ca = self._syncer.ca_cert
                    self._syncer.pair(target, code, ca_cert=ca)
                    self._update(self._syncer.status())
                    self.poke()
            except Exception as e:
                reason = getattr(e, "reason", None) or str(e)
            on_done(reason)
        threading.Thread(target=work, name="clinic-pair", daemon=True).start()

    def close(self) -> None:
        self._started.wait(5)
        if self.background is not None:
            self.background.stop()
        if self._syncer is not None:
            self._syncer.close()       # the child closes its log and outbox
