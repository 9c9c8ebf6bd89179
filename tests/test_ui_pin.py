"""The PIN pads, for someone with poor eyesight: big dots for the digits typed, a wrong PIN
said large, bold and white on red, and every key of the caregiver's PIN pop-up whole and
touchable (none under Cancel), at 800 x 480 with the trainer's panel, in English and Swedish.

Real Kivy widgets under Xvfb, touches through the window."""
from __future__ import annotations

import os

import pytest

if not os.environ.get("DISPLAY"):
    pytest.skip("the touchscreen tests need a display (make test runs them under Xvfb)",
                allow_module_level=True)

from tests.uifit import inside, needed_size, overlap, problems, rect  # noqa: E402
from tests.uikit import ui  # noqa: E402,F401  (ui is a fixture)

pytestmark = pytest.mark.kivy


def luminance(rgba) -> float:
    def lin(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.fixture
def small(ui):
    size = tuple(ui.window.size)
    ui.window.size = (800, 480)
    ui.pump(0.2)
    yield ui
    ui.app.set_language("en")
    ui.window.size = size


def assert_readable_problem(hint, text):
    from homeapp.ui.widgets import Theme
    assert hint.text == text
    assert hint.font_size >= 28 and hint.bold
    assert hint._box_color.rgba == Theme.stop and tuple(hint.color) == tuple(Theme.text)
    assert contrast(hint.color, hint._box_color.rgba) >= 4.5     # large text, WCAG AA
    need_w, need_h = needed_size(hint)
    w, h = hint._box.size
    assert h >= need_h - 1 and w >= need_w - 1, "the red box holds every word"


def test_caregiver_pin_dots_are_big_and_a_wrong_pin_is_said_large(small):
    ui = small
    for lang, wrong in (("en", "Wrong PIN. Try again."), ("sv", "Fel PIN-kod. Försök igen.")):
        ui.app.set_language(lang)
        ui.app.go("caregiver")
        care = ui.app.screens["caregiver"]
        for k in "123":
            ui.tap(care.pad.buttons[k])
        dots = care.pad.dots.dot_rects
        assert len(dots) == 3 and all(w >= 24 and h >= 24 for _x, _y, w, h in dots), dots
        disp = rect(care.pad.display)
        for x, y, w, h in dots:
            assert inside((x, y, x + w, y + h), disp), "a dot is off its line"
        assert care.pad.display.text == ""                 # no digit is shown
        ui.tap(care.pad.buttons["ok"])
        assert not care.unlocked
        assert_readable_problem(care.hint, wrong)
        assert care.pad.dots.dot_rects == []                # the pad is empty again
        found = problems(ui.app.root_widget, ui.window)
        assert not found, "\n".join(found)
        ui.app.go("home")


def test_the_caregiver_pop_up_keys_are_whole_and_each_one_works(small):
    ui = small
    ui.tap(ui.app.screens["home"].start)
    prep = ui.app.screens["prepare"]
    for lang in ("en", "sv"):
        ui.app.set_language(lang)
        prep.ask_pin()
        ui.pump(0.2)
        view = prep.pin_view
        pad = view.pad
        win = (0, 0, ui.window.width, ui.window.height)
        cancel = rect(view.cancel)
        for key, b in pad.buttons.items():
            r = rect(b)
            assert b.width >= 60 and b.height >= 60, (key, b.size)
            assert inside(r, win) and not overlap(r, cancel), f"{key} is under Cancel or off screen"
        for k in "9870":
            ui.tap(pad.buttons[k])
        assert len(pad.dots.dot_rects) == 4
        ui.tap(pad.buttons["clear"])
        assert pad.dots.dot_rects == []
        for k in "1111":
            ui.tap(pad.buttons[k])
        ui.tap(pad.buttons["ok"])                           # 1111 is not the simulated board's PIN
        assert prep.pin_view is view and not ui.svc.caregiver_unlocked
        assert_readable_problem(view.problem, {"en": "Wrong PIN. Try again.",
                                               "sv": "Fel PIN-kod. Försök igen."}[lang])
        found = problems(view, ui.window)
        assert not found, "\n".join(found)
        ui.tap(view.cancel)
        assert prep.pin_view is None
    prep.ask_pin()
    ui.pump(0.1)
    for k in "0000":
        ui.tap(prep.pin_view.pad.buttons[k])
    ui.tap(prep.pin_view.pad.buttons["ok"])
    assert ui.svc.caregiver_unlocked and prep.pin_view is None
