"""Home on the touchscreen: every reason a start is refused, said in plain words with START
greyed (the engine's own check), the e-stop said at once, the program's name whole, and
the week's circles laid out right the first time.

Real Kivy widgets under Xvfb, touches through the window, the simulated board, a real
SQLite log. With HOMEAPP_SHOTS=DIR the screens are saved there at 800 x 480 (EN and SV)."""
from __future__ import annotations

import datetime as dt
import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

import homeapp.store as store_mod  # noqa: E402
from tests.uitools import UI, shots, texts  # noqa: E402
from homeapp.ui.widgets import Dot  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


def _home(u):
    home = u.app.screens["home"]
    home.refresh()
    u.pump(0.1)
    return home


def _log_session(u, *, started_at, status="completed", ran_s=600):
    """A session of the current prescription in the log, as the engine writes one."""
    store = u.device.store
    sid = f"s-{started_at.timestamp():.0f}-{status}"
    store.save_prescription(u.svc.rx)
    store.start_session(session_id=sid, prescription_id=u.svc.rx.id, started_at=started_at,
                        planned_contractions=6, channels=2)
    store.end_session(sid, status=status, ended_at=started_at + dt.timedelta(seconds=ran_s))


@pytest.fixture
def noon(monkeypatch):
    """The device's wall clock held at noon today, local time (UTC): a session logged
    before it is today's whatever the hour the test runs, even just after midnight."""
    at = dt.datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0)
    at = at.astimezone(dt.timezone.utc)
    monkeypatch.setattr(store_mod, "now_utc", lambda: at)
    return at


def _refused(u, home, words):
    shown = texts(home)
    assert any(words in t for t in shown), shown
    assert home.start.disabled, "START is not greyed while the start is refused"


def test_a_prescription_valid_only_from_a_later_day_says_the_day(tmp_path):
    start = dt.date.today() + dt.timedelta(days=10)
    u = UI(tmp_path, rx_changes={"issued": dt.date.today().isoformat(), "valid_from": start.isoformat()})
    try:
        home = _home(u)
        _refused(u, home, f"Your program starts on {start.isoformat()}. No session before then.")
        # the engine refuses the same start, for the same reason
        assert [r.kind for r in u.svc.start_refusals()] == ["not_yet_valid"]
        shots(u, "home-not-yet-valid")
    finally:
        u.close()


def test_an_expired_prescription_says_so(ui, monkeypatch):
    expires = ui.svc.rx.expires
    later = dt.datetime.combine(expires + dt.timedelta(days=1), dt.time(12), tzinfo=dt.timezone.utc)
    monkeypatch.setattr(store_mod, "now_utc", lambda: later)     # the wall clock, past the end
    home = _home(ui)
    _refused(ui, home, f"Your program ended on {expires.isoformat()}. Ask your clinic for a new one.")


def test_the_days_sessions_used_says_tomorrow(tmp_path, noon):
    u = UI(tmp_path, rx_changes={"max_sessions_per_day": 1, "sessions_per_week": 7})
    try:
        _log_session(u, started_at=noon - dt.timedelta(minutes=20))
        home = _home(u)
        _refused(u, home, "Today's sessions are done (1 of 1). The next one may start tomorrow.")
        shots(u, "home-day-done")
    finally:
        u.close()


def test_the_weeks_sessions_used_says_monday(tmp_path, noon):
    u = UI(tmp_path, rx_changes={"max_sessions_per_day": 3, "sessions_per_week": 1})
    try:
        _log_session(u, started_at=noon - dt.timedelta(minutes=20))
        today = noon.astimezone().date()
        monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)
        home = _home(u)
        _refused(u, home, f"This week's sessions are done (1 of 1). The next one may start on Monday "
                          f"{monday.isoformat()}.")
    finally:
        u.close()


def test_too_soon_after_the_last_session_says_when(tmp_path, noon):
    u = UI(tmp_path, rx_changes={"min_hours_between": 4})
    try:
        last = noon - dt.timedelta(hours=1)         # on the minute: no rounding up
        _log_session(u, started_at=last)
        home = _home(u)
        shown = [t for t in texts(home) if t.startswith("Too soon after your last session.")]
        assert len(shown) == 1 and home.start.disabled, texts(home)
        next_at = (last + dt.timedelta(hours=4)).astimezone()
        assert next_at.strftime("%H:%M") in shown[0]
        shots(u, "home-too-soon")
    finally:
        u.close()


def test_no_prescription_greys_start_and_says_so(ui):
    ui.svc.rx = None
    home = _home(ui)
    _refused(ui, home, "No program on this device yet. Your clinic loads it.")


def test_a_log_that_cannot_be_written_greys_start(ui, monkeypatch):
    monkeypatch.setattr(store_mod, "MIN_FREE_BYTES", 1 << 60)     # more than any disk holds
    home = _home(ui)
    _refused(ui, home, "The trainer cannot write its log (its memory may be full). Call your clinic.")
    assert [r.kind for r in ui.svc.start_refusals()] == ["log"]


def test_the_estop_held_on_home_is_said_at_once_in_the_warning_area(ui):
    home = _home(ui)
    assert not home.start.disabled
    ui.tap(ui.app.trainer.estop)                        # press and hold the simulated e-stop
    ui.wait_until(lambda: home.start.disabled, timeout=3.0, what="START greyed by the e-stop")
    cards = [c.message.text for c in home.warn_box.children]
    assert "The emergency stop button is pressed. Turn it to release it." in cards
    assert "You cannot start now. See why below." in texts(home)
    shots(ui, "home-estop-held")
    ui.tap(ui.app.trainer.estop)                        # released
    ui.wait_until(lambda: not home.start.disabled, timeout=3.0, what="START back")
    assert not any("emergency stop" in c.message.text for c in home.warn_box.children)


