"""Screens refill their widgets instead of making them anew on every visit: a Kivy widget
made and dropped leaves native memory behind, so a device left on for months would grow
(the soak benchmark in `make bench` measures the memory; these tests pin the cause).
Real Kivy widgets under Xvfb on the simulated board."""
from __future__ import annotations

import datetime as dt
import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uitools import texts, write_rx  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (a fixture)

pytestmark = pytest.mark.kivy


def _widgets(root) -> set[int]:
    return {id(w) for w in root.walk()}


def test_history_calendar_keeps_its_cells_across_visits_and_months(ui):
    ui.app.go("history")
    ui.pump(0.05)
    hist = ui.app.screens["history"]
    first = [id(w) for w in hist.calendar.children]
    ui.app.go("home")
    ui.app.go("history")
    ui.pump(0.05)
    assert [id(w) for w in hist.calendar.children] == first
    day = ui.svc.today().day
    assert str(day) in texts(hist.calendar)
    hist.shift(-1)
    hist.shift(-1)
    ui.pump(0.05)
    assert {id(w) for w in hist.calendar.children} <= set(map(id, hist.calendar._names + hist.calendar._cells))


def test_history_calendar_shows_the_month_it_is_asked_for():
    from homeapp.ui.chart import MonthCalendar
    cal = MonthCalendar(["M", "T", "W", "T", "F", "S", "S"])
    cal.show(2027, 2, {3: "completed", 4: "stopped"}, dt.date(2027, 2, 10))   # Mon 1st: 4 weeks
    assert len(cal.children) == 7 + 28
    shown = [w.text for w in reversed(cal.children)]
    assert shown[7] == "1" and shown[-1] == "28"
    cells = {w.text: w for w in cal.children}
    assert cells["3"].bold and cells["3"].fill.rgba[3] > 0 and not cells["5"].bold
    assert cells["10"].fill.rgba[3] > 0 and cells["11"].fill.rgba[3] == 0     # today marked
    cal.show(2027, 8, {}, dt.date(2027, 2, 10))                              # Sun 1st: 6 weeks
    shown = [w.text for w in reversed(cal.children)]
    assert len(shown) == 7 + 42 and shown[7:14] == ["", "", "", "", "", "", "1"] and "31" in shown
    assert not any(w.bold for w in cal.children[:42])


def test_placement_pads_numbers_are_moved_not_remade():
    from homeapp.ui.placement import PlacementPicture
    pic = PlacementPicture("left quadriceps", 0, size=(150, 200))
    pic.size = (160, 200)
    tags = list(pic.children)
    for w in range(100, 200, 10):
        pic.size = (w, 200)
    assert len(tags) == 2 and pic.children == tags


def test_preparation_keeps_its_cards_for_the_same_channels_and_remakes_them_for_new_ones(ui, tmp_path):
    home = ui.app.screens["home"]
    ui.tap(home.start)
    cards = list(ui.app.screens["prepare"].cards)
    ui.app.cancel_preparation()
    ok, _ = ui.svc.import_prescription(write_rx(tmp_path / "usb2", id="rx-same-labels"))
    assert ok
    ui.tap(home.start)
    assert ui.app.screens["prepare"].cards == cards
    ui.app.cancel_preparation()
    ok, _ = ui.svc.import_prescription(write_rx(
        tmp_path / "usb3", id="rx-calves",
        channels=[{"label": "left calf", "max_ma": 6}, {"label": "right calf", "max_ma": 5}]))
    assert ok
    ui.tap(home.start)
    prep = ui.app.screens["prepare"]
    assert prep.cards != cards and [c.label for c in prep.cards] == ["left calf", "right calf"]


def test_home_warning_cards_are_refilled(ui):
    home = ui.app.screens["home"]
    ui.app.load_demo()
    home.refresh()
    first = list(home.warn_box.children)
    assert first
    for _ in range(5):
        home.refresh()
    assert home.warn_box.children == first


def test_clinic_tab_is_shown_again_unless_what_it_shows_changed(ui, tmp_path):
    ui.tap(ui.app.screens["home"].header_buttons.children[0])     # Clinic
    clin = ui.app.screens["clinician"]
    for k in ("0", "0", "0", "0", "ok"):
        ui.tap(clin.pad.buttons[k])
    before = _widgets(clin.content)
    clin.refresh()
    clin.show_tab("log")
    clin.show_tab("rx")
    assert _widgets(clin.content) == before
    stick = tmp_path / "stick"
    write_rx(stick, id="rx-new-0003")
    clin.extra_dirs = [str(stick)]
    clin.refresh()                                   # a stick appeared: the list is rebuilt
    names = {b.text.rsplit("/", 1)[-1]: b for b in clin.file_buttons}
    ui.tap(names["rx-new-0003.json"])
    ui.tap(clin.install_button)                      # after checking the summary
    assert "rx-new-0003" in texts(clin.content) and "Imported rx-new-0003." in clin.message.text
    ui.app.set_language("sv")
    assert "Ordination" in texts(clin) and any("Importera" in t or "USB" in t for t in texts(clin.content))
    ui.app.set_language("en")


def test_a_label_keeps_one_height_handler_however_often_it_is_resized():
    from homeapp.ui.widgets import Text
    t = Text("hello")
    n = len(t.get_property_observers("height"))
    for w in range(100, 300, 5):
        t.width = w
    assert len(t.get_property_observers("height")) == n
    t.height = 77
    assert list(t.text_size) == [t.width, 77]
