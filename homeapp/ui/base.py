"""The screen base class: a background, a header with a title and optional buttons, and
the hooks the app calls (`refresh` on a language change, `render` with engine state)."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import Screen

from .i18n import N_, _
from .widgets import BigButton, Text, Theme, paint_background

HEADER_H = 68


class BaseScreen(Screen):
    title_msg = ""          # the English msgid of the title
    back_to: str | None = None

    def __init__(self, app, **kw):
        self.app = app
        super().__init__(**kw)
        paint_background(self)
        self.root_box = BoxLayout(orientation="vertical", padding=(10, 6, 10, 10), spacing=8)
        self.add_widget(self.root_box)
        self.header = BoxLayout(size_hint_y=None, height=HEADER_H, spacing=8)
        self.title = Text("", size=Theme.font_large, bold=True)
        self.header.add_widget(self.title)
        self.header_buttons = BoxLayout(size_hint_x=None, spacing=8)
        self.header.add_widget(self.header_buttons)
        self.root_box.add_widget(self.header)
        self.body = BoxLayout(orientation="vertical", spacing=8)
        self.root_box.add_widget(self.body)
        self.back_button = None
        if self.back_to:
            self.back_button = self.add_header_button(N_("Back"), lambda *_: self.app.go(self.back_to))
        self.build()

    def add_header_button(self, msgid: str, callback, width: int = 130, bg=None) -> BigButton:
        b = BigButton("", bg=bg or Theme.card_hi, size=Theme.font_body, size_hint_x=None, width=width)
        b.msgid = msgid
        b.bind(on_release=callback)
        self.header_buttons.add_widget(b)
        self.header_buttons.width = sum(c.width for c in self.header_buttons.children) + 8 * (
            len(self.header_buttons.children) - 1)
        return b

    def build(self) -> None:
        """Create the widgets (once)."""

    def refresh(self) -> None:
        """Re-read every text (language change, new data)."""
        self.title.text = _(self.title_msg) if self.title_msg else ""
        for b in self.header_buttons.children:
            if getattr(b, "msgid", None):
                b.text = _(b.msgid)

    def render(self, state) -> None:
        """Show an engine state snapshot (called at 20 Hz while this screen is shown)."""

    def on_pre_enter(self, *args):
        self.refresh()
