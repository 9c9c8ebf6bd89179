"""The e-stop's callback thread racing a closing driver: gpiozero's Button on pigpio's
notification thread calls into the driver while the session ends and the driver closes.
Whatever the interleaving, nothing is printed as a crash (no thread traceback on stderr)."""
from __future__ import annotations

import threading
import time

import pytest

from hw.clock import RealClock
from hw.driver import Stimulator
from hw.sim import SimBoard, SimServer


@pytest.fixture
def thread_errors(monkeypatch):
    """Every exception that escapes a thread (what Python would print as a traceback)."""
    errors: list[str] = []
    monkeypatch.setattr(threading, "excepthook",
                        lambda a: errors.append(f"{a.thread.name}: {a.exc_type.__name__}: {a.exc_value}"))
    return errors


def _wait_for(predicate, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.001)
    return predicate()


def _settle_threads(timeout_s: float = 2.0) -> None:
    """Let the threads of closed connections (and of the stopped simulator) finish."""
    deadline = time.monotonic() + timeout_s
    for th in threading.enumerate():
        if th is not threading.current_thread() and th.daemon:
            th.join(max(0.0, deadline - time.monotonic()))


def test_a_close_while_the_estop_callback_runs_is_no_crash(pin_map, thread_errors, capfd):
    # The app's e-stop handler is still busy (it waits for the engine's lock, say) when the
    # session's end closes the driver; then it returns into gpiozero's Button.
    board = SimBoard(pins=pin_map, clock=RealClock())
    with SimServer(board, host="127.0.0.1", port=0) as server:
        stim = Stimulator(pins=pin_map, host="127.0.0.1", port=server.port, max_ma=(60, 40))
        entered, leave = threading.Event(), threading.Event()

        def busy_app() -> None:
            entered.set()
            leave.wait(0.3)

        stim.on_estop = busy_app
        board.press_estop()
        assert entered.wait(5), "the e-stop callback did not run"
        board.release_estop()
        stim.close()
        leave.set()
        assert stim.faulted is None
    _settle_threads()
    assert thread_errors == []
    assert "Traceback" not in capfd.readouterr().err


def test_press_and_release_within_milliseconds_as_the_driver_closes(pin_map, thread_errors, capfd):
    # The interleavings of the field report, looped: press, release a few ms later, the app
    # taking 0 to 150 ms to react (gpiozero's Button takes up to 100 ms to close), the
    # driver closing at some point in between.
    board = SimBoard(pins=pin_map, clock=RealClock())
    with SimServer(board, host="127.0.0.1", port=0) as server:
        for i in range(24):
            stim = Stimulator(pins=pin_map, host="127.0.0.1", port=server.port, max_ma=(60, 40))
            called = threading.Event()

            def app_reacts(delay_s: float = 0.025 * (i % 7), called=called) -> None:
                called.set()
                time.sleep(delay_s)

            stim.on_estop = app_reacts
            board.press_estop()
            time.sleep(0.0005 * (i % 3))
            board.release_estop()
            if i % 2:
                called.wait(1)
            time.sleep(0.0005 * (i % 5))
            stim.close()
    _settle_threads()
    assert thread_errors == []
    assert "Traceback" not in capfd.readouterr().err


def test_an_estop_after_close_touches_nothing(pin_map, thread_errors):
    board = SimBoard(pins=pin_map, clock=RealClock())
    with SimServer(board, host="127.0.0.1", port=0) as server:
        stim = Stimulator(pins=pin_map, host="127.0.0.1", port=server.port, max_ma=(60, 40))
        calls = []
        stim.on_estop = lambda: calls.append(1)
        stim.close()
        board.press_estop()
        time.sleep(0.05)
        stim._estop_pressed_cb()  # a late edge delivered after the close
        assert calls == []
        assert _wait_for(lambda: server.connection_count() == 0)
    assert thread_errors == []


def test_a_failing_app_handler_is_logged_not_a_crash(pin_map, thread_errors, caplog):
    board = SimBoard(pins=pin_map, clock=RealClock())
    with SimServer(board, host="127.0.0.1", port=0) as server:
        stim = Stimulator(pins=pin_map, host="127.0.0.1", port=server.port, max_ma=(60, 40))
        failed = threading.Event()

        def broken_app() -> None:
            failed.set()
            raise RuntimeError("the log is closed")

        stim.on_estop = broken_app
        board.press_estop()
        assert failed.wait(5)
        assert _wait_for(lambda: "the log is closed" in caplog.text)
        assert not board.effective_enable()
        stim.close()
    _settle_threads()
    assert thread_errors == []
    assert "e-stop handler failed" in caplog.text
