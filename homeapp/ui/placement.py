"""Electrode placement pictures, drawn with Kivy canvas instructions (no image files).

A simple body figure (front or back view) is zoomed onto the muscle named in the
channel's label ("left quadriceps", "right calf", ...), with the two pads of that channel
drawn in the channel's colour. Coordinates are in a body frame 1 wide and 2 high, y up;
the patient's left is on the viewer's right in the front view and on the viewer's left
in the back view.
"""
from __future__ import annotations

from dataclasses import dataclass

from kivy.graphics import Color, Ellipse, Line, Rectangle, RoundedRectangle
from kivy.uix.label import Label
from kivy.uix.stencilview import StencilView

from .widgets import Theme, rgb

SKIN = rgb("#8D9BB5")
OUTLINE = rgb("#E8EDF5")

# The body, as rounded boxes (x0, y0, x1, y1) in the body frame, mirrored left/right.
_HEAD = (0.5, 1.84, 0.12)                           # centre x, centre y, radius
_TORSO = (0.30, 1.05, 0.70, 1.68)
_NECK = (0.45, 1.66, 0.55, 1.74)
_UPPER_ARM_R = (0.17, 1.33, 0.29, 1.66)           # viewer's left
_FOREARM_R = (0.16, 0.98, 0.27, 1.33)
_THIGH_R = (0.31, 0.56, 0.485, 1.08)
_SHANK_R = (0.33, 0.10, 0.47, 0.56)
_FOOT_R = (0.29, 0.03, 0.47, 0.10)


def _mirror(box):
    x0, y0, x1, y1 = box
    return (1 - x1, y0, 1 - x0, y1)


@dataclass(frozen=True)
class Placement:
    key: str                 # which muscle (a translatable name is looked up by the UI)
    view: str                # "front" or "back"
    side: str                # "left", "right" or "" (midline)
    pads: tuple              # two boxes in the body frame, on the viewer's-left limb
    window: tuple            # the part of the body frame to show


# Pads are given for the limb on the viewer's left; `side` decides whether to mirror.
_PLACEMENTS = {
    "quadriceps": ("front", ((0.34, 0.90, 0.45, 1.01), (0.335, 0.62, 0.445, 0.73)), (0.05, 0.3, 0.95, 1.4)),
    "hamstrings": ("back", ((0.34, 0.88, 0.45, 0.99), (0.34, 0.62, 0.45, 0.73)), (0.05, 0.3, 0.95, 1.4)),
    "calf": ("back", ((0.35, 0.40, 0.45, 0.50), (0.355, 0.20, 0.445, 0.30)), (0.05, 0.0, 0.95, 1.0)),
    "tibialis": ("front", ((0.35, 0.40, 0.45, 0.50), (0.355, 0.20, 0.445, 0.30)), (0.05, 0.0, 0.95, 1.0)),
    "gluteus": ("back", ((0.32, 1.10, 0.45, 1.22), (0.32, 0.95, 0.45, 1.06)), (0.1, 0.75, 0.9, 1.4)),
    "biceps": ("front", ((0.18, 1.52, 0.28, 1.62), (0.18, 1.37, 0.28, 1.47)), (0.0, 0.9, 0.6, 1.75)),
    "triceps": ("back", ((0.18, 1.52, 0.28, 1.62), (0.18, 1.37, 0.28, 1.47)), (0.0, 0.9, 0.6, 1.75)),
    "forearm": ("back", ((0.17, 1.20, 0.26, 1.29), (0.17, 1.04, 0.26, 1.13)), (0.0, 0.85, 0.6, 1.5)),
    "deltoid": ("front", ((0.19, 1.58, 0.29, 1.67), (0.31, 1.55, 0.40, 1.64)), (0.0, 1.2, 0.7, 2.0)),
    "abdominals": ("front", ((0.36, 1.30, 0.47, 1.42), (0.36, 1.12, 0.47, 1.24)), (0.15, 0.95, 0.85, 1.75)),
    "lower back": ("back", ((0.36, 1.22, 0.47, 1.34), (0.36, 1.08, 0.47, 1.20)), (0.15, 0.95, 0.85, 1.75)),
}

_KEYWORDS = (
    ("quadriceps", ("quadriceps", "quads", "quad", "front of thigh", "vastus", "lårmuskel", "quadriceps")),
    ("hamstrings", ("hamstring", "back of thigh", "baksida lår")),
    ("calf", ("calf", "calves", "gastrocnemius", "soleus", "vad")),
    ("tibialis", ("tibialis", "shin", "dorsiflex", "foot drop", "smalben")),
    ("gluteus", ("glute", "buttock", "gluteus", "säte")),
    ("biceps", ("biceps",)),
    ("triceps", ("triceps",)),
    ("forearm", ("forearm", "wrist", "extensor", "flexor", "underarm")),
    ("deltoid", ("deltoid", "shoulder", "axel")),
    ("abdominals", ("abdom", "core", "belly", "mage")),
    ("lower back", ("lower back", "lumbar", "paraspinal", "erector", "ländrygg")),
)


