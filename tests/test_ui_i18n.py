"""Translations and hard-coded texts of the touchscreen (no display needed)."""
from __future__ import annotations

import ast
import gettext
import re
import string
from pathlib import Path

import pytest

from homeapp.ui import i18n

UI_DIR = Path(i18n.__file__).parent
SCREEN_MODULES = sorted(p for p in UI_DIR.glob("*.py") if p.name not in ("screenshots.py", "testing.py"))
#: Literal texts a widget may show untranslated: symbols, units, digits.
ALLOWED_LITERALS = {"mA", "<", ">", "+", "\u2212", "OK", ""}


def msgids() -> set[str]:
    out = set()
    for path in SCREEN_MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("_", "f_", "N_") and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                out.add(node.args[0].value)
    return out


def fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_screen_text_is_in_the_catalogue(lang):
    po = i18n.parse_po(UI_DIR / "locale" / lang / "LC_MESSAGES" / "homeapp.po")
    missing = sorted(m for m in msgids() if not po.get(m))
    assert not missing, f"{lang}: untranslated: {missing}"
    for msgid, msgstr in po.items():
        if msgid:
            assert fields(msgid) == fields(msgstr), f"{lang}: placeholders differ in {msgid!r}"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_compiled_catalogue_matches_the_po(lang):
    folder = UI_DIR / "locale" / lang / "LC_MESSAGES"
    po = i18n.parse_po(folder / "homeapp.po")
    with open(folder / "homeapp.mo", "rb") as f:
        mo = gettext.GNUTranslations(f)
    for msgid, msgstr in po.items():
        if msgid:
            assert mo.gettext(msgid) == msgstr


def test_our_msgfmt_writes_what_gettext_reads(tmp_path):
    entries = {"": "Content-Type: text/plain; charset=UTF-8\n", "STOP": "STOPP", "Pause": "Pausa"}
    i18n.write_mo(entries, tmp_path / "x.mo")
    with open(tmp_path / "x.mo", "rb") as f:
        t = gettext.GNUTranslations(f)
    assert t.gettext("STOP") == "STOPP" and t.gettext("unknown") == "unknown"


def test_no_text_is_hard_coded_in_a_screen():
    """Widgets get their texts through _() / f_(): no English literal passed to a widget
    or assigned to `.text`."""
    offenders = []
    for path in SCREEN_MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            literal = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ("Text", "BigButton", "Label") and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                literal = node.args[0].value
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                    isinstance(node.value.value, str) and any(
                        isinstance(t, ast.Attribute) and t.attr == "text" for t in node.targets):
                literal = node.value.value
            if literal is not None and literal not in ALLOWED_LITERALS and re.search(r"[A-Za-z]{2}", literal):
                offenders.append(f"{path.name}:{node.lineno}: {literal!r}")
    assert not offenders, offenders


def test_swedish_and_back():
    try:
        i18n.set_language("sv")
        assert i18n._("STOP") == "STOPP"
        assert i18n.f_("Time left {t}", t="1:00") == "Tid kvar 1:00"
        assert i18n.number(2.5, 1) == "2,5"
        assert i18n.set_language("xx") == "en"
        assert i18n._("STOP") == "STOP"
    finally:
        i18n.set_language("en")


def test_placement_pictures_follow_the_channel_label():
    from homeapp.ui.placement import placement_for
    left = placement_for("left quadriceps")
    right = placement_for("Right quadriceps")
    assert left.key == right.key == "quadriceps" and left.view == "front"
    # Front view: the patient's left leg is on the viewer's right.
    assert left.pads[0][0] > 0.5 > right.pads[0][0]
    calf = placement_for("left calf")
    assert calf.view == "back" and calf.pads[0][0] < 0.5
    assert placement_for("target muscle") is None


def test_every_start_refusal_the_engine_gives_is_said_in_the_patients_words():
    """A refusal kind the touchscreen does not know reaches the patient as the log's English
    sentence, whatever the language: each kind the engine gives has its own text (in the
    one table of the engine's kinds, homeapp/ui/kind_texts.py)."""
    from homeapp.state import RefusalKind
    from homeapp.ui.kind_texts import REFUSAL_TEXTS
    kinds = set()
    for path in (Path(i18n.__file__).parents[1]).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Reason"
                    and len(node.args) >= 2):
                kind = node.args[1]
                if isinstance(kind, ast.Constant):
                    kinds.add(kind.value)
                elif isinstance(kind, ast.Attribute) and getattr(kind.value, "id", None) == "RefusalKind":
                    kinds.add(RefusalKind[kind.attr].value)
    assert "cannot_run" in kinds and "log" in kinds   # "log": Home's own check (start_check)
    missing = sorted(k for k in kinds if k not in REFUSAL_TEXTS)
    assert not missing, f"refusal kinds with no patient text: {missing}"
