"""The real pigpio client against the simulated pigpiod: waves, chains, limits, errors.
Timing is virtual, so every width and count is checked to the microsecond."""
from __future__ import annotations

import pigpio
import pytest

from hw import pigpio_limits as L

A0, B0, A1, B1, EN, HB = 17, 27, 22, 23, 24, 25
START = L.WAVE_START_DELAY_US


@pytest.fixture
def pi(sim):
    board, server = sim
    conn = pigpio.pi("127.0.0.1", server.port)
    assert conn.connected
    pigpio.exceptions = True
    for g in (A0, B0, A1, B1, EN, HB):
        conn.set_mode(g, pigpio.OUTPUT)
    yield conn
    conn.stop()


def biphasic(a: int, b: int, width_us: int, gap_us: int, period_us: int) -> list[pigpio.pulse]:
    return [pigpio.pulse(1 << a, 0, width_us), pigpio.pulse(0, 1 << a, gap_us),
            pigpio.pulse(1 << b, 0, width_us),
            pigpio.pulse(0, 1 << b, period_us - 2 * width_us - gap_us)]


def make_wave(pi, pulses) -> int:
    pi.wave_add_new()
    pi.wave_add_generic(pulses)
    return pi.wave_create()


def test_biphasic_wave_once_is_exact(pi, sim, virtual_clock):
    board, _ = sim
    wid = make_wave(pi, biphasic(A0, B0, 300, 50, 10_000))
    assert pi.wave_get_micros() == 10_000  # the stats still describe the wave just built
    pi.wave_send_once(wid)
    assert pi.wave_tx_busy() == 1
    virtual_clock.advance_to(0.005)
    assert pi.wave_tx_at() == wid
    virtual_clock.advance_to(0.011)
    assert pi.wave_tx_busy() == 0
    pulses = board.trace().pulses(0)
    assert [(p.start_us, p.a_us, p.gap_us, p.b_us) for p in pulses] == [(START, 300, 50, 300)]
    assert board.trace().signal("ch0.b") == [(0, 0), (START + 350, 1), (START + 650, 0)]


def test_wave_busy_until_its_last_delay_ends(pi, virtual_clock):
    wid = make_wave(pi, biphasic(A0, B0, 200, 0, 1_000))
    pi.wave_send_once(wid)
    virtual_clock.advance_to((START + 999) / 1e6)
    assert pi.wave_tx_busy() == 1
    virtual_clock.advance_to((START + 1000) / 1e6)
    assert pi.wave_tx_busy() == 0
    assert pi.wave_tx_at() == L.PI_NO_TX_WAVE


def test_add_generic_merges_two_channels_in_time_order(pi, sim, virtual_clock):
    board, _ = sim
    pi.wave_add_new()
    pi.wave_add_generic(biphasic(A0, B0, 300, 50, 10_000))
    # channel 1 offset by 5 ms: a leading delay-only pulse, as pigpio users write it
    n = pi.wave_add_generic([pigpio.pulse(0, 0, 5_000)] + biphasic(A1, B1, 200, 20, 5_000))
    assert n == 8
    assert pi.wave_get_micros() == 10_000
    wid = pi.wave_create()
    pi.wave_send_repeat(wid)
    virtual_clock.advance_to(0.0305)
    tr = board.trace()
    assert [p.start_us for p in tr.pulses(0)] == [START, START + 10_000, START + 20_000, START + 30_000]
    assert [(p.start_us, p.a_us, p.gap_us, p.b_us) for p in tr.pulses(1)] == [
        (START + 5_000 + k * 10_000, 200, 20, 200) for k in range(3)]


def test_same_time_pulses_are_ored_into_one(pi):
    pi.wave_add_new()
    pi.wave_add_generic([pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 100)])
    assert pi.wave_add_generic([pigpio.pulse(1 << A1, 0, 100), pigpio.pulse(0, 1 << A1, 50)]) == 2
    assert pi.wave_get_micros() == 200


