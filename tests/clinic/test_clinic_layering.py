"""The clinic and the device stay apart: the clinic never imports the session engine, the
board (`hw/`) or the touchscreen UI; nothing on the device imports `clinic/`."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(imports: str) -> set[str]:
    code = f"import sys; {imports}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_the_clinic_loads_neither_engine_nor_board_nor_ui():
    loaded = _loaded_after("import clinic.app, clinic.cli, clinic.service, clinic.ingest; "
                           "clinic.app.create_app; import clinic.api.device, clinic.api.clinician")
    forbidden = sorted(m for m in loaded if m in ("homeapp.engine", "homeapp.plan", "homeapp.runner", "homeapp.device",
                                                  "kivy", "pigpio", "gpiozero")
                       or m == "hw" or m.startswith(("hw.", "homeapp.ui", "kivy.")))
    assert forbidden == []


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_clinic_source_imports_engine_board_or_ui():
    bad = {}
    for path in (ROOT / "clinic").rglob("*.py"):
        hits = [n for n in _imported_names(path)
                if n.split(".")[0] in ("hw", "kivy", "pigpio", "gpiozero")
                or n.startswith(("homeapp.ui", "homeapp.engine", "homeapp.device", "homeapp.runner"))]
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}


def test_nothing_on_the_device_imports_the_clinic():
    bad = {}
    for package in ("homeapp", "hw", "schedules"):
        for path in (ROOT / package).rglob("*.py"):
            hits = [n for n in _imported_names(path) if n == "clinic" or n.startswith("clinic.")]
            if hits:
                bad[str(path.relative_to(ROOT))] = hits
    assert bad == {}
    loaded = _loaded_after("import homeapp.cli; homeapp.cli.build_parser()")
    assert sorted(m for m in loaded if m == "clinic" or m.startswith("clinic.")) == []
