"""Each part of the session engine (homeapp/session/) on its own, without the engine:
flat tests with factory fixtures. The start policy runs against the real driver and the
simulated board, the log against a real SQLite file, the rest on plain values."""
from __future__ import annotations

import datetime as dt

import pytest

from homeapp.session.alerts import AlertDesk, at_cap, estop_pressed
from homeapp.session.contacts import Contacts
from homeapp.session.eventlog import ContractionTally, SessionLog
from homeapp.session.heartbeat import Heartbeat
from homeapp.session.intensity import IntensityRamp
from homeapp.session.start_policy import StartPolicy
from homeapp.session.timeline import Timeline
from homeapp.state import AlertKind, NoticeKind, RefusalKind, WindowState
from homeapp.store import Store
from hw.clock import VirtualClock
from hw.driver import Stimulator
from schedules.limits import INTENSITY_RESTORE_MA_PER_S, INTENSITY_RISE_MA_PER_S
from schedules.validate import parse_prescription
from tests.sessionkit import rx_dict

US = 1_000_000


# ------------------------------------------------------------------ factories
@pytest.fixture
def make_timeline():
    def make(channels: int = 2, **block) -> Timeline:
        rx = parse_prescription(rx_dict(channels=[60.0] * channels,
                                         blocks=[{**rx_dict()["blocks"][0], **block}]))
        tl = Timeline(rx.blocks, channels)
        tl.set_pending(tl.plan_from(0))
        return tl
    return make


@pytest.fixture
def make_ramp():
    def make(caps=(20.0, 10.0)):
        written: list[tuple[int, float]] = []

        def write(channel: int, ma: float) -> float:
            written.append((channel, ma))
            return ma
        ramp = IntensityRamp([(f"ch{i}", cap) for i, cap in enumerate(caps)], write=write)
        return ramp, written
    return make


@pytest.fixture
def make_log(tmp_path):
    stores = []

    def make(clock=None):
        store = Store.open(tmp_path / f"log{len(stores)}.db")
        stores.append(store)
        clock = clock or VirtualClock()
        return SessionLog(store=store, clock=clock), store, clock
    yield make
    for s in stores:
        s.close()


@pytest.fixture
def make_policy(sim, pin_map, virtual_clock, tmp_path):
    board, server = sim
    made = []

    def make(rx: dict | None = None, *, program_error=None, **kw) -> tuple[StartPolicy, object]:
        rx_obj = parse_prescription(rx or rx_dict())
        stim = Stimulator(pins=pin_map, clock=virtual_clock, host="127.0.0.1", port=server.port,
                          max_ma=(100.0, 100.0))
        store = Store.open(tmp_path / f"policy{len(made)}.db")
        made.append((stim, store))
        kw.setdefault("allow_unsigned", True)
        policy = StartPolicy(rx=rx_obj, store=store, board=stim, trust=None,
                             wall_clock=lambda: dt.datetime.now(dt.timezone.utc),
                             program_error=lambda: program_error,
                             poll_contacts=lambda: tuple(stim.contact(i) for i in range(len(rx_obj.channels))),
                             channel_labels=[c.label for c in rx_obj.channels], **kw)
        return policy, store
    yield make
    for stim, store in made:
        stim.close()
        store.close()


# ------------------------------------------------------------------ timeline
def test_the_timeline_passes_each_window_edge_once_and_begins_the_next_step_on_time(make_timeline):
    tl = make_timeline()
    assert tl.planned_total_us() == 6 * 10 * US
    step, new_block = tl.begin_next(1_000)
    assert step is not None and new_block and tl.block_index == 0
    tl.rewind_windows()
    tl.step_started = True
    edges = []
    (a, b) = step.windows_us[0]
    assert tl.advance(1_000 + a - 1, lambda *e: edges.append(e)) is None and edges == []
    assert tl.advance(1_000 + b, lambda *e: edges.append(e)) is None
    assert [(ch, begins, t) for ch, begins, t, _ in edges] == [
        (0, True, 1_000 + a), (0, False, 1_000 + b), (1, True, 1_000 + a), (1, False, 1_000 + b)]
    assert tl.windows == [WindowState.DONE, WindowState.DONE]
    assert tl.advance(1_000 + b + 1, lambda *e: edges.append(e)) is None and len(edges) == 4
    assert tl.advance(1_000 + step.duration_us, lambda *e: None) == 1_000 + step.duration_us
    assert tl.elapsed_done_us == step.duration_us