def test_chain_with_nested_loops_and_delays(pi, sim, virtual_clock):
    board, _ = sim
    w_pulse = make_wave(pi, biphasic(A0, B0, 100, 10, 1_000))
    w_mark = make_wave(pi, [pigpio.pulse(1 << A1, 0, 50), pigpio.pulse(0, 1 << A1, 50)])
    # mark, then 3 x (4 pulses then a 2 ms delay), then 5 ms delay, then mark
    pi.wave_chain([w_mark,
                   255, 0, 255, 0, w_pulse, 255, 1, 4, 0, 255, 2, 0xD0, 0x07, 255, 1, 3, 0,
                   255, 2, 0x88, 0x13, w_mark])
    virtual_clock.advance_to(0.1)
    assert pi.wave_tx_busy() == 0
    tr = board.trace()
    starts = [p.start_us for p in tr.pulses(0)]
    t = START + 100
    expect = []
    for _ in range(3):
        expect += [t + k * 1_000 for k in range(4)]
        t += 4 * 1_000 + 2_000
    assert starts == expect
    assert all((p.a_us, p.gap_us, p.b_us) == (100, 10, 100) for p in tr.pulses(0))
    marks = [t0 for t0, v in tr.signal("ch1.a") if v == 1]
    assert marks == [START, t + 5_000]


def test_loop_forever_runs_until_stopped_and_stop_leaves_pins(pi, sim, virtual_clock):
    board, _ = sim
    w = make_wave(pi, [pigpio.pulse(1 << A0, 0, 300), pigpio.pulse(0, 1 << A0, 700)])
    pi.wave_chain([255, 0, w, 255, 3])
    virtual_clock.advance_to(10.000_170)  # 10 s in: mid-pulse (A0 high from 10.000020)
    assert pi.wave_tx_busy() == 1
    assert len(board.trace().pulses(0)) == 10_000
    pi.wave_tx_stop()
    assert pi.wave_tx_busy() == 0
    assert pi.read(A0) == 1  # stopped mid-pulse: the line stays high
    virtual_clock.advance_to(11)
    assert pi.read(A0) == 1
    assert board.trace().signal("ch0.a")[-1] == (10_000_020, 1)


def test_sync_mode_follows_a_repeating_wave_at_its_boundary(pi, sim, virtual_clock):
    board, _ = sim
    w1 = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 900)])
    w2 = make_wave(pi, [pigpio.pulse(1 << A1, 0, 100), pigpio.pulse(0, 1 << A1, 900)])
    pi.wave_send_repeat(w1)
    virtual_clock.advance_to(0.0025)
    pi.wave_send_using_mode(w2, pigpio.WAVE_MODE_ONE_SHOT_SYNC)
    virtual_clock.advance_to(0.01)
    tr = board.trace()
    assert [p.start_us for p in tr.pulses(0)] == [START, START + 1_000, START + 2_000]
    assert [p.start_us for p in tr.pulses(1)] == [START + 3_000]  # seamless, no 20 µs
    assert pi.wave_tx_busy() == 0


def test_sync_mode_when_idle_starts_at_once(pi, sim, virtual_clock):
    board, _ = sim
    w = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 100)])
    pi.wave_send_once(w)
    virtual_clock.advance_to(0.001)
    pi.wave_send_using_mode(w, pigpio.WAVE_MODE_ONE_SHOT_SYNC)
    virtual_clock.advance_to(0.002)
    assert [p.start_us for p in board.trace().pulses(0)] == [START, 1_000 + START]


def test_plain_send_replaces_what_plays(pi, sim, virtual_clock):
    board, _ = sim
    w1 = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 900)])
    w2 = make_wave(pi, [pigpio.pulse(1 << A1, 0, 100), pigpio.pulse(0, 1 << A1, 900)])
    pi.wave_send_repeat(w1)
    virtual_clock.advance_to(0.0025)
    pi.wave_send_once(w2)
    virtual_clock.advance_to(0.01)
    tr = board.trace()
    assert [p.start_us for p in tr.pulses(0)] == [START, START + 1_000, START + 2_000]
    assert [p.start_us for p in tr.pulses(1)] == [2_500 + START]


