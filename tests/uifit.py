"""Is anything a patient needs cut off? A check of what a screen shows, widget by widget.

For every label on screen (buttons are labels too) the text is laid out again, by itself,
at the label's width with no height limit and no shortening, and the height and width it
needs are compared with the box the label has: a label whose `text_size` fixes its height
renders a texture exactly that big and silently drops the lines that do not fit, so
comparing the texture with the box would never see the cut. Then: no text is shortened
with "...", every box lies inside the window and inside the layout that placed it, buttons
are at least 60 px both ways, and no two touch targets overlap.

Import only under a display (it measures text with Kivy's text provider)."""
from __future__ import annotations

from kivy.core.text import Label as CoreLabel
from kivy.core.text.markup import MarkupLabel
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.gridlayout import GridLayout
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView

#: Rounding of Kivy's layout: a box may miss by a pixel.
SLACK_PX = 1.5
MIN_TOUCH_PX = 60


def rect(w) -> tuple[float, float, float, float]:
    """The widget's box in window coordinates (x0, y0, x1, y1)."""
    x0, y0 = w.to_window(w.x, w.y)
    return x0, y0, x0 + w.width, y0 + w.height


def inside(inner, outer, slack=SLACK_PX) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack
            and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack)


def overlap(a, b, slack=SLACK_PX) -> bool:
    return a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack


def needed_size(label: Label) -> tuple[float, float]:
    """The size the label's whole text needs at the label's wrapping width."""
    opts = {k: getattr(label, k) for k in Label._font_properties}
    width = label.text_size[0] if label.text_size and label.text_size[0] else None
    opts.update(text_size=(width, None), shorten=False, max_lines=0)
    core = (MarkupLabel if label.markup else CoreLabel)(**opts)
    core.refresh()
    w, h = core.content_size
    return w, h


def _scrolled(w) -> bool:
    p, seen = w.parent, set()
    while p is not None and id(p) not in seen:      # the window is its own parent
        if isinstance(p, ScrollView):
            return True
        seen.add(id(p))
        p = p.parent
    return False


def _name(w) -> str:
    text = getattr(w, "text", "")
    return f"{type(w).__name__}({text[:50]!r})" if text else type(w).__name__


def problems(root, window, *, skip=()) -> list[str]:
    """What is cut, too small or off screen under `root` (empty when all is well).
    `skip`: widgets (and what they hold) not to judge."""
    win = (0, 0, window.width, window.height)
    out: list[str] = []
    targets = []
    skipped = set(map(id, skip))
    for w in root.walk(restrict=True):
        if id(w) in skipped or (w.parent is not None and id(w.parent) in skipped):
            skipped.add(id(w))
            continue
        if w.get_root_window() is None or w.opacity == 0 or w.width <= 0 or w.height <= 0:
            continue
        r = rect(w)
        scrolled = _scrolled(w)
        if not scrolled and not inside(r, win):
            out.append(f"{_name(w)} is outside the window: {tuple(round(v) for v in r)}")
        parent = w.parent
        if not scrolled and isinstance(parent, (BoxLayout, GridLayout)) and not inside(r, rect(parent)):
            out.append(f"{_name(w)} spills out of its {type(parent).__name__}: "
                       f"{tuple(round(v) for v in r)} in {tuple(round(v) for v in rect(parent))}")
        if isinstance(w, ButtonBehavior):
            targets.append((w, r))
            if w.width < MIN_TOUCH_PX - SLACK_PX or w.height < MIN_TOUCH_PX - SLACK_PX:
                out.append(f"{_name(w)} is {w.width:.0f} x {w.height:.0f} px, under {MIN_TOUCH_PX} px")
        if isinstance(w, Label) and w.text.strip():
            if w.shorten:
                out.append(f"{_name(w)} may be shortened with '...'")
            if scrolled:
                continue
            need_w, need_h = needed_size(w)
            if need_h > w.height + SLACK_PX or need_w > w.width + SLACK_PX:
                out.append(f"{_name(w)} needs {need_w:.0f} x {need_h:.0f} px, has {w.width:.0f} x {w.height:.0f}")
    for i, (a, ra) in enumerate(targets):
        for b, rb in targets[i + 1:]:
            if overlap(ra, rb):
                out.append(f"{_name(a)} and {_name(b)} overlap")
    return out