def test_a_cut_in_the_contraction_replays_the_step_and_one_in_the_rest_moves_on(make_timeline):
    tl = make_timeline()
    step, _ = tl.begin_next(0)
    tl.rewind_windows()
    tl.step_started = True
    a, b = step.windows_us[0]
    tl.advance(a, lambda *e: None)
    assert tl.cut(a + 10) == [0, 1] and tl.step is step          # replayed on resume
    assert tl.windows == [WindowState.PENDING, WindowState.PENDING] and tl.elapsed_done_us == 0
    tl.replay_from(5 * US)
    tl.rewind_windows()
    tl.step_started = True
    tl.advance(5 * US + b, lambda *e: None)
    assert tl.cut(5 * US + b + 10) == [] and tl.step is None     # only the rest was left
    assert tl.elapsed_done_us == step.duration_us


def test_an_adjustment_under_way_replans_from_the_next_cycle(make_timeline):
    tl = make_timeline(minutes=1, hz={"value": 50, "min": 40, "max": 60})
    tl.begin_next(0)
    old = tl.blocks[0]
    tl.blocks[0] = old.with_value("hz", 40)
    assert not tl.replan_after_set(0, old, under_way=True, ended=False)
    assert [st.cycle_index for st in tl.pending] == [1, 2, 3, 4, 5]
    assert {st.spec.hz for st in tl.pending} == {40}


def test_the_countdown_counts_the_contraction_then_the_rest(make_timeline):
    tl = make_timeline()
    step, _ = tl.begin_next(0)
    tl.rewind_windows()
    a, b = step.windows_us[0]
    tl.advance(a, lambda *e: None)
    contracting, left_us, elapsed_us = tl.countdown(a + 1_000, running=True)
    assert contracting and left_us == b - a - 1_000 and elapsed_us == a + 1_000
    tl.advance(b, lambda *e: None)
    contracting, left_us, _ = tl.countdown(b, running=True)
    assert not contracting and left_us == step.duration_us - b


# ------------------------------------------------------------------ intensity
def test_the_ramp_rises_at_its_rate_and_never_past_the_target(make_ramp):
    ramp, written = make_ramp()
    ramp.restart(0)
    ramp.set_target(0, 10.0)
    ramp.step(1 * US)
    assert ramp[0].set_ma == pytest.approx(INTENSITY_RISE_MA_PER_S)
    ramp.step(100 * US)
    assert ramp[0].set_ma == 10.0 and ramp[0].session_peak_ma == 10.0
    assert ramp[1].set_ma == 0.0 and all(ch == 0 for ch, _ in written)


def test_apply_never_writes_above_the_target_or_the_cap(make_ramp):
    ramp, written = make_ramp(caps=(20.0, 10.0))
    ramp.set_target(1, 50.0)        # the engine refuses above the cap; the ramp holds it anyway
    assert ramp.apply(1, 80.0) == 10.0 and written[-1] == (1, 10.0)
    ramp.set_target(0, 5.0)
    assert ramp.apply(0, 15.0) == 5.0


def test_zero_all_remembers_the_level_for_a_one_touch_return(make_ramp):
    ramp, _ = make_ramp()
    ramp.set_target(0, 12.0)
    ramp.apply(0, 8.0)
    ramp.zero_all()
    assert (ramp[0].target_ma, ramp[0].set_ma, ramp[0].previous_ma) == (0.0, 0.0, 12.0)
    ramp.set_target(0, 12.0)
    ramp.restore_rate(0)
    assert ramp[0].rise_ma_per_s == INTENSITY_RESTORE_MA_PER_S
    ramp.restart(0)
    ramp.step(1 * US)
    assert ramp[0].set_ma == pytest.approx(INTENSITY_RESTORE_MA_PER_S)
    ramp.step(100 * US)
    assert ramp[0].set_ma == 12.0
    ramp.step(101 * US)
    assert ramp[0].rise_ma_per_s == INTENSITY_RISE_MA_PER_S  # back to the normal rate once there


# ------------------------------------------------------------------ heartbeat
def test_the_tick_skips_missed_ticks_and_names_the_lapse():
    hb = Heartbeat(watchdog_ms=250)
    hb.restart(0)
    hb.beat(0)
    assert hb.due(0) and not hb.tick(0).near_miss and hb.next_tick_us == 100_000
    assert not hb.due(99_999)
    lapse = hb.tick(210_000)
    assert lapse.near_miss and not lapse.cut and lapse.gap_ms == 210
    assert hb.next_tick_us == 210_000            # late: the next tick is now, not a burst
    lapse = hb.tick(250_000)
    assert lapse.near_miss and lapse.cut
    hb.beat(250_000)
    assert not hb.tick(300_000).near_miss


# ------------------------------------------------------------------ contacts
def test_contact_changes_are_read_one_channel_at_a_time_and_reported_once():
    board = {0: True, 1: False}
    reads = []

    def read(ch):
        reads.append(ch)
        return board[ch]
    contacts = Contacts(["left", "right"])
    changes = contacts.changes(read)
    assert next(changes) == (1, False) and reads == [0, 1]   # lazily: channel 1 read only now
    assert list(changes) == [] and contacts.missing() == ["right"] and not contacts.all_ok
    assert list(contacts.changes(read)) == []                # no change, nothing reported
    board[1] = True
    assert list(contacts.changes(read)) == [(1, True)] and contacts.all_ok
    board[0] = False
    assert contacts.poll(read) == (False, True) and contacts.missing() == ["left"]