def test_wave_keeps_playing_after_the_client_disconnects(sim, virtual_clock):
    board, server = sim
    conn = pigpio.pi("127.0.0.1", server.port)
    conn.set_mode(A0, pigpio.OUTPUT)
    w = make_wave(conn, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 900)])
    conn.wave_send_repeat(w)
    conn.stop()
    server.drop_connections()
    virtual_clock.advance_to(1.0)
    assert len(board.trace().pulses(0)) == 1_000


def test_bad_wave_ids_are_refused(pi):
    with pytest.raises(pigpio.error) as e:
        pi.wave_send_once(7)
    assert e.value.value == pigpio.error_text(L.PI_BAD_WAVE_ID)
    w = make_wave(pi, [pigpio.pulse(1 << A0, 0, 10), pigpio.pulse(0, 1 << A0, 10)])
    pi.wave_delete(w)
    for call in (lambda: pi.wave_send_repeat(w), lambda: pi.wave_delete(w),
                 lambda: pi.wave_chain([w])):
        with pytest.raises(pigpio.error) as e:
            call()
        assert e.value.value == pigpio.error_text(L.PI_BAD_WAVE_ID)
    with pytest.raises(pigpio.error) as e:
        pi.wave_send_using_mode(0, 4)
    assert e.value.value == pigpio.error_text(L.PI_BAD_WAVE_ID)  # the id is checked before the mode
    live = make_wave(pi, [pigpio.pulse(1 << A0, 0, 10), pigpio.pulse(0, 1 << A0, 10)])
    with pytest.raises(pigpio.error) as e:
        pi.wave_send_using_mode(live, 4)
    assert e.value.value == pigpio.error_text(L.PI_BAD_WAVE_MODE)


def add_span(pi, start_us: int, n: int) -> int:
    """Add n one-µs entries at start_us..start_us+n-1 (A0 toggling), merged into the wave
    being built; pigpio takes at most 5,461 pulses per request, so big waves are built
    from several requests."""
    toggles = [pigpio.pulse(1 << A0, 0, 1) if i % 2 == 0 else pigpio.pulse(0, 1 << A0, 1)
               for i in range(n)]
    return pi.wave_add_generic(([pigpio.pulse(0, 0, start_us)] if start_us else []) + toggles)


def test_too_many_pulses(pi):
    pi.wave_add_new()
    add_span(pi, 0, 5_000)
    assert add_span(pi, 5_000, 5_000) == 10_000
    with pytest.raises(pigpio.error) as e:
        add_span(pi, 10_000, 2_000)  # 12,000 merged entries: pigpio's buffer is full
    assert e.value.value == pigpio.error_text(L.PI_TOO_MANY_PULSES)
    assert pi.wave_get_pulses() == 10_000  # a refused add leaves the wave as it was
    assert add_span(pi, 10_000, 1_999) == 11_999
    assert pi.wave_get_max_pulses() == 12_000


def test_empty_wave_and_unknown_command(pi):
    pi.wave_add_new()
    with pytest.raises(pigpio.error) as e:
        pi.wave_create()
    assert e.value.value == pigpio.error_text(L.PI_EMPTY_WAVEFORM)
    with pytest.raises(pigpio.error) as e:
        pi.hardware_PWM(18, 800, 250_000)  # not a command the simulator implements
    assert e.value.value == pigpio.error_text(L.PI_UNKNOWN_COMMAND)


def test_wave_ids_run_out_at_250_and_deleted_slots_are_reused(pi):
    pulses = [pigpio.pulse(1 << A0, 0, 10), pigpio.pulse(0, 1 << A0, 10)]
    ids = [make_wave(pi, pulses) for _ in range(L.PI_MAX_WAVES)]
    assert ids == list(range(L.PI_MAX_WAVES))
    with pytest.raises(pigpio.error) as e:
        make_wave(pi, pulses)
    assert e.value.value == pigpio.error_text(L.PI_NO_WAVEFORM_ID)
    pi.wave_delete(3)
    assert make_wave(pi, pulses) == 3  # same cost: the deleted slot is reused
    pi.wave_clear()
    assert make_wave(pi, pulses) == 0


