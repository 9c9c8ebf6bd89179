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


# ---------------------------------------------------------------- the import graph, statically
# Read from the source (every import statement, at any depth in a file), so an import
# inside a function counts as much as one at the top.
import ast  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OURS = ("homeapp", "hw", "schedules", "clinic")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` names in an import (`from a import b` names a and a.b)."""
    me = _module(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in OURS if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")]
    return {_module(p): _imports(p) for p in files}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module `start` imports, directly or through our own modules."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for name in graph.get(todo.pop(), ()):
            if name not in seen:
                seen.add(name)
                if name in graph:
                    todo.append(name)
    return seen


def _is(name: str, *roots: str) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


def test_schedules_imports_nothing_of_ours():
    graph = _graph()
    bad = {m: sorted(i for i in imps if _is(i, "homeapp", "hw", "clinic"))
           for m, imps in graph.items() if _is(m, "schedules")}
    assert not {m: b for m, b in bad.items() if b}


@pytest.mark.parametrize("module", ["homeapp.engine", "homeapp.plan", "homeapp.state"])
def test_the_engine_reaches_neither_kivy_nor_pigpio_nor_the_driver(module):
    reach = _reachable(_graph(), module)
    bad = sorted(i for i in reach if _is(i, "kivy", "pigpio", "gpiozero", "hw.driver", "hw.sim"))
    assert not bad, f"{module} imports {bad}"


#: The engine and its parts: they import nothing of hw/ nor the SQLite store (their seams
#: are homeapp.ports).
ENGINE = ("homeapp.engine", "homeapp.ports", "homeapp.state", "homeapp.session")
#: The one road from the engine to hw/: the plan reads the pure waveform compiler's
#: timing (when each channel contracts, how long a cycle lasts) and builds its CycleSpecs.
PURE_HW = ("hw.waveform", "hw.pigpio_limits", "hw.exc")


def test_the_engine_and_its_parts_import_nothing_of_hw_kivy_or_pigpio():
    graph = _graph()
    mine = [m for m in graph if _is(m, *ENGINE)]
    assert "homeapp.session.timeline" in mine and "homeapp.engine" in mine
    direct = {m: sorted(i for i in graph[m]
                        if _is(i, "hw", "kivy", "pigpio", "gpiozero", "homeapp.store", "sqlite3"))
              for m in mine}
    assert not {m: b for m, b in direct.items() if b}, f"the engine imports hw/: {direct}"
    for m in mine:
        reach = _reachable(graph, m)
        bad = sorted(i for i in reach if _is(i, "kivy", "pigpio", "gpiozero")
                     or (_is(i, "hw") and i != "hw" and not _is(i, *PURE_HW)))
        assert not bad, f"{m} reaches {bad}"


def test_hw_imports_of_homeapp_only_the_ports():
    """The adapters depend on the core's seams, never on the engine itself."""
    graph = _graph()
    bad = {m: sorted(i for i in imps if _is(i, "homeapp") and i != "homeapp"
                     and not _is(i, "homeapp.ports"))
           for m, imps in graph.items() if _is(m, "hw")}
    assert not {m: b for m, b in bad.items() if b}


def test_the_ui_imports_neither_hw_nor_the_store():
    graph = _graph()
    bad = {m: sorted(i for i in imps if _is(i, "hw", "homeapp.store"))
           for m, imps in graph.items() if _is(m, "homeapp.ui")}
    bad = {m: b for m, b in bad.items() if b}
    assert not bad, f"the UI imports hw/ or the store: {bad}"


def test_the_runtime_package_holds_no_test_or_screenshot_tooling():
    # the device image installs homeapp/, hw/, schedules/: tooling lives in tests/ (tests.uitools)
    graph = _graph()
    bad = {m: sorted(i for i in imps if _is(i, "tests", "tools", "pytest", "kivy.tests"))
           for m, imps in graph.items() if _is(m, "homeapp", "hw", "schedules")}
    assert not {m: b for m, b in bad.items() if b}
    assert not (ROOT / "homeapp" / "ui" / "testing.py").exists()
    assert not (ROOT / "homeapp" / "ui" / "screenshots.py").exists()


#: What only the wiring holds: a screen asks the services, never the log, the device or the board.
DEVICE_PARTS = {"store", "device", "sim_board", "stimulator"}


def test_no_screen_reaches_for_the_store_the_device_or_the_board():
    reached = {}
    for path in sorted((ROOT / "homeapp" / "ui").rglob("*.py")):
        names = sorted({node.attr for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                        if isinstance(node, ast.Attribute) and node.attr in DEVICE_PARTS})
        if names:
            reached[_module(path)] = names
    assert not reached, f"screens reach past the services: {reached}"


def test_screens_call_the_engine_through_typed_methods_not_command_names():
    # app.command("pause") / link.command("increase", 0): a name looked up at run time, which
    # no checker sees; every touch has a typed method on the app and the link
    named = {}
    for path in sorted((ROOT / "homeapp" / "ui").rglob("*.py")):
        calls = [node.lineno for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                 and node.func.attr in ("command", "call")
                 and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]
        if calls:
            named[_module(path)] = calls
    assert not named, f"screens pass engine commands by name (lines): {named}"
