"""Fixtures shared across the suite: the pin map, a virtual clock, the simulated board
served over pigpiod's real protocol, and a temporary log database."""
from __future__ import annotations

import hypothesis  # noqa: F401 - imported before any test starts a thread: CPython 3.11's
#   AST recursion counter is not thread-safe (gh-106905), and a late import under
#   pytest's assertion rewriting can then fail with "AST constructor recursion depth mismatch".
import pytest

from hw.clock import VirtualClock
from hw.pins import load_pin_map


@pytest.fixture
def pin_map():
    return load_pin_map()


@pytest.fixture
def virtual_clock():
    return VirtualClock()


@pytest.fixture
def sim(pin_map, virtual_clock):
    """A simulated board behind a real pigpiod-protocol server on a free loopback port.
    Yields (board, server); connect with `pigpio.pi("127.0.0.1", server.port)`."""
    from hw.sim import SimBoard, SimServer

    board = SimBoard(pins=pin_map, clock=virtual_clock)
    server = SimServer(board, host="127.0.0.1", port=0)
    server.start()
    try:
        yield board, server
    finally:
        server.stop()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "homeapp.db"


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server for the whole run (tests/clinic/pg.py: a cluster in a
    temporary directory, run as the postgres user on a free port), shared by the clinic's
    and the clinician pages' tests; skipped where PostgreSQL is not installed."""
    from tests.clinic.pg import PostgresServer, PostgresUnavailable
    try:
        server = PostgresServer()
    except PostgresUnavailable as e:
        pytest.skip(str(e))
    server.start()
    try:
        yield server
    finally:
        server.stop()
