"""One rounding of an intensity wherever a person reads it (i18n.ma_text), and the screens
that show one use it: the clinic log on the touchscreen, the After summary, the session's
cap and way back. The log keeps full precision."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from homeapp.ui import i18n

UI_DIR = Path(i18n.__file__).parent


@pytest.fixture
def swedish():
    i18n.set_language("sv")
    yield
    i18n.set_language("en")


@pytest.mark.parametrize("ma,shown", [(3.979, "4"), (2.979, "3"), (4.0, "4"), (2.5, "3"), (3.5, "4"),
                                      (0.49, "0"), (0, "0"), (79.6, "80"), (12.4999, "12")])
def test_whole_ma_with_halves_up(ma, shown):
    assert i18n.ma_text(ma) == shown


def test_whole_ma_reads_the_same_in_swedish(swedish):
    assert i18n.ma_text(3.979) == "4" and i18n.ma_text(37.5) == "38"


def _formats_an_intensity(node: ast.AST) -> bool:
    """A format spec or number() call applied to something named *ma* (peak_ma, cap_ma ...)."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
            {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)} | \
            {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return any(n == "ma" or n.endswith("_ma") for n in names)


@pytest.mark.parametrize("screen", ["clinician.py", "after.py", "session.py", "caregiver.py",
                                    "history.py", "home.py", "alerts.py", "adjust.py"])
def test_no_screen_rounds_an_intensity_its_own_way(screen):
    """`f"{peak_ma:g}"`, `round(ma)`, `number(cap_ma)`: each would show 3.979 its own way."""
    tree = ast.parse((UI_DIR / screen).read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FormattedValue) and _formats_an_intensity(node.value):
            bad.append(ast.unparse(node.value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("round", "number") and node.args and _formats_an_intensity(node.args[0]):
            bad.append(ast.unparse(node))
    assert not bad, f"{screen} rounds intensities itself (use i18n.ma_text): {bad}"
