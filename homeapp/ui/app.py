"""Placeholder touchscreen app until the real one (issue 6) lands: it opens a window that
says so and exits cleanly when closed, so `make run` never fails."""
from __future__ import annotations


def main(config_path: str | None = None) -> int:
    from kivy.app import App
    from kivy.uix.label import Label

    class Placeholder(App):
        def build(self):
            return Label(text="Home NMES trainer\n(the session screens are being built)",
                         font_size="32sp", halign="center")

    Placeholder().run()
    return 0
