"""The virtual board behind the simulated pigpiod: enable gating, the heartbeat watchdog,
the e-stop, the MCP4822 DAC, the MCP3008 contact sense, fault injection and the trace."""
from __future__ import annotations

import contextlib
import socket
import threading
import time

import pigpio
import pytest

from hw.clock import VirtualClock
from hw.sim import SimBoard, SimServer, Trace

A0, B0, A1, B1, EN, HB, ESTOP = 17, 27, 22, 23, 24, 25, 16


@pytest.fixture
def pi(sim):
    _, server = sim
    conn = pigpio.pi("127.0.0.1", server.port)
    pigpio.exceptions = True
    for g in (A0, B0, A1, B1, EN, HB):
        conn.set_mode(g, pigpio.OUTPUT)
    yield conn
    conn.stop()


def dac_word(channel: int, code: int, gain_1x: bool = False, active: bool = True) -> bytes:
    word = (channel << 15) | (int(gain_1x) << 13) | (int(active) << 12) | code
    return bytes([word >> 8, word & 0xFF])


def adc_read(pi, handle: int, channel: int) -> int:
    _, rx = pi.spi_xfer(handle, [0x01, 0x80 | channel << 4, 0x00])
    return ((rx[1] & 3) << 8) | rx[2]


def test_enable_needs_the_line_the_heartbeat_and_the_estop(pi, sim, virtual_clock):
    board, _ = sim
    pi.write(EN, 1)
    assert not board.effective_enable()  # no heartbeat edge yet since power-up
    virtual_clock.advance_to(0.010)
    pi.write(HB, 1)
    assert board.effective_enable()
    virtual_clock.advance_to(0.020)
    pi.write(EN, 0)
    assert not board.effective_enable()
    assert board.trace().signal("enable") == [(0, 0), (10_000, 1), (20_000, 0)]


def test_watchdog_cuts_at_exactly_250_ms_after_the_last_edge(pi, sim, virtual_clock):
    board, _ = sim
    pi.write(EN, 1)
    for k in range(5):  # a 100 ms heartbeat keeps it alive
        virtual_clock.advance_to(0.1 * k + 0.001)
        pi.write(HB, k % 2 == 0)
    virtual_clock.advance_to(2.0)
    tr = board.trace()
    assert tr.signal("enable") == [(0, 0), (1_000, 1), (401_000 + 250_000, 0)]
    assert tr.value_at("enable", 650_999) == 1
    assert tr.value_at("enable", 651_000) == 0
    virtual_clock.advance_to(2.5)
    pi.write(HB, 0)  # a late edge revives it
    assert board.effective_enable()


def test_watchdog_expiry_interleaves_with_wave_edges(pi, sim, virtual_clock):
    """The heartbeat toggled by the wave itself keeps the output alive; once the wave ends,
    the output dies 250 ms after its last heartbeat edge, while legs keep their levels."""
    board, _ = sim
    pi.write(EN, 1)
    pi.wave_add_new()
    pi.wave_add_generic([pigpio.pulse(1 << HB, 0, 100_000), pigpio.pulse(0, 1 << HB, 100_000)] * 3)
    pi.wave_send_once(pi.wave_create())
    virtual_clock.advance_to(3.0)
    tr = board.trace()
    last_edge = 20 + 500_000
    assert tr.signal("enable") == [(0, 0), (20, 1), (last_edge + 250_000, 0)]


def test_estop_cuts_the_output_and_reads_low(pi, sim, virtual_clock):
    board, _ = sim
    pi.write(EN, 1)
    pi.write(HB, 1)
    assert pi.read(ESTOP) == 1
    virtual_clock.advance_to(0.05)
    board.press_estop()
    assert pi.read(ESTOP) == 0
    assert not board.effective_enable()
    virtual_clock.advance_to(0.06)
    board.release_estop()
    pi.write(HB, 0)
    tr = board.trace()
    assert tr.signal("estop") == [(0, 0), (50_000, 1), (60_000, 0)]
    assert tr.signal("enable") == [(0, 1), (50_000, 0), (60_000, 1)]


def test_pulses_through_a_disabled_board_are_marked_not_enabled(pi, sim, virtual_clock):
    board, _ = sim
    pi.wave_add_new()
    pi.wave_add_generic([pigpio.pulse(1 << A0, 0, 200), pigpio.pulse(0, 1 << A0, 50),
                         pigpio.pulse(1 << B0, 0, 200), pigpio.pulse(0, 1 << B0, 550)])
    pi.wave_send_once(pi.wave_create())
    virtual_clock.advance_to(0.01)
    (p,) = board.trace().pulses(0)
    assert (p.a_us, p.gap_us, p.b_us, p.enabled) == (200, 50, 200, False)
    assert board.trace().current_segments(0) == []