# ------------------------------------------------------------------ alerts
def test_an_alert_that_needs_ok_stays_until_acknowledged_and_others_end_with_the_session():
    desk = AlertDesk()
    desk.raise_alert(AlertKind.LEAD_OFF, detail="electrode contact lost", channel=1)
    desk.say(at_cap(0, "left", 40.0))
    assert desk.is_up(AlertKind.LEAD_OFF) and not desk.needs_ack
    desk.acknowledged()
    assert desk.is_up(AlertKind.LEAD_OFF) and desk.notice is None   # OK does not hide it
    desk.session_ended()
    assert desk.alert is None
    desk.raise_alert(AlertKind.ESTOP, detail="e-stop pressed", needs_ack=True)
    desk.session_ended()
    assert desk.needs_ack
    desk.clear(AlertKind.LEAD_OFF, AlertKind.WATCHDOG)
    assert desk.needs_ack
    desk.acknowledged()
    assert desk.alert is None


def test_notices_carry_their_kind_and_the_english_text():
    notice = at_cap(1, "right quadriceps", 40.0)
    assert notice.kind == NoticeKind.AT_CAP == "at_cap"
    assert notice.text == "40 mA is the most your prescription allows on right quadriceps"
    assert estop_pressed().kind == "estop_pressed"


def test_the_at_cap_notice_names_the_prescriptions_max_ma_and_the_screen_says_it():
    from homeapp.ui import i18n
    from homeapp.state import Notice
    from homeapp.ui.kind_texts import notice_text
    notice = at_cap(0, "left", 41.0)
    assert notice.params["max_ma"] == 41.0
    i18n.set_language("en")
    assert notice_text(notice).startswith("41 mA")
    # the screen reads max_ma, the prescription's name
    assert notice_text(Notice(NoticeKind.AT_CAP, {"max_ma": 41.0}, "x")).startswith("41 mA")


# ------------------------------------------------------------------ the log
def test_the_log_writes_session_time_and_contractions_in_seconds(make_log):
    log, store, clock = make_log()
    log.event("start")                       # before a session: nothing to attach it to
    store.start_session(session_id="s-1", prescription_id="rx", started_at=dt.datetime.now(dt.timezone.utc),
                        planned_contractions=1, channels=1)
    clock.advance_to(2.5)
    log.open(session_id="s-1", t0_us=log.now_us())
    clock.advance_to(3.0)
    log.event("pause", reason="patient")
    tally = ContractionTally(log, 1)
    tally.begin(0, 20, 5.0)
    tally.saw(0, 7.25)
    tally.end(0, 1_428_591, completed=True)
    tally.end(0, 2_000_000, completed=True)  # nothing open: nothing written
    log.close(status="completed", ended_at=dt.datetime.now(dt.timezone.utc))
    session = store.session("s-1")
    assert [(e["t"], e["kind"], e["detail"]) for e in session["events"]] == [(0.5, "pause", {"reason": "patient"})]
    assert tally.done == [1]
    exported = store.export()["sessions"][0]
    assert exported["channels"][0]["contractions"] == 1 and exported["channels"][0]["peak_ma"] == 7.25


# ------------------------------------------------------------------ start policy
def test_the_policy_admits_a_valid_prescription_on_a_ready_board(make_policy):
    policy, _ = make_policy()
    assert policy.refusals() == []


def test_the_policy_names_every_reason_with_its_kind(make_policy, sim):
    board, _ = sim
    board.press_estop()
    board.set_lead(1, False)
    policy, store = make_policy(rx_dict(supervision="caregiver"), program_error=ValueError("no fit"))
    reasons = policy.refusals()
    assert [r.kind for r in reasons] == [RefusalKind.CANNOT_RUN, RefusalKind.CAREGIVER,
                                         RefusalKind.ESTOP, RefusalKind.CONTACT]
    assert reasons[3].params == {"channel": 1, "label": "muscle 1"}
    assert policy.refusals(caregiver_unlocked=True)[1].kind == "estop"
    policy.record_refused(reasons)
    events = store.device_events()
    assert events[-1]["kind"] == "start_refused" and events[-1]["detail"]["reasons"] == list(reasons)


def test_the_policy_refuses_an_unsigned_prescription_without_a_trust_store(make_policy):
    policy, _ = make_policy(allow_unsigned=False)
    (reason,) = policy.refusals()
    assert reason.kind == RefusalKind.SIGNATURE and reason.params == {"why": "no trust store"}