def test_after_an_early_estop_abort_start_is_offered_again(tmp_path):
    u = UI(tmp_path, rx_changes={"max_sessions_per_day": 1, "sessions_per_week": 7})
    try:
        tp = u.app.trainer
        u.start_session()
        u.wait_until(lambda: u.state.phase.value == "running")
        u.tap(tp.estop)
        u.wait_until(lambda: u.app.overlay.showing and u.app.overlay.alert.kind.value == "estop")
        u.tap(tp.estop)                                 # released, then OK
        u.tap(u.app.overlay.ok)
        u.wait_until(lambda: u.app.current == "after", what="After")
        u.app.skip_report()
        u.wait_until(lambda: u.app.current == "home", what="Home")
        home = _home(u)
        assert u.device.store.export()["sessions"][-1]["status"] == "aborted"
        assert not home.start.disabled, texts(home)
        assert "Due: now" in texts(home)
        assert not any(c.message.text.startswith("Today's sessions") for c in home.warn_box.children)
    finally:
        u.close()


def test_the_program_name_wraps_instead_of_being_cut(ui):
    ui.app.load_demo()
    home = _home(ui)
    name = home.program
    assert name.text.startswith("DEMO: ") and "…" not in name.text
    assert not name.shorten
    line_h = name.font_size * 1.5
    assert name.texture_size[1] > line_h, "the whole name on one line would be cut at this width"
    assert name.texture_size[0] <= name.width and name.height >= name.texture_size[1]
    # the line under it starts below the name's last line
    assert home.duration.top <= name.y + 1


def test_the_week_circles_are_under_the_week_line_right_after_a_program_is_loaded(ui):
    ui.svc.rx = None                                    # a device with no program yet
    home = _home(ui)
    assert home.demo.parent is not None
    ui.tap(home.demo)                                   # Load DEMO program: no screen change
    ui.pump(0.2)
    assert ui.app.current == "home"
    assert home.week.text == "This week: 0 of 5 sessions"
    dots = [d for d in home.week_dots.children if isinstance(d, Dot)]
    assert len(dots) == 5
    week_bottom = home.week.to_window(*home.week.pos)[1]
    for d in dots:
        # where the circle is drawn, not only where the widget is
        x, y = d.to_window(*d._e.pos)
        w, h = d._e.size
        assert y + h <= week_bottom, f"a circle drawn at y {y}..{y + h} covers the week line at {week_bottom}"
        box_x, box_y = home.week_dots.to_window(*home.week_dots.pos)
        assert box_y <= y and y + h <= box_y + home.week_dots.height
    shots(ui, "home")


def test_many_messages_never_push_the_programs_lines_out_of_their_card(ui):
    """At 800 x 480 under the trainer's panel, the tightest case: an e-stop held and three
    warnings. The reason START is off is shown; what does not fit waits, and every line
    about the program stays inside its card."""
    from homeapp.ui.services import Warning_
    size = ui.window.size
    ui.window.size = (800, 480)
    try:
        ui.app.load_demo()
        plain = ui.svc.warnings
        ui.svc.warnings = lambda: plain() + [Warning_("rx_expiring", {"days": 3, "date": "-"}),
                                             Warning_("pads_old", {"n": 25})]
        home = _home(ui)
        ui.tap(ui.app.trainer.estop)
        ui.wait_until(lambda: home.start.disabled, timeout=3.0, what="START greyed by the e-stop")
        for lang in ("en", "sv"):
            ui.app.set_language(lang)
            ui.pump(0.2)
            cards = list(home.warn_box.children)
            assert cards and cards[-1].bg == home._refusal_cards[0].bg      # the red reason first
            info_bottom = home.info.y
            for w in home.info.children:
                if w.height:
                    assert home.info.y <= w.y and w.top <= home.info.top, (lang, w)
            for c in cards:
                assert c.top <= info_bottom, f"a message covers the program's card ({lang})"
            assert home.program.texture_size[1] <= home.program.height
        ui.app.set_language("en")
    finally:
        ui.window.size = size


def test_an_estop_still_held_when_home_comes_back_is_said_on_the_first_frame(tmp_path):
    u = UI(tmp_path, rx_changes={"max_sessions_per_day": 1, "sessions_per_week": 7})
    try:
        tp = u.app.trainer
        u.start_session()
        u.wait_until(lambda: u.state.phase.value == "running")
        u.tap(tp.estop)
        u.wait_until(lambda: u.app.overlay.showing and u.app.overlay.alert.kind.value == "estop")
        u.tap(tp.estop)                                 # released, OK, and pressed again
        u.tap(u.app.overlay.ok)
        u.wait_until(lambda: u.app.current == "after", what="After")
        u.tap(tp.estop)
        home = u.app.screens["home"]
        u.app.skip_report()                             # Home comes back ...
        assert u.app.current == "home"
        # ... and says it at once, before any second-by-second check has run
        assert home.start.disabled
        assert [c.message.text for c in home.warn_box.children][-1] == \
            "The emergency stop button is pressed. Turn it to release it."
    finally:
        u.close()


def test_a_program_that_needs_a_caregiver_says_so_and_leaves_start_on(tmp_path):
    """The caregiver unlocks the session in Preparation, the step after START: Home says it
    will be asked for, in amber, and does not grey START."""
    from homeapp.ui.widgets import Theme
    u = UI(tmp_path, rx_changes={"supervision": "caregiver"})
    try:
        home = _home(u)
        assert not home.start.disabled
        (card,) = [c for c in home.warn_box.children if c.message.text == "A caregiver must unlock this session."]
        assert card.bg == Theme.warn
        assert [r.kind for r in u.svc.start_refusals()] == ["caregiver"]     # the engine's reason
    finally:
        u.close()
