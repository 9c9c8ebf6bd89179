"""`make run` with no display: the app on an 800x480 virtual screen, and it says how to
look at it (tools/run_headless.sh): x11vnc when installed, else a picture path."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "run_headless.sh"


def fake_app(tmp_path: Path) -> Path:
    """Stands in for `homeapp`: prints the picture path it was given."""
    app = tmp_path / "homeapp"
    app.write_text('#!/bin/sh\necho "app started, picture=${HOMEAPP_SCREEN_PICTURE:-none}"\n')
    app.chmod(0o755)
    return app


def run(tmp_path: Path, path_dirs: list[Path]) -> str:
    env = {"PATH": os.pathsep.join(str(p) for p in path_dirs), "DISPLAY": ":77"}
    out = subprocess.run(["/bin/sh", str(SCRIPT), str(fake_app(tmp_path)), str(tmp_path / "screen.png")],
                         env=env, capture_output=True, text=True, timeout=30, check=True)
    return out.stdout


def test_without_x11vnc_it_names_the_picture_the_app_writes(tmp_path):
    empty = tmp_path / "empty"          # a PATH with no x11vnc (that branch needs only sh's builtins)
    empty.mkdir()
    out = run(tmp_path, [empty])
    assert "800x480" in out and ":77" in out
    assert f"{tmp_path / 'screen.png'} is rewritten every 3 s" in out
    assert "install x11vnc" in out
    assert out.strip().endswith(f"app started, picture={tmp_path / 'screen.png'}")


def test_with_x11vnc_it_serves_the_screen_on_this_machine_only(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "x11vnc.args"
    vnc = bin_dir / "x11vnc"
    vnc.write_text(f'#!/bin/sh\necho "$@" > {log}\necho PORT=5901\n')
    vnc.chmod(0o755)
    out = run(tmp_path, [bin_dir, Path("/usr/bin"), Path("/bin")])
    args = log.read_text().split()
    assert "-localhost" in args and args[args.index("-display") + 1] == ":77"
    assert "localhost:5901" in out and "x11vnc" in out
    assert out.strip().endswith("app started, picture=none")


def test_make_run_uses_the_device_screen_size_when_there_is_no_display():
    recipe = subprocess.run(["make", "-n", "-W", "pyproject.toml", "run"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "DISPLAY": "", "WAYLAND_DISPLAY": ""}).stdout
    line = next(t for t in recipe.splitlines() if "run_headless.sh" in t)
    assert '-screen 0 800x480x24' in line
