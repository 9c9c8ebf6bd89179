"""The pure core stays pure (design.md): the engine and the prescription model import
neither Kivy nor pigpio nor gpiozero, so they are tested fast and alone."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["homeapp.engine", "homeapp.plan", "homeapp.runner",
                                    "schedules.validate", "schedules.adherence",
                                    "schedules.presets", "hw.waveform", "homeapp.cli"])
def test_pure_modules_import_neither_kivy_nor_pigpio(module):
    code = (f"import sys, {module}; "
            "bad = sorted(m for m in ('kivy', 'pigpio', 'gpiozero') if m in sys.modules); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
