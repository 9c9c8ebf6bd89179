"""The one place that wires a device: configuration, clock, board, log and trust store,
and the engine of each session built over them.

The touchscreen app (homeapp/ui/services.py), `homeapp session run` (homeapp/runner.py),
`homeapp sim` (homeapp/commands/sim.py) and the touchscreen tests all come through here,
so the configured pin map and board constants reach the simulated board and the driver
alike, whichever way a device is started.

With `board = "simulated"` (the default with no configuration) the simulated pigpiod runs
inside the process on a loopback port and the real driver talks to it, so everything below
the driver's socket is exercised as on a Pi. With `board = "real"` the driver connects to
the local pigpiod of the appliance.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from hw.clock import Clock, RealClock
from hw.pins import PinMap
from schedules.limits import DEVICE_LIMITS

from .config import Config, load_config
from .device_key import ensure_device_key
from .errors import UserError
from .store import Store, StoreError

if TYPE_CHECKING:  # types only: the driver, the simulator and the trust store load when opened
    import datetime as dt

    from hw.driver import Stimulator
    from hw.sim import SimBoard, SimServer
    from schedules.model import Prescription
    from schedules.signing import TrustStore

    from .engine import Engine


log = logging.getLogger(__name__)

#: Rows of trace history per signal the app's simulated board keeps (16 bytes a row: about
#: 100 s of a 100 Hz train on each leg, 1.3 MB for the four legs at most, where 250,000 rows
#: held 16 MB through a long session): the app never writes the trace.
SIM_TRACE_MAX_ROWS = 20_000


class TrainerHands:
    """What a trainer's hand does to the simulated board, and what the board shows back:
    the e-stop button and the electrodes. Only a simulated device has one (`Device.hands`);
    the touchscreen's trainer's panel acts through it and never holds the board itself."""

    def __init__(self, board: SimBoard) -> None:
        self._board = board

    def press_estop(self) -> None:
        self._board.press_estop()

    def release_estop(self) -> None:
        self._board.release_estop()

    def set_lead(self, channel: int, connected: bool) -> None:
        """Detach (`connected=False`) or reattach an electrode of `channel` (0 or 1)."""
        self._board.set_lead(channel, connected)

    @property
    def estop_pressed(self) -> bool:
        """The board's e-stop line is low (the button is held down)."""
        return bool(self._board.estop_pressed)

    def lead_connected(self, channel: int) -> bool:
        """The electrode of `channel` touches the skin, as the board's sense sees it."""
        return self._board.lead_connected(channel)