def test_control_block_budget(pi):
    # every entry sets or clears a line and has a delay: 2 CBs each, plus the start CB
    pi.wave_add_new()
    add_span(pi, 0, 5_000)
    add_span(pi, 5_000, 5_000)
    add_span(pi, 10_000, 1_918)
    assert L.wave_cbs([(1, 0, 1)] * 11_918) == L.WAVE_CB_BUDGET + 1
    with pytest.raises(pigpio.error) as e:
        pi.wave_create()
    assert e.value.value == pigpio.error_text(L.PI_TOO_MANY_CBS)
    pi.wave_add_new()
    add_span(pi, 0, 5_000)
    add_span(pi, 5_000, 5_000)
    add_span(pi, 10_000, 1_917)
    assert pi.wave_create() == 0
    # 1 CB left: a wave of one idle entry fits, one with an edge does not
    pi.wave_add_generic([pigpio.pulse(1 << A0, 0, 0)])
    with pytest.raises(pigpio.error) as e:
        pi.wave_create()
    assert e.value.value == pigpio.error_text(L.PI_TOO_MANY_CBS)
    pi.wave_delete(0)  # the top wave: its CBs come back
    assert pi.wave_create() == 0


def test_wave_cbs_matches_what_the_simulator_reports(pi):
    pulses = biphasic(A0, B0, 300, 50, 10_000)
    pi.wave_add_new()
    pi.wave_add_generic(pulses)
    assert pi.wave_get_cbs() + 1 == L.wave_cbs(pulses) == 9
    wid = pi.wave_create()
    assert pi.wave_send_once(wid) == 9  # pigpio answers a send with the wave's CB count


@pytest.mark.parametrize("script, code", [
    ([255, 0] * 11 + [0] + [255, 1, 2, 0] * 11, L.PI_CHAIN_NESTING),
    ([255, 0, 255, 1, 2, 0], L.PI_BAD_CHAIN_LOOP),
    ([0, 255, 1, 2, 0], L.PI_BAD_CHAIN_LOOP),
    ([255, 7], L.PI_BAD_CHAIN_CMD),
    ([0, 255, 2, 5], L.PI_BAD_CHAIN_CMD),
    ([255, 0, 0, 255, 3, 0], L.PI_BAD_FOREVER),
    ([0] * 599, L.PI_CHAIN_TOO_BIG),
    ([255, 0, 0, 255, 1, 2, 0] * 21, L.PI_CHAIN_COUNTER),
    ([9], L.PI_BAD_WAVE_ID),
])
def test_chain_errors(pi, script, code):
    make_wave(pi, [pigpio.pulse(1 << A0, 0, 10), pigpio.pulse(0, 1 << A0, 10)])
    with pytest.raises(pigpio.error) as e:
        pi.wave_chain(script)
    assert e.value.value == pigpio.error_text(code)


def test_chain_size_limit_is_pigpios(pi):
    make_wave(pi, [pigpio.pulse(1 << A0, 0, 10), pigpio.pulse(0, 1 << A0, 10)])
    assert L.chain_cbs(bytes([0] * 598)) == 600
    pi.wave_chain([0] * 598)
    pi.wave_tx_stop()
    with pytest.raises(pigpio.error) as e:
        pi.wave_chain([0] * 599)
    assert e.value.value == pigpio.error_text(L.PI_CHAIN_TOO_BIG)


def test_refused_chain_has_already_stopped_the_output(pi, virtual_clock):
    w = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 900)])
    pi.wave_send_repeat(w)
    virtual_clock.advance_to(0.01)
    with pytest.raises(pigpio.error):
        pi.wave_chain([255, 9])
    assert pi.wave_tx_busy() == 0


def test_zero_count_loop_still_plays_its_first_delay(pi, sim, virtual_clock):
    board, _ = sim
    w = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 100)])
    pi.wave_chain([255, 0, 255, 2, 0xE8, 0x03, w, 255, 1, 0, 0, w])
    virtual_clock.advance_to(0.01)
    assert [p.start_us for p in board.trace().pulses(0)] == [START + 1_000]


