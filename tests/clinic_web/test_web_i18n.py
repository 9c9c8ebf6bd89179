"""Every text the clinician's pages translate has its Swedish entry (a missing one would
show English in the middle of a Swedish page)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import clinic.web  # noqa: F401  (imports every page module: their entries are added)
from clinic.web import i18n
from clinic.web.patients import COLUMNS

WEB = Path(clinic.web.__file__).parent


def _texts_in_python(path: Path) -> set[str]:
    """First arguments of `_(...)`, the texts of `_plural(_, n, one, many)`, and the tuples
    of texts a page picks from before translating."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if node.func.id == "_" and args:
                out.add(args[0])
            elif node.func.id == "_plural":
                out.update(args)
        elif isinstance(node, ast.Tuple) and node.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) and "{" in e.value for e in node.elts):
            out.update(e.value for e in node.elts)
    return out


def _texts_in_templates() -> set[str]:
    out: set[str] = set()
    for path in (WEB / "templates").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        out.update(re.findall(r'_\("((?:[^"\\]|\\.)*)"', text))
        out.update(re.findall(r"_\('((?:[^'\\]|\\.)*)'", text))
    return out


def test_every_translated_text_has_a_swedish_entry():
    texts = _texts_in_templates() | {heading for _, heading in COLUMNS}
    for path in WEB.glob("*.py"):
        texts |= _texts_in_python(path)
    texts = {t for t in texts if t.strip()}
    assert len(texts) > 120
    assert i18n.missing("sv", sorted(texts)) == []


def test_a_text_cannot_get_two_swedish_words():
    import pytest
    with pytest.raises(ValueError, match="already translated"):
        i18n.add("sv", {"Patients": "Kunder"})
    assert i18n.gettext("sv", "Patients") == "Patienter"
    assert i18n.gettext("sv", "{shown} of {total} patients", shown=3, total=9) == "3 av 9 patienter"
    assert i18n.gettext("sv", "a text nobody translated") == "a text nobody translated"
