"""Translations for the touchscreen (gettext, domain ``homeapp``).

Every text a screen shows goes through ``_()``. The catalogues live in
``homeapp/ui/locale/<lang>/LC_MESSAGES/homeapp.po``; the compiled ``.mo`` files are
committed beside them and rebuilt here from the ``.po`` whenever the ``.mo`` is missing or
older (a small msgfmt for the subset of the format we use: no plurals, no contexts).

Screens re-read their texts on a language change: the app calls ``refresh()`` on every
screen after ``set_language``.

Adding a text: write it as ``_("...")`` (or ``f_("... {name}", name=...)``, or ``N_()``
where it is defined apart from where it is shown), then, in ``homeapp/ui``::

    xgettext -L Python -k_ -kf_ -kN_ --from-code=UTF-8 --no-location -o /tmp/homeapp.pot *.py
    msgmerge -U locale/sv/LC_MESSAGES/homeapp.po /tmp/homeapp.pot   # and en
    # translate the new entries, then
    msgfmt -o locale/sv/LC_MESSAGES/homeapp.mo locale/sv/LC_MESSAGES/homeapp.po

``tests/test_ui_i18n.py`` fails while any screen text lacks a translation.
"""
from __future__ import annotations

import ast
import gettext
import logging
import math
import struct
from pathlib import Path

log = logging.getLogger(__name__)

DOMAIN = "homeapp"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "sv")
#: What the language button says, in the language itself.
LANGUAGE_NAMES = {"en": "English", "sv": "Svenska"}

_current = "en"
_translation: gettext.NullTranslations = gettext.NullTranslations()


def parse_po(path: Path) -> dict[str, str]:
    """msgid -> msgstr for every entry of a .po file (the header included under "")."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    target = None
    fuzzy = False

    def flush():
        nonlocal msgid, msgstr, fuzzy
        if msgid is not None and msgstr is not None and not fuzzy:
            entries["".join(msgid)] = "".join(msgstr)
        msgid = msgstr = None
        fuzzy = False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#,") and "fuzzy" in line:
            flush()
            fuzzy = True
            continue
        if not line or line.startswith("#"):
            if not line:
                flush()
            continue
        if line.startswith("msgid "):
            if msgstr is not None:
                flush()
            msgid = [ast.literal_eval(line[6:])]
            target = msgid
        elif line.startswith("msgstr "):
            msgstr = [ast.literal_eval(line[7:])]
            target = msgstr
        elif line.startswith('"') and target is not None:
            target.append(ast.literal_eval(line))
    flush()
    return entries


def write_mo(entries: dict[str, str], path: Path) -> None:
    """Write a GNU .mo file (the layout msgfmt produces, without a hash table)."""
    keys = sorted(entries)
    ids = b""
    strs = b""
    offsets = []
    for k in keys:
        kb, vb = k.encode("utf-8"), entries[k].encode("utf-8")
        offsets.append((len(ids), len(kb), len(strs), len(vb)))
        ids += kb + b"\0"
        strs += vb + b"\0"
    n = len(keys)
    keystart = 7 * 4 + 16 * n
    valuestart = keystart + len(ids)
    koffsets, voffsets = [], []
    for o1, l1, o2, l2 in offsets:
        koffsets += [l1, o1 + keystart]
        voffsets += [l2, o2 + valuestart]
    out = struct.pack("Iiiiiii", 0x950412DE, 0, n, 7 * 4, 7 * 4 + n * 8, 0, 0)
    out += struct.pack(f"{len(koffsets)}i", *koffsets)
    out += struct.pack(f"{len(voffsets)}i", *voffsets)
    out += ids + strs
    path.write_bytes(out)


def compile_catalogues(force: bool = False) -> None:
    for lang in LANGUAGES:
        po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        mo = po.with_suffix(".mo")
        if not po.exists():
            continue
        if force or not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            try:
                write_mo(parse_po(po), mo)
            except OSError as e:  # a read-only install: use what is there
                log.warning("cannot write %s: %s", mo, e)


def set_language(lang: str) -> str:
    """Switch every later ``_()`` to ``lang`` (unknown languages fall back to English)."""
    global _current, _translation
    if lang not in LANGUAGES:
        log.warning("unknown language %r, using English", lang)
        lang = "en"
    compile_catalogues()
    try:
        _translation = gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang])
    except OSError:
        log.warning("no catalogue for %s, showing English", lang)
        _translation = gettext.NullTranslations()
    _current = lang
    return lang


def language() -> str:
    return _current


def _(text: str) -> str:
    return _translation.gettext(text)


def N_(text: str) -> str:
    """Marks a text for translation where it is defined; ``_()`` translates it where shown."""
    return text


def f_(text: str, **params) -> str:
    """Translate, then fill ``{name}`` fields (the translator may reorder them)."""
    return _translation.gettext(text).format(**params)


def number(x: float, digits: int = 0) -> str:
    """A number as this language writes it (Swedish uses a decimal comma)."""
    s = f"{x:.{digits}f}"
    return s.replace(".", ",") if _current == "sv" else s


def ma_text(ma: float) -> str:
    """An intensity as a person reads it anywhere on the device: whole mA, halves rounded up
    (3.979 -> "4", 2.5 -> "3"), as the session screen's one-mA steps showed it. The log and
    the export keep the full precision; only what is shown is rounded, and only here."""
    return number(math.floor(float(ma) + 0.5), 0)