def test_wave_stats_subcommands(pi):
    pi.wave_add_new()
    pi.wave_add_generic(biphasic(A0, B0, 300, 50, 10_000))
    assert (pi.wave_get_micros(), pi.wave_get_pulses()) == (10_000, 4)
    assert pi.wave_get_max_micros() == L.PI_WAVE_MAX_MICROS
    assert pi.wave_get_max_cbs() == L.PI_WAVE_MAX_CBS


def test_sync_send_ends_a_loop_forever_chain_after_its_current_iteration(pi, sim, virtual_clock):
    board, _ = sim
    w1 = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 900)])
    w2 = make_wave(pi, [pigpio.pulse(1 << A1, 0, 100), pigpio.pulse(0, 1 << A1, 900)])
    pi.wave_chain([w2, 255, 0, w1, w1, 255, 3])  # once w2, then (w1 w1) forever
    virtual_clock.advance_to(0.0045)  # in the second iteration (3,020 .. 5,020)
    pi.wave_send_using_mode(w2, pigpio.WAVE_MODE_REPEAT_SYNC)
    virtual_clock.advance_to(0.0081)
    tr = board.trace()
    assert [p.start_us for p in tr.pulses(0)] == [START + 1_000 + k * 1_000 for k in range(4)]
    assert [p.start_us for p in tr.pulses(1)] == [START, START + 5_000, START + 6_000, START + 7_000]
    assert pi.wave_tx_at() == w2 and pi.wave_tx_busy() == 1


def test_sync_sends_queue_in_order(pi, sim, virtual_clock):
    board, _ = sim
    w1 = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 900)])
    w2 = make_wave(pi, [pigpio.pulse(1 << A1, 0, 100), pigpio.pulse(0, 1 << A1, 1_900)])
    pi.wave_send_once(w1)
    pi.wave_send_using_mode(w2, pigpio.WAVE_MODE_REPEAT_SYNC)  # queued: would repeat...
    pi.wave_send_using_mode(w1, pigpio.WAVE_MODE_ONE_SHOT_SYNC)  # ...but this follows it
    virtual_clock.advance_to(0.01)
    tr = board.trace()
    assert [p.start_us for p in tr.pulses(0)] == [START, START + 3_000]
    assert [p.start_us for p in tr.pulses(1)] == [START + 1_000]
    assert pi.wave_tx_busy() == 0


def test_create_and_pad_reserves_a_share_of_the_budget(pi):
    pulses = [pigpio.pulse(1 << A0, 0, 10), pigpio.pulse(0, 1 << A0, 10)]
    for expected in (0, 1):
        pi.wave_add_new()
        pi.wave_add_generic(pulses)
        assert pi.wave_create_and_pad(50) == expected
    pi.wave_add_new()
    pi.wave_add_generic(pulses)
    with pytest.raises(pigpio.error) as e:
        pi.wave_create_and_pad(1)  # the two padded waves hold every CB
    assert e.value.value == pigpio.error_text(L.PI_TOO_MANY_CBS)
    pi.wave_delete(1)
    assert pi.wave_create_and_pad(50) == 1  # the same padded size reuses the slot


def test_tx_at_names_the_wave_not_a_chain_delay(pi, virtual_clock):
    w = make_wave(pi, [pigpio.pulse(1 << A0, 0, 100), pigpio.pulse(0, 1 << A0, 900)])
    pi.wave_chain([w, 255, 2, 0x10, 0x27, w])  # wave, 10 ms delay, wave
    virtual_clock.advance_to(0.0005)
    assert pi.wave_tx_at() == w
    virtual_clock.advance_to(0.005)
    assert pi.wave_tx_at() == L.PI_WAVE_NOT_FOUND
    virtual_clock.advance_to(0.0115)
    assert pi.wave_tx_at() == w
    virtual_clock.advance_to(0.013)
    assert pi.wave_tx_at() == L.PI_NO_TX_WAVE