def test_dac_words_decode_to_milliamps(pi, sim, virtual_clock):
    board, _ = sim
    h = pi.spi_open(0, 1_000_000, 0)
    pi.spi_xfer(h, dac_word(0, 2048))
    pi.spi_xfer(h, dac_word(1, 1229))
    assert board.amplitude_ma(0) == 50.0
    assert board.amplitude_ma(1) == pytest.approx(30.005, abs=1e-3)
    virtual_clock.advance_to(0.001)
    pi.spi_xfer(h, dac_word(0, 2048, gain_1x=True))
    virtual_clock.advance_to(0.002)
    pi.spi_xfer(h, dac_word(1, 4000, active=False))
    virtual_clock.advance_to(0.003)
    pi.spi_write(h, dac_word(0, 4095))
    tr = board.trace()
    assert tr.signal("ch0.ma") == [(0, 50.0), (1_000, 25.0), (3_000, 99.976)]
    assert tr.signal("ch1.ma") == [(0, 30.005), (2_000, 0.0)]
    pi.spi_close(h)


def test_contact_sense_follows_the_electrodes(pi, sim, virtual_clock):
    board, _ = sim
    h = pi.spi_open(1, 1_000_000, 0)
    assert adc_read(pi, h, 0) >= 600 and adc_read(pi, h, 1) >= 600
    virtual_clock.advance_to(1.5)
    board.set_lead(1, False)
    assert adc_read(pi, h, 0) >= 600 and adc_read(pi, h, 1) <= 40
    assert board.trace().signal("lead.ch1") == [(0, 1), (1_500_000, 0)]
    assert adc_read(pi, h, 5) == 0


def test_spi_errors(pi):
    for args, code in (((2, 1_000_000, 0), pigpio.PI_BAD_SPI_CHANNEL),
                       ((0, 1_000, 0), pigpio.PI_BAD_SPI_SPEED)):
        with pytest.raises(pigpio.error) as e:
            pi.spi_open(*args)
        assert e.value.value == pigpio.error_text(code)
    # spi_xfer answers errors in its count rather than raising
    assert pi.spi_xfer(9, b"\x00\x00")[0] == pigpio.PI_BAD_HANDLE


def test_gpio_commands_and_errors(pi, sim):
    assert pi.get_mode(A0) == pigpio.OUTPUT
    pi.set_mode(5, pigpio.INPUT)
    pi.set_pull_up_down(5, pigpio.PUD_UP)
    assert pi.read(5) == 1
    pi.set_pull_up_down(5, pigpio.PUD_DOWN)
    assert pi.read(5) == 0
    pi.write(6, 1)  # write makes the line an output
    assert pi.get_mode(6) == pigpio.OUTPUT and pi.read(6) == 1
    assert pi.read_bank_1() & (1 << 6 | 1 << ESTOP) == (1 << 6 | 1 << ESTOP)
    for call, code in ((lambda: pi.set_mode(54, 0), pigpio.PI_BAD_GPIO),
                       (lambda: pi.set_mode(4, 8), pigpio.PI_BAD_MODE),
                       (lambda: pi.write(4, 2), pigpio.PI_BAD_LEVEL),
                       (lambda: pi.set_pull_up_down(4, 3), pigpio.PI_BAD_PUD),
                       (lambda: pi.set_glitch_filter(40, 0), pigpio.PI_BAD_USER_GPIO),
                       (lambda: pi.set_glitch_filter(4, 300_001), pigpio.PI_BAD_FILTER)):
        with pytest.raises(pigpio.error) as e:
            call()
        assert e.value.value == pigpio.error_text(code)


def test_waves_move_only_lines_in_output_mode(pi, sim, virtual_clock):
    board, _ = sim
    pi.set_mode(A1, pigpio.INPUT)
    pi.wave_add_new()
    pi.wave_add_generic([pigpio.pulse(1 << A1, 0, 100), pigpio.pulse(0, 1 << A1, 100)])
    pi.wave_send_once(pi.wave_create())
    virtual_clock.advance_to(0.01)
    assert board.trace().signal("ch1.a") == [(0, 0)]


def test_tick_is_board_time_in_microseconds(pi, virtual_clock):
    virtual_clock.advance_to(12.345678)
    assert pi.get_current_tick() == 12_345_678


