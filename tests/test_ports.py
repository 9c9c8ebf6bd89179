"""The engine's seams (homeapp/ports.py) against what really stands behind them: the
driver on the simulated board, the SQLite log, every clock. Checked by name and by
signature, so an adapter that drifts from its protocol fails here, not mid-session."""
from __future__ import annotations

import inspect

import pytest

from homeapp import ports
from homeapp.store import Store
from hw import exc
from hw.clock import HeldClock, RealClock, ScaledClock, VirtualClock
from hw.driver import Stimulator


def _protocol_methods(proto) -> list[str]:
    return [n for n, v in vars(proto).items()
            if not n.startswith("_") and (callable(v) or isinstance(v, property))]


def _same_parameters(proto, impl, name: str) -> None:
    want = getattr(proto, name)
    have = getattr(impl, name)
    if isinstance(want, property):
        assert isinstance(inspect.getattr_static(impl, name), property), f"{impl.__name__}.{name}"
        return
    p_want = [(p.name, p.kind) for p in inspect.signature(want).parameters.values()]
    p_have = [(p.name, p.kind) for p in inspect.signature(have).parameters.values()]
    assert p_have[:len(p_want)] == p_want, f"{impl.__name__}.{name}{inspect.signature(have)}"


@pytest.mark.parametrize("proto, impl", [
    (ports.Board, Stimulator), (ports.Store, Store),
    (ports.Clock, RealClock), (ports.Clock, ScaledClock), (ports.Clock, VirtualClock),
    (ports.Clock, HeldClock)])
def test_each_adapter_has_every_method_of_its_protocol_with_its_parameters(proto, impl):
    names = _protocol_methods(proto)
    assert names
    for name in names:
        assert hasattr(impl, name), f"{impl.__name__} lacks {name}"
        _same_parameters(proto, impl, name)


def test_the_real_driver_is_a_board(sim, pin_map, virtual_clock, tmp_path):
    _board, server = sim
    with Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port) as stim:
        assert isinstance(stim, ports.Board) and stim.watchdog_ms == pin_map.watchdog_ms
    with Store.open(tmp_path / "log.db") as store:
        assert isinstance(store, ports.Store)
    assert isinstance(virtual_clock, ports.Clock)


def test_the_boards_and_the_logs_errors_are_the_seams_errors():
    from homeapp.store import StoreError
    assert issubclass(StoreError, ports.LogError)
    assert issubclass(exc.BoardFault, ports.BoardFault) and issubclass(exc.ConnectionLost, ports.BoardFault)
    assert issubclass(exc.WaveformError, ports.ProgramError) and issubclass(exc.WaveformError, ValueError)
    assert issubclass(exc.BoardFault, exc.HwError)
