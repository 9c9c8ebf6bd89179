"""EngineLink (homeapp/ui/link.py) on the real engine, driver and simulated board: the
UI's commands reach the engine as typed methods on the link's worker, STOP never waits
behind them (also after the link was closed), and the contact check answers on the UI
thread. Kivy's clock is ticked by hand: no window needed."""
from __future__ import annotations

import threading
import time

import pytest

from homeapp.engine import Engine
from homeapp.state import Phase
from homeapp.store import Store
from hw.clock import RealClock
from hw.driver import Stimulator
from schedules.validate import parse_prescription
from tests.sessionkit import rx_dict

kivy_clock = pytest.importorskip("kivy.clock").Clock


@pytest.fixture
def make_link(pin_map, tmp_path):
    """An EngineLink on an engine running in real time on the simulated board."""
    from hw.sim import SimBoard, SimServer
    from homeapp.ui.link import EngineLink

    clock = RealClock()
    board = SimBoard(pins=pin_map, clock=clock)
    server = SimServer(board, host="127.0.0.1", port=0)
    server.start()
    made = []

    def make() -> tuple[EngineLink, Engine, SimBoard]:
        rx = parse_prescription(rx_dict())
        stim = Stimulator(pins=pin_map, clock=clock, host="127.0.0.1", port=server.port,
                          max_ma=(100.0, 100.0))
        store = Store.open(tmp_path / f"log{len(made)}.db")
        eng = Engine(prescription=rx, board=stim, store=store, clock=clock, allow_unsigned=True)
        link = EngineLink(eng)
        made.append((link, eng, stim, store))
        return link, eng, board
    yield make
    for link, eng, stim, store in made:
        link.close()
        eng.stop()
        eng.join(5)
        stim.close()
        store.close()
    server.stop()


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < end, "timed out"
        kivy_clock.tick()
        time.sleep(0.01)


def test_commands_run_in_order_and_answer_on_the_ui_thread(make_link):
    link, eng, _board = make_link()
    answers = []
    link.start(done=lambda r, e: answers.append(("start", e)))
    link.increase(0, done=lambda r, e: answers.append(("increase", r)))
    link.increase(0, done=lambda r, e: answers.append(("increase", r)))
    wait_for(lambda: len(answers) == 3)
    assert answers[0] == ("start", None) and [a[1] for a in answers[1:]] == [1.0, 2.0]
    assert link.state.channels[0].target_ma == 2.0


def test_stop_does_not_wait_behind_a_command_that_hangs(make_link):
    link, eng, _board = make_link()
    link.start()
    wait_for(lambda: link.state.phase is Phase.RUNNING)
    release = threading.Event()
    link.submit(release.wait)            # the worker is stuck from now on
    link.increase(0)
    stopped = []
    link.stop_now(done=lambda r, e: stopped.append(e))
    wait_for(lambda: stopped == [None])
    assert eng.state.phase is Phase.STOPPED and link.state.phase is Phase.STOPPED
    release.set()


def test_a_stop_asked_after_the_link_was_closed_still_stops(make_link):
    link, eng, _board = make_link()
    link.start()
    wait_for(lambda: link.state.phase is Phase.RUNNING)
    link.close()
    time.sleep(0.1)                      # the link's threads have ended
    link.stop_now()
    end = time.monotonic() + 5
    while eng.state.phase is not Phase.STOPPED:
        assert time.monotonic() < end, "the stop after close was lost"
        time.sleep(0.01)


def test_the_contact_check_answers_with_contacts_and_refusals(make_link):
    link, _eng, board = make_link()
    board.set_lead(1, False)
    got = []
    link.check_contact(lambda contacts, refusals: got.append((contacts, refusals)))
    wait_for(lambda: got)
    contacts, refusals = got[0]
    assert contacts == (True, False) and [r.kind for r in refusals] == ["contact"]