def test_pigpio_callback_sees_wave_edges(pi, sim, virtual_clock):
    got: list[tuple[int, int, int]] = []
    done = threading.Event()

    def edge(gpio, level, tick):
        got.append((gpio, level, tick))
        if len(got) == 4:
            done.set()

    cb = pi.callback(A0, pigpio.EITHER_EDGE, edge)
    time.sleep(0.05)  # NB travels on the command socket; let it land before the edges
    pi.wave_add_new()
    pi.wave_add_generic([pigpio.pulse(1 << A0, 0, 250), pigpio.pulse(0, 1 << A0, 750)])
    pi.wave_send_repeat(pi.wave_create())
    virtual_clock.advance_to(0.0015)
    assert done.wait(5)
    assert got == [(A0, 1, 20), (A0, 0, 270), (A0, 1, 1_020), (A0, 0, 1_270)]
    cb.cancel()


def test_dropped_connection_and_slow_replies(sim):
    board, server = sim
    conn = pigpio.pi("127.0.0.1", server.port)
    conn.write(EN, 1)
    server.drop_connections()
    with pytest.raises((pigpio.error, OSError, struct_error())):
        conn.read(EN)
    assert board.read(EN) == 1  # the board keeps its state
    with contextlib.suppress(OSError):  # the client's own stop fails on a dead socket
        conn.stop()
    server.reply_delay_s = 0.2
    conn = pigpio.pi("127.0.0.1", server.port)
    t0 = time.monotonic()
    assert conn.read(EN) == 1
    assert time.monotonic() - t0 >= 0.2
    server.reply_delay_s = 0.0
    conn.stop()


def struct_error():
    import struct
    return struct.error


def test_too_large_request_drops_the_connection_like_pigpiod(sim):
    _, server = sim
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall((28).to_bytes(4, "little") + bytes(8) + (65_536).to_bytes(4, "little"))
    s.settimeout(2)
    assert s.recv(16) == b""
    s.close()


def test_trace_csv_is_contracts_format_and_deterministic(tmp_path, pin_map):
    def session(path):
        clock = VirtualClock()
        board = SimBoard(pins=pin_map, clock=clock)
        server = SimServer(board, port=0)
        server.start()
        try:
            conn = pigpio.pi("127.0.0.1", server.port)
            for g in (A0, B0, EN, HB):
                conn.set_mode(g, pigpio.OUTPUT)
            h = conn.spi_open(0, 1_000_000, 0)
            conn.spi_xfer(h, dac_word(0, 1234))
            conn.write(EN, 1)
            conn.wave_add_new()
            conn.wave_add_generic([pigpio.pulse(1 << A0, 0, 300), pigpio.pulse(0, 1 << A0, 50),
                                   pigpio.pulse(1 << B0, 0, 300), pigpio.pulse(0, 1 << B0, 19_350)])
            conn.wave_chain([255, 0, conn.wave_create(), 255, 1, 50, 0])
            for k in range(10):
                clock.advance_to(0.1 * k)
                conn.write(HB, k % 2)
            board.set_lead(0, False)
            clock.advance_to(2.0)
            conn.stop()
            board.write_trace(path)
        finally:
            server.stop()

    session(tmp_path / "a.csv")
    session(tmp_path / "b.csv")
    a = (tmp_path / "a.csv").read_bytes()
    assert a == (tmp_path / "b.csv").read_bytes()
    lines = a.decode().splitlines()
    assert lines[0] == "t_us,signal,value"
    rows = [line.split(",") for line in lines[1:]]
    assert {r[1] for r in rows if r[0] == "0"} == {
        "ch0.a", "ch0.b", "ch1.a", "ch1.b", "ch0.ma", "ch1.ma", "enable", "estop",
        "heartbeat", "lead.ch0", "lead.ch1"}
    keys = [(int(t), s) for t, s, _ in rows]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert len(set(keys)) == len(keys)  # one row per signal and microsecond
    assert "0,ch0.ma,30.127" in lines
    tr = Trace.read(tmp_path / "a.csv")
    pulses = tr.pulses(0)
    assert len(pulses) == 50 and all((p.a_us, p.gap_us, p.b_us) == (300, 50, 300) for p in pulses)
    assert all(p.ma == 30.127 for p in pulses)
    assert [p.enabled for p in pulses[:5]] == [False] * 5  # no heartbeat before t=100 ms
    assert tr.current_segments(0)[0] == (100_020, 100_320, 30.127)
    assert tr.current_segments(0)[1] == (100_370, 100_670, -30.127)
