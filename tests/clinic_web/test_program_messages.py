"""The validator's messages on the Swedish program editor: each in Swedish by the
catalogue of clinic/web/program_messages.py, keyed by the validator's own templates; a
message with no Swedish text is shown in English with a visible marker. The first test
lists every message schedules/validate.py can write that has no Swedish text."""
from __future__ import annotations

import ast
import html
import itertools
from pathlib import Path

import schedules.validate
from clinic.web import program_messages
from clinic.web.core import LANG_COOKIE
from schedules.validate import check_prescription

from .test_program_pages import form_of, site  # noqa: F401  (the fixture)

SAMPLE = "X"


def _variants(node: ast.AST, names: dict[str, list[str]] | None = None) -> list[str]:
    """Every text an expression of literal parts can make, with SAMPLE for each value
    (a name assigned only literal texts, `which = "device limit" if device else "limit"`,
    stands for each of them)."""
    names = names or {}
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = [_variants(v, names) for v in node.values]
        return ["".join(p) for p in itertools.product(*parts)]
    if isinstance(node, ast.FormattedValue):
        inner = node.value
        return _variants(inner, names) if isinstance(inner, (ast.IfExp, ast.Name)) else [SAMPLE]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [a + b for a in _variants(node.left, names) for b in _variants(node.right, names)]
    if isinstance(node, ast.IfExp):
        return _variants(node.body, names) + _variants(node.orelse, names)
    return [SAMPLE]


def validator_messages() -> list[str]:
    """The messages of every `p.add(PATH, TEXT)` in schedules/validate.py, values as SAMPLE."""
    tree = ast.parse(Path(schedules.validate.__file__).read_text(encoding="utf-8"))
    names = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.IfExp)):
            texts = _variants(node.value)
            if SAMPLE not in texts:
                names[node.targets[0].id] = texts
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "p" and len(node.args) == 2):
            used = sorted({n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name) and n.id in names})
            for choice in itertools.product(*(names[n] for n in used)):   # one value per name per message
                out.extend(_variants(node.args[1], {n: [c] for n, c in zip(used, choice)}))
    return out


def test_every_message_the_validator_writes_has_a_swedish_text():
    messages = validator_messages()
    assert len(messages) >= 40     # the walk finds the validator's messages
    lacking = [m for m in messages if program_messages.translate_text(m, "sv") is None]
    assert lacking == [], "validator messages without a Swedish text:\n" + "\n".join(lacking)


def test_messages_of_real_refusals_read_in_swedish():
    bad = {"format": "homeapp.prescription/1", "id": "rx-1", "patient_id": "UNASSIGNED", "clinician_id": "c",
           "issued": "2026-02-30", "expires": "2026-01-01", "sessions_per_week": 30, "max_sessions_per_day": 1,
           "min_hours_between": 0, "supervision": "nobody", "colour": "red",
           "channels": [{"label": "left", "max_ma": 900}],
           "blocks": [{"label": "b", "minutes": 70, "hz": 1000, "pulse_us": 300, "on_s": {"value": 3, "min": 5,
                                                                                         "max": 4},
                       "off_s": 5, "ramp_up_s": 2, "ramp_down_s": 2, "pattern": "alternating"}]}
    lines = check_prescription(bad)
    assert len(lines) >= 8
    assert program_messages.untranslated(lines, "sv") == []
    swedish = [program_messages.translate(line, "sv") for line in lines]
    text = "\n".join(swedish)
    assert "är över enhetens gräns 150 (tillåtet 1 till 150 Hz)" in text, text
    assert "okänt fält" in text and "är en platshållare" in text and "är inte något av" in text
    assert not any(m.untranslated for m in swedish)
    # the values typed stay as typed; the path (the format's own name) stays
    assert any(m.startswith("blocks[0].hz: 1000 ") for m in swedish)


def test_the_swedish_editor_shows_the_messages_in_swedish_and_marks_an_untranslated_one(site, monkeypatch):
    client, clinic, private = site
    client.cookies.set(LANG_COOKIE, "sv")
    page = client.get("/patients/P-1/program?start=preset&preset=circulation").text
    form = form_of(page)
    form["channels-0-max_ma"] = "900"
    form["issued"] = "2026-13-01"
    r = client.post("/patients/P-1/program", data=form)
    assert r.status_code == 422
    body = html.unescape(r.text)
    assert "är över enhetens gräns" in body and "är inte ett datum (väntat ÅÅÅÅ-MM-DD)" in body
    assert "is above the device limit" not in body and "is not a date" not in body
    assert 'class="untranslated"' not in r.text
    # a message the catalogue does not know: English, marked
    monkeypatch.setattr(program_messages, "_COMPILED",
                        [(p, t) for p, t in program_messages._COMPILED if "enhetens gräns" not in t])
    body = html.unescape(client.post("/patients/P-1/program", data=form).text)
    assert "is above the device limit of 100" in body
    assert '<li lang="en">channels[0].max_ma: 900 is above the device limit' in body
    assert "(inte översatt än: på engelska)" in body
    # in English nothing is marked
    client.cookies.set(LANG_COOKIE, "en")
    assert "untranslated" not in client.post("/patients/P-1/program", data=form).text