def placement_for(label: str) -> Placement | None:
    """The placement a channel label names, or None when it names no muscle we draw."""
    low = label.lower()
    key = next((k for k, words in _KEYWORDS if any(w in low for w in words)), None)
    if key is None:
        return None
    view, pads, window = _PLACEMENTS[key]
    side = "right" if ("right" in low or "höger" in low) else "left" if ("left" in low or "vänster" in low) else ""
    if key in ("abdominals", "lower back") and not side:
        side = ""
    elif not side:
        side = "left"
    # Which limb on screen: front view shows the patient's right on the viewer's left.
    viewer_left = (side == "right") if view == "front" else (side == "left")
    if side and not viewer_left:
        pads = tuple(_mirror(p) for p in pads)
        window = _mirror(window)
    elif not side:  # midline: one pad either side of the middle
        pads = (pads[0], _mirror(pads[1]))
    return Placement(key, view, side, pads, window)


class PlacementPicture(StencilView):
    """The body zoomed onto one channel's placement, its two pads in the channel colour."""

    def __init__(self, label: str, channel: int, **kw):
        super().__init__(**kw)
        self.label = label
        self.channel = channel
        self.placement = placement_for(label)
        self.bind(pos=self._draw, size=self._draw)
        self._tags: list[Label] = []

    def _frame(self) -> tuple[float, float, float]:
        """(scale, x, y of the body frame's origin): the placement's window of the body,
        as large as the widget holds it whole, centred."""
        p = self.placement
        wx0, wy0, wx1, wy1 = p.window if p else (0.0, 0.0, 1.0, 2.0)
        s = min(self.width / (wx1 - wx0), self.height / (wy1 - wy0))
        ox = self.x + (self.width - s * (wx1 - wx0)) / 2 - wx0 * s
        oy = self.y + (self.height - s * (wy1 - wy0)) / 2 - wy0 * s
        return s, ox, oy

    def drawn_rect(self) -> tuple[float, float, float, float]:
        """Where the placement's window of the body is drawn (x0, y0, x1, y1)."""
        p = self.placement
        wx0, wy0, wx1, wy1 = p.window if p else (0.0, 0.0, 1.0, 2.0)
        s, ox, oy = self._frame()
        return ox + wx0 * s, oy + wy0 * s, ox + wx1 * s, oy + wy1 * s

    def _draw(self, *_):
        self.canvas.clear()
        p = self.placement
        s, ox, oy = self._frame()

        def box(b):
            x0, y0, x1, y1 = b
            return (ox + x0 * s, oy + y0 * s), ((x1 - x0) * s, (y1 - y0) * s)

        with self.canvas:
            Color(*Theme.card_hi)
            Rectangle(pos=self.pos, size=self.size)
            parts = [_TORSO, _NECK, _UPPER_ARM_R, _FOREARM_R, _THIGH_R, _SHANK_R, _FOOT_R,
                     _mirror(_UPPER_ARM_R), _mirror(_FOREARM_R), _mirror(_THIGH_R),
                     _mirror(_SHANK_R), _mirror(_FOOT_R)]
            for b in parts:
                pos, size = box(b)
                Color(*SKIN)
                RoundedRectangle(pos=pos, size=size, radius=[0.05 * s])
                Color(*OUTLINE)
                Line(rounded_rectangle=(*pos, *size, 0.05 * s), width=1.2)
            cx, cy, r = _HEAD
            Color(*SKIN)
            Ellipse(pos=(ox + (cx - r) * s, oy + (cy - r) * s), size=(2 * r * s, 2 * r * s))
            Color(*OUTLINE)
            Line(circle=(ox + cx * s, oy + cy * s, r * s), width=1.2)
            if p and p.view == "front":   # a face shows which way the figure looks
                Color(*Theme.bg)
                Ellipse(pos=(ox + (cx - 0.05) * s, oy + (cy + 0.02) * s), size=(0.03 * s, 0.03 * s))
                Ellipse(pos=(ox + (cx + 0.02) * s, oy + (cy + 0.02) * s), size=(0.03 * s, 0.03 * s))
                Line(points=[ox + (cx - 0.04) * s, oy + (cy - 0.05) * s, ox + (cx + 0.04) * s, oy + (cy - 0.05) * s], width=1.5)
            if p:
                col = Theme.channel[self.channel % 2]
                centres = []
                for b in p.pads:
                    pos, size = box(b)
                    Color(*col)
                    RoundedRectangle(pos=pos, size=size, radius=[0.015 * s])
                    Color(0, 0, 0, 1)
                    Line(rounded_rectangle=(*pos, *size, 0.015 * s), width=2)
                    centres.append((pos[0] + size[0] / 2, pos[1] + size[1] / 2))
        if p:
            # The pad numbers are made once and moved on each redraw: a label made anew on
            # every layout pass leaves native memory behind.
            while len(self._tags) < len(centres):
                t = Label(text=str(self.channel + 1), bold=True, color=(0, 0, 0, 1), size=(30, 30))
                self.add_widget(t)
                self._tags.append(t)
            for t, (x, y) in zip(self._tags, centres):
                t.font_size = max(16, int(0.06 * s))
                t.center = (x, y)
