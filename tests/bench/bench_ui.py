"""Touchscreen figures (issue 6): start to Home, frames per second on the session screen
during stimulation, resident memory. Each runs the app in a fresh process on the simulated
board (a temporary data folder), so the figures are the app's own."""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time

from tests.bench import Figure

#: How long the session screen is watched during stimulation (frames, collections).
FPS_SECONDS = 20.0


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


#: Mappings of Mesa's software OpenGL (llvmpipe) under Xvfb: absent on the Pi, whose GPU
#: driver is far smaller, so they are also reported apart.
SOFT_GL = ("libLLVM", "/dri/", "libgallium", "libGLX_mesa", "libglapi", "libEGL_mesa")


def _soft_gl_mb() -> float:
    total, soft = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(" ", 1)[0]
            if "-" in first and all(c in "0123456789abcdef-" for c in first):
                soft = any(k in line for k in SOFT_GL)
            elif line.startswith("Rss:") and soft:
                total += int(line.split()[1])
    return total / 1024


def child_home(t0: float) -> None:
    """Start the app as `homeapp` does and report when Home is drawn."""
    from kivy.clock import Clock

    from homeapp.ui.app import HomeApp, keep_numpy_out
    from homeapp.ui.services import Services

    keep_numpy_out()                     # as homeapp.ui.app.main does first
    svc = Services.open(None)
    svc.load_demo()
    app = HomeApp(svc)

    def check(_dt):
        if app.started_at is not None and app.current == "home":
            print(json.dumps({"home_s": time.time() - t0, "rss_mb": _rss_mb(),
                              "soft_gl_mb": _soft_gl_mb()}), flush=True)
            app.stop()
            return False
    Clock.schedule_interval(check, 0)
    app.run()


def child_baseline() -> None:
    """An empty Kivy window, one frame drawn: what any Kivy app costs on this machine."""
    from kivy.base import EventLoop
    from kivy.core.window import Window
    from kivy.uix.label import Label
    Window.add_widget(Label(text="x"))
    for _ in range(3):
        EventLoop.idle()
    print(json.dumps({"rss_mb": _rss_mb(), "soft_gl_mb": _soft_gl_mb()}), flush=True)


def child_session() -> None:
    """A session on the simulated board, intensity up, frames counted while it runs."""
    from pathlib import Path

    from kivy.base import EventLoop

    from homeapp.ui.app import keep_numpy_out
    keep_numpy_out()                     # as homeapp.ui.app.main does first
    from tests.uitools import UI

    ui = UI(Path(tempfile.mkdtemp(prefix="homeapp-bench-")),
            rx_changes={"blocks": [{"label": "strength", "minutes": 1, "hz": 50, "pulse_us": 300,
                                    "on_s": 3, "off_s": 2, "ramp_up_s": 1, "ramp_down_s": 1,
                                    "pattern": "synchronous"}]})
    ui.start_session()
    for _ in range(4):
        ui.tap(ui.screen.controls[0].plus)
        ui.tap(ui.screen.controls[1].plus)
    ui.wait_until(lambda: ui.state.contracting and ui.device.sim_board.amplitude_ma(0) > 0, timeout=8)
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    began = {}

    def timed(phase, info):                # every collection, whichever thread it runs on
        if phase == "start":
            began["t"] = time.perf_counter()
        elif "t" in began:
            pauses[info["generation"]].append((time.perf_counter() - began.pop("t")) * 1000)
    gc.callbacks.append(timed)
    frames = 0
    t = time.monotonic()
    end = t + FPS_SECONDS
    durations = []
    last = t
    while time.monotonic() < end:
        EventLoop.idle()
        frames += 1
        now = time.monotonic()
        durations.append(now - last)
        last = now
    fps = frames / (time.monotonic() - t)
    gc.callbacks.remove(timed)
    every = [ms for gen in pauses.values() for ms in gen]
    durations.sort()
    worst_ms = durations[-1] * 1000
    p99_ms = durations[int(len(durations) * 0.99) - 1] * 1000
    running = ui.state.phase.value == "running"
    rss, soft = _rss_mb(), _soft_gl_mb()
    ui.close()
    print(json.dumps({"fps": fps, "rss_mb": rss, "soft_gl_mb": soft, "running": running,
                      "worst_ms": worst_ms, "p99_ms": p99_ms,
                      "gc_worst_ms": max(every, default=0.0), "gc_full": len(pauses[2]),
                      "gc_count": len(every)}), flush=True)


def _run(mode: str, extra_env=None) -> dict:
    # KIVY_IMAGE as the app sets it (homeapp.ui.app.configure_kivy): the empty window
    # measured without it loaded PIL too, 14 MB, and the baseline read 145 or 159 MB
    # depending on which benchmark module was imported first.
    env = dict(os.environ, KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1", KIVY_IMAGE="sdl2",
               KIVY_HOME=tempfile.mkdtemp(prefix="kivy-"),
               XDG_DATA_HOME=tempfile.mkdtemp(prefix="homeapp-data-"), **(extra_env or {}))
    env.pop("HOMEAPP_CONFIG", None)
    out = subprocess.run([sys.executable, "-m", "tests.bench.bench_ui", mode], env=env,
                         capture_output=True, text=True, timeout=120)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"bench_ui {mode} gave no figure: {out.stderr[-2000:]}")


def figures() -> list[Figure]:
    t0 = time.time()
    home = _run("home", {"BENCH_T0": repr(t0)})
    sess = _run("session")
    base = _run("baseline")
    note = "" if sess.get("running") else "the session was not running throughout"
    return [
        Figure("UI: baseline, an empty Kivy window (not the app)", base["rss_mb"], "MB", "",
               f"{base['soft_gl_mb']:.0f} MB of it Mesa's software GL"),
        Figure("UI: the app's own memory, session running (RSS - baseline)",
               sess["rss_mb"] - base["rss_mb"], "MB", ""),
        Figure("UI: process start to Home drawn (simulated board)", home["home_s"], "s", "<= 3"),
        Figure("UI: session screen fps during stimulation", sess["fps"], "fps", ">= 30", note),
        Figure("UI: session screen, slowest frame", sess["worst_ms"], "ms", "",
               f"99th percentile {sess['p99_ms']:.1f} ms"),
        # a collection holds the GIL: the engine's loop waits on it as much as the screen
        Figure("UI: longest garbage collection during stimulation", sess["gc_worst_ms"], "ms", "<= 20",
               f"{sess['gc_count']} collections in {FPS_SECONDS:.0f} s, {sess['gc_full']} of them full"),
        Figure("UI: resident memory, session running", sess["rss_mb"], "MB", "<= 150",
               f"{sess['soft_gl_mb']:.0f} MB of it Mesa's software GL"),
        Figure("UI: resident memory, session running, without software GL",
               sess["rss_mb"] - sess["soft_gl_mb"], "MB", "<= 150"),
        Figure("UI: resident memory at Home", home["rss_mb"], "MB", "<= 150",
               f"{home['soft_gl_mb']:.0f} MB of it Mesa's software GL"),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "home":
        child_home(float(os.environ["BENCH_T0"]))
    elif sys.argv[1] == "baseline":
        child_baseline()
    else:
        child_session()