@dataclass
class Device:
    """An open device: its board (driver, and on the simulated board the simulator behind
    it), its clock, its log and its trust store. `new_engine` builds a session's engine
    over them; `close` makes the output safe and releases everything."""

    config: Config
    clock: Clock
    stimulator: Stimulator
    store: Store
    trust: TrustStore | None
    sim_board: SimBoard | None = None
    sim_server: SimServer | None = None
    device_key_id: str = ""
    _previous_sigterm: Any = field(default=None, repr=False)  # signal.signal's previous handler
    _closed: bool = field(default=False, repr=False)
    #: The engines built here that react to the button at once (see `new_engine`).
    _estop_engines: "weakref.WeakSet" = field(default_factory=weakref.WeakSet, repr=False)

    def __post_init__(self) -> None:
        # The driver calls this from pigpio's notification thread the moment the e-stop
        # goes down (after its own safe stop): no engine waits for its next tick.
        self.stimulator.on_estop = self._estop_pressed

    def _estop_pressed(self) -> None:
        """The e-stop went down: every session under way on this device aborts now. An
        edge racing the device's close, or an engine that fails, is logged, never raised
        into the callback thread (the board has cut the output in hardware already)."""
        if self._closed:
            return
        for engine in list(self._estop_engines):
            if not engine.under_way:
                continue
            try:
                engine.estop("button")
            except Exception as e:  # noqa: BLE001 - the notification thread must live on
                log.error("the engine's e-stop failed: %r", e)

    @property
    def simulated(self) -> bool:
        return self.sim_board is not None

    @property
    def pins(self) -> PinMap:
        """The pin map and board constants the driver and the simulator were built with."""
        return self.config.pins

    @property
    def hands(self) -> TrainerHands | None:
        """The trainer's hands on the simulated board (None on a real board)."""
        return TrainerHands(self.sim_board) if self.sim_board is not None else None

    def new_engine(self, prescription: Prescription, *, allow_unsigned: bool | None = None,
                   wall_clock: Callable[[], dt.datetime] | None = None,
                   still_active: Callable[[], bool] | None = None,
                   estop_at_once: bool = True) -> Engine:
        """The engine of one session of `prescription` on this device. `allow_unsigned`
        (default: only on the simulated board) lets an unverified prescription start;
        `wall_clock` (default the engine's) dates the session in the log.
        `still_active`: whether `prescription` is still the device's active one (the
        engine refuses to start once it is not).
        `estop_at_once`: the driver's e-stop callback aborts the session the moment the
        button goes down, from pigpio's notification thread; False leaves it to the
        engine's poll at its next tick (a headless run in virtual time, which must not
        depend on when a thread is scheduled)."""
        from .engine import Engine

        options: dict[str, Callable[[], dt.datetime]] = {}
        if wall_clock is not None:
            options["wall_clock"] = wall_clock
        engine = Engine(prescription=prescription, board=self.stimulator, store=self.store,
                        clock=self.clock, trust=self.trust,
                        allow_unsigned=self.simulated if allow_unsigned is None else allow_unsigned,
                        still_active=still_active, **options)
        if estop_at_once:
            self._estop_engines.add(engine)
        return engine

    def close(self) -> None:
        """Safe stop, then release everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.stimulator.on_estop = None
        with contextlib.suppress(Exception):
            self.stimulator.close()
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(Exception):
                signal.signal(signal.SIGTERM, self._previous_sigterm)
        if self.sim_server is not None:
            with contextlib.suppress(Exception):
                self.sim_server.stop()
        with contextlib.suppress(Exception):
            self.store.close()


def start_simulated_board(*, pins: PinMap, clock: Clock, host: str = "127.0.0.1", port: int = 0,
                          trace_max_rows: int | None = None) -> tuple[SimBoard, SimServer]:
    """The simulated pigpiod with the virtual board attached, serving on `host:port`
    (port 0: a free one): (board, server). `trace_max_rows` bounds the board's trace
    history (None: every row, for a trace that is written). OSError when it cannot listen."""
    from hw.sim import SimBoard, SimServer

    board = SimBoard(pins=pins, clock=clock, trace_max_rows=trace_max_rows)
    server = SimServer(board, host=host, port=port)
    server.start()
    return board, server


def open_device(config: Config | None = None, *, config_path: str | None = None,
                clock: Clock | None = None, max_ma: tuple[float, ...] | None = None,
                trace_max_rows: int | None = SIM_TRACE_MAX_ROWS, trusted_keys: bool = True,
                device_key: bool = True, sigterm: bool = True) -> Device:
    """Open the configured board (simulated by default), the log and the trust store.

    `max_ma`: the driver's per-channel `max_ma` until a session arms it (default the
    device limit). `trace_max_rows`: the simulated board's trace history (None: keep every row).
    `trusted_keys=False`: no trust store (only unsigned prescriptions can start).
    `device_key=False`: neither create the data folder nor the device's signing key (a
    headless run that writes only the log it was given). `sigterm`: on the main thread,
    SIGTERM runs the driver's safe stop first (the previous handler is back on close)."""
    from hw.driver import Stimulator, install_sigterm_handler
    from schedules.signing import TrustStore

    config = config or load_config(config_path)
    clock = clock or RealClock()
    folders = (config.data_dir, config.trust_dir) if device_key else ()
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise UserError(f"{folder}: cannot create the data folder ({e.strerror})") from None
    try:
        store = Store.open(config.db_path)
    except StoreError as e:
        raise UserError(str(e)) from None
    sim_board = sim_server = None
    host, port = config.pigpio_host, config.pigpio_port
    try:
        key_id = ""
        if device_key:
            _, key_id = ensure_device_key(config.data_dir, private_key_path=config.device_key_path)
        trust = TrustStore(config.trust_dir) if trusted_keys else None
        if config.board == "simulated":
            # the app may run for hours: it keeps a bounded window of the board's trace
            sim_board, sim_server = start_simulated_board(pins=config.pins, clock=clock,
                                                          trace_max_rows=trace_max_rows)
            host, port = "127.0.0.1", sim_server.port
        stimulator = Stimulator(pins=config.pins, clock=clock, host=host, port=port,
                                # the device limit until a session arms it with its prescription
                                max_ma=max_ma or (DEVICE_LIMITS["max_ma"].high,) * 2)
    except Exception:
        if sim_server is not None:
            sim_server.stop()
        store.close()
        raise
    previous = None
    if sigterm and threading.current_thread() is threading.main_thread():
        previous = install_sigterm_handler(stimulator)  # systemd stopping the app: safe stop first
    return Device(config=config, clock=clock, stimulator=stimulator, store=store,
                  trust=trust,
                  sim_board=sim_board, sim_server=sim_server, device_key_id=key_id,
                  _previous_sigterm=previous)


def simulated_config(config: Config, **paths: Any) -> Config:
    """`config` on the simulated board, with paths replaced (`db_path=`, `trust_dir=`): a
    headless run keeps the configured pin map and board constants."""
    return dataclasses.replace(config, board="simulated", **paths)
