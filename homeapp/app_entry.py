"""Starting the touchscreen app (kept apart so the command line never imports Kivy)."""
from __future__ import annotations

import argparse


def run_app(args: argparse.Namespace) -> int:
    from .ui.app import main as ui_main  # Kivy is imported only here
    return ui_main(config_path=args.config)
