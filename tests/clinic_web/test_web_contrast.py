"""The pages' colours keep WCAG 2.2 AA contrast: text at least 4.5:1 on the background it
is drawn on, control borders at least 3:1 (read from clinic.css's own variables)."""
from __future__ import annotations

import re

from clinic.web.core import STATIC_DIR


def _vars() -> dict[str, str]:
    css = (STATIC_DIR / "clinic.css").read_text(encoding="utf-8")
    root = re.search(r":root\s*{([^}]*)}", css).group(1)
    return {k: v for k, v in re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", root)}


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_text_colours_on_their_backgrounds():
    v = _vars()
    white = "#ffffff"
    pairs = {  # text, background: as the stylesheet draws them
        "body text": (v["ink"], white), "muted text": (v["muted"], white), "muted on table heads": (v["muted"], v["soft"]),
        "links": (v["link"], white), "header": (v["head-ink"], v["head"]),
        "urgent flag": (v["bad"], v["bad-bg"]), "warning flag": (v["warn"], v["warn-bg"]),
        "information flag": (v["info"], v["info-bg"]), "good flag": (v["ok"], v["ok-bg"]),
        "alert figures": (v["bad"], white), "primary button": (white, v["head"]),
    }
    low = {name: round(contrast(*p), 2) for name, p in pairs.items() if contrast(*p) < 4.5}
    assert low == {}
    assert contrast(v["line"], white) >= 3.0          # input borders
    assert contrast(v["focus"], v["head"]) >= 3.0     # the focus ring on the header's buttons
    assert contrast("#1a1a1a", v["focus"]) >= 3.0     # and its dark inner ring on white pages
