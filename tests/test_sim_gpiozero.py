"""gpiozero's PiGPIOFactory, unmodified, against the simulated pigpiod."""
from __future__ import annotations

import threading

import pytest
from gpiozero import Button, OutputDevice
from gpiozero.pins.pigpio import PiGPIOFactory


@pytest.fixture
def factory(sim):
    _, server = sim
    f = PiGPIOFactory(host="127.0.0.1", port=server.port)
    yield f
    f.close()


def test_factory_sees_a_pi_4(factory):
    assert factory.board_info.model == "4B"


def test_output_device_drives_the_enable_line(factory, sim, pin_map, virtual_clock):
    board, _ = sim
    enable = OutputDevice(pin_map.enable, pin_factory=factory)
    heartbeat = OutputDevice(pin_map.heartbeat, pin_factory=factory)
    assert board.read(pin_map.enable) == 0
    enable.on()
    heartbeat.toggle()
    assert enable.value == 1 and board.read(pin_map.enable) == 1
    assert board.effective_enable()
    virtual_clock.advance_to(0.3)
    assert not board.effective_enable()  # no heartbeat edge for 250 ms
    enable.off()
    assert board.read(pin_map.enable) == 0
    enable.close()
    heartbeat.close()


def test_button_when_pressed_fires_on_an_injected_estop(factory, sim, pin_map):
    board, _ = sim
    pressed, released = threading.Event(), threading.Event()
    button = Button(pin_map.estop, pull_up=True, pin_factory=factory)
    button.when_pressed = lambda: pressed.set()
    button.when_released = lambda: released.set()
    assert not button.is_pressed
    board.press_estop()
    assert pressed.wait(5)
    assert button.is_pressed
    board.release_estop()
    assert released.wait(5)
    assert not button.is_pressed
    button.close()
