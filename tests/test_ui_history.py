"""History for a patient: a touch on a calendar day shows that day's sessions, the weeks
count whole sessions (a part week its share, rounded up), the two channels' marks never
hide each other, and the day cells are 60 px or more at 800 x 480.

Real Kivy widgets under Xvfb, the app on the simulated board, touches through the window."""
from __future__ import annotations

import datetime as dt
import os
import re
from types import SimpleNamespace

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import UI  # noqa: E402
from tests.uifit import problems  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


def rx(starts_on, expires, per_week=5, per_day=1):
    return SimpleNamespace(starts_on=starts_on, expires=expires, sessions_per_week=per_week,
                           max_sessions_per_day=per_day)


def test_a_weeks_goal_is_whole_sessions_and_a_part_week_its_share_rounded_up():
    from homeapp.ui.history import week_goal
    fri = dt.date(2026, 11, 20)                                        # a Friday
    r = rx(fri, dt.date(2027, 2, 20))
    assert week_goal(r, fri) == (3, True)                              # 5 x 3/7 = 2.14 -> 3
    assert week_goal(r, dt.date(2026, 11, 23)) == (5, False)           # a whole week
    assert week_goal(rx(fri, dt.date(2026, 11, 24)), dt.date(2026, 11, 23)) == (2, True)   # ends Tue
    assert week_goal(rx(dt.date(2026, 11, 22), dt.date(2027, 1, 1), per_week=3), dt.date(2026, 11, 22)) == (1, True)
    assert week_goal(rx(dt.date(2026, 11, 22), dt.date(2027, 1, 1), per_week=14, per_day=1),
                     dt.date(2026, 11, 22)) == (1, True)               # never more than the days allow


def test_history_says_every_week_in_whole_sessions_and_why_a_part_week_owes_less(tmp_path):
    today = dt.date.today()
    # The program began the day before yesterday, so its first week (unless that is today's)
    # is a part week; the current week counts to its Sunday.
    u = UI(tmp_path, rx_changes={"issued": (today - dt.timedelta(days=9)).isoformat(),
                                 "valid_from": (today - dt.timedelta(days=9)).isoformat()})
    try:
        u.app.go("history")
        u.pump(0.2)
        hist = u.app.screens["history"]
        assert hist.bars.labels and all(re.fullmatch(r"\d+/\d+", t) for t in hist.bars.labels), hist.bars.labels
        goals = [g for _d, _done, g in hist.weeks]
        assert goals[-1] == 5                                           # this week: the whole week's goal
        first = u.svc.rx.starts_on
        if first.weekday() != 0:
            assert goals[0] == -(-5 * (7 - first.weekday()) // 7)       # its share, rounded up
            assert hist.bars_note.text == ("A week your program starts or ends in: its share of the "
                                           "sessions, rounded up.")
        u.app.set_language("sv")
        assert hist.bars_title.text == "Pass per vecka (linje: ditt mål)"
        u.app.set_language("en")
    finally:
        u.close()


def test_touching_a_day_shows_its_sessions_in_both_languages(ui):
    ui.window.size, size = (800, 480), tuple(ui.window.size)
    try:
        ui.start_session()
        ui.wait_until(lambda: ui.state.phase.value == "running")
        ui.tap(ui.screen.controls[0].plus)
        ui.wait_until(lambda: ui.state.channels[0].contractions_done >= 1, timeout=20, what="a contraction")
        ui.tap(ui.screen.stop_button)
        ui.wait_until(lambda: ui.app.current == "after", what="After")
        ui.app.skip_report()
        ui.pump(0.1)
        ui.app.go("history")
        ui.pump(0.2)
        hist = ui.app.screens["history"]
        session = ui.device.store.export()["sessions"][-1]
        day = dt.datetime.fromisoformat(session["started_at"]).astimezone().date()   # today, unless it crossed midnight
        cell = next(c for c in hist.calendar._cells if c.day == day)
        ui.tap(cell)
        view = hist.day_view
        assert view is not None and view.day == day
        logged = session["channels"]
        text = view.text.text
        assert "Session stopped" in text
        assert f"left quadriceps: {logged[0]['contractions']} of 6 contractions, up to 1 mA" in text
        assert f"right quadriceps: {logged[1]['contractions']} of 6 contractions, up to 0 mA" in text
        found = problems(view, ui.window)
        assert not found, "\n".join(found)
        ui.tap(view.close)
        assert hist.day_view is None
        ui.app.set_language("sv")
        ui.pump(0.3)   # the closed view gone, the screens drawn anew in the new language
        other = next(c for c in hist.calendar._cells if c.day is not None and c.day != day)
        ui.tap(other)
        assert hist.day_view.text.text == "Inget pass den här dagen."
        assert re.fullmatch(r"\w+dag \d+ \w+ \d{4}", hist.day_view.title.text), hist.day_view.title.text
        ui.tap(hist.day_view.close)
        ui.pump(0.3)   # until the closed view has gone: while it fades it still takes touches
        cell = next(c for c in hist.calendar._cells if c.day == day)
        ui.tap(cell)
        assert "Passet stoppades" in hist.day_view.text.text or "stopp" in hist.day_view.text.text.lower()
        ui.tap(hist.day_view.close)
    finally:
        ui.app.set_language("en")
        ui.window.size = size


def test_the_channels_marks_never_hide_each_other_nor_leave_the_chart():
    from homeapp.ui.chart import LineChart
    chart = LineChart(size=(300, 150), pos=(10, 20))
    same = [0.0, 40.0, 20.0, 40.0, 0.0]
    chart.set_data([same, list(same)])
    x0, y0, x1, y1 = chart.plot_rect
    for si, x, y in chart.dots:
        r = chart.mark_radius(si)
        assert x0 <= x - r and x + r <= x1 and y0 <= y - r and y + r <= y1, (si, x, y)
    first = {(round(x), round(y)) for si, x, y in chart.dots if si == 0}
    second = {(round(x), round(y)) for si, x, y in chart.dots if si == 1}
    assert first == second                               # the same values: the same places
    # ... and yet both show: the first channel's dot fits inside the hole of the second's ring.
    assert chart.DOT_R < chart.RING_R - chart.RING_W
    assert chart.LINE_W[0] > chart.LINE_W[1]             # the first line shows beside the second


@pytest.mark.parametrize("panel", [False, True], ids=["without-panel", "with-panel"])
def test_day_cells_are_60_px_at_800_x_480(tmp_path, panel):
    u = UI(tmp_path, config_extra={"device": {"show_trainer_panel": panel}})
    size = tuple(u.window.size)
    try:
        u.window.size = (800, 480)
        u.app.go("history")
        hist = u.app.screens["history"]
        for month in ((2027, 2), (2026, 12), (2027, 8)):      # 4, 5 and 6 weeks
            hist.month = month
            hist.refresh()
            u.pump(0.2)
            weeks = len(hist.calendar.children) // 7 - 1
            cells = [c for c in hist.calendar._cells if c.parent is not None]
            smallest = min(min(c.width, c.height) for c in cells)
            # Without the trainer's panel every month; with it (the simulated board only) the
            # months of five weeks or fewer: a six-week month's rows are 51 px there.
            if not panel or weeks <= 5:
                assert smallest >= 60, (month, smallest)
            else:
                assert smallest >= 50, (month, smallest)
            found = problems(u.app.root_widget, u.window, skip=[u.app.trainer] if panel else [])
            found = [f for f in found if not (panel and weeks > 5 and "under 60 px" in f)]
            assert not found, "\n".join(found)
    finally:
        u.window.size = size
        u.close()
