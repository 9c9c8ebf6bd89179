"""The device as the app sees it: configuration, clock, board, log and trust store.

With `board = "simulated"` (the default with no configuration) the simulated pigpiod runs
inside the app on a loopback port and the real driver talks to it, so everything below the
driver's socket is exercised as on a Pi. With `board = "real"` the driver connects to the
local pigpiod of the appliance.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

from hw.clock import Clock, RealClock
from schedules.limits import DEVICE_LIMITS

from .config import Config, load_config
from .device_key import ensure_device_key
from .errors import UserError
from .store import Store, StoreError


#: Rows of trace history per signal the app's simulated board keeps (16 bytes a row: about
#: 100 s of a 100 Hz train on each leg, 1.3 MB for the four legs at most, where 250,000 rows
#: held 16 MB through a long session): the app never writes the trace.
SIM_TRACE_MAX_ROWS = 20_000


@dataclass
class Device:
    config: Config
    clock: Clock
    stimulator: Any
    store: Store
    trust: Any
    sim_board: Any = None
    sim_server: Any = None
    device_key_id: str = ""
    _closed: bool = field(default=False, repr=False)

    @property
    def simulated(self) -> bool:
        return self.sim_board is not None

    def close(self) -> None:
        """Safe stop, then release everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.stimulator.close()
        if self.sim_server is not None:
            with contextlib.suppress(Exception):
                self.sim_server.stop()
        with contextlib.suppress(Exception):
            self.store.close()


def open_device(config: Config | None = None, *, config_path: str | None = None,
                clock: Clock | None = None) -> Device:
    """Open the configured board (simulated by default), the log and the trust store."""
    from hw.driver import Stimulator, install_sigterm_handler
    from schedules.signing import TrustStore

    config = config or load_config(config_path)
    clock = clock or RealClock()
    for folder in (config.data_dir, config.trust_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise UserError(f"{folder}: cannot create the data folder ({e.strerror})") from None
    try:
        store = Store.open(config.db_path)
    except StoreError as e:
        raise UserError(str(e)) from None
    _, key_id = ensure_device_key(config.data_dir, private_key_path=config.device_key_path)
    sim_board = sim_server = None
    host, port = config.pigpio_host, config.pigpio_port
    try:
        if config.board == "simulated":
            from hw.sim import SimBoard, SimServer
            # the app may run for hours: keep a bounded window of the board's trace
            sim_board = SimBoard(pins=config.pins, clock=clock, trace_max_rows=SIM_TRACE_MAX_ROWS)
            sim_server = SimServer(sim_board, host="127.0.0.1", port=0)
            sim_server.start()
            host, port = "127.0.0.1", sim_server.port
        stimulator = Stimulator(pins=config.pins, clock=clock, host=host, port=port,
                                # the device limit until a session arms it with its prescription
                                caps_ma=(DEVICE_LIMITS["max_ma"].high,) * 2)
    except Exception:
        if sim_server is not None:
            sim_server.stop()
        store.close()
        raise
    if threading.current_thread() is threading.main_thread():
        install_sigterm_handler(stimulator)  # systemd stopping the app: safe stop first
    return Device(config=config, clock=clock, stimulator=stimulator, store=store,
                  trust=TrustStore(config.trust_dir), sim_board=sim_board,
                  sim_server=sim_server, device_key_id=key_id)
