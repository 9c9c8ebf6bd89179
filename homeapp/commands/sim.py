"""`homeapp sim`: a simulated pigpiod with the virtual stimulation board attached.

The real `pigpio` client and gpiozero's PiGPIOFactory connect to it as to a Pi. It runs in
real time (a ScaledClock at 1.0, with a ticker so the watchdog and waves advance between
requests). The first line on stdout is `listening on HOST:PORT`; on SIGINT or SIGTERM it
writes the trace (contract.md) if `--trace` was given and exits 0.
"""
from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from homeapp.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sim", help="a simulated pigpiod with the virtual stimulation board",
        description="Serve pigpiod's socket protocol with the reference board attached "
                    "(see hw/BOARD.md). Stops on SIGINT/SIGTERM, writing the trace.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8888,
                   help="TCP port (default 8888, pigpiod's; 0 picks a free port)")
    p.add_argument("--trace", type=Path, metavar="CSV",
                   help="write the board trace here when stopped")
    p.set_defaults(func=run)


def _pin_map(args: argparse.Namespace):
    from homeapp.config import ConfigError, load_config

    try:
        return load_config(getattr(args, "config", None)).pins
    except ConfigError as e:
        raise UserError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    from homeapp.device import start_simulated_board
    from hw.clock import ScaledClock

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a TCP port (0 to 65535)")
    pins = _pin_map(args)
    if args.trace is not None and not args.trace.resolve().parent.is_dir():
        raise UserError(f"--trace {args.trace}: the folder {args.trace.parent} does not exist")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        # every row of the trace is kept: it is written when stopped
        board, server = start_simulated_board(pins=pins, clock=ScaledClock(1.0),
                                              host=args.host, port=args.port)
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({e.strerror})") from None
    print(f"listening on {args.host}:{server.port}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        if args.trace is not None:
            try:
                board.write_trace(args.trace)
            except OSError as e:
                raise UserError(f"--trace {args.trace}: cannot write the trace ({e.strerror})") from None
    return 0
