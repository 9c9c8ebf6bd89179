"""Memory soak: the touchscreen app on the simulated board, every screen and a session,
cycled many times; the resident memory at the start and the end. A device left on for
months must not grow: the goal is no growth beyond noise (<= 5 MB) after the first cycle.

Also what the app itself holds beyond an empty Kivy window (the baseline of bench_ui),
split into what can be named: Python objects (tracemalloc), Kivy's texture and font caches,
the simulated board's trace window, and whether matplotlib was loaded.

Runs in a fresh process under Xvfb (`make bench`), driven by real touches on the held
clock of tests.uitools, as the touchscreen tests are. `python -m tests.bench.bench_soak
soak N` runs one soak of N cycles and prints its figures as JSON (BENCH_SOAK_VERBOSE=1: a
line per cycle on stderr).
"""
from __future__ import annotations

import gc
import json
import os

# As the app itself starts (homeapp.ui.app): SDL2 reads the images, so PIL (and the numpy
# it pulls in) is never loaded. The test harness imports Kivy before the app module does.
os.environ.setdefault("KIVY_IMAGE", "sdl2")
import subprocess
import sys
import tempfile
import time

from tests.bench import Figure
from tests.bench.bench_ui import _rss_mb, _soft_gl_mb

CYCLES = 50
GROWTH_GOAL_MB = 5.0


def _settled_rss_mb() -> float:
    """RSS after a full garbage collection, two frames drawn and glibc handing free pages
    back: what is held, not what is waiting to be collected. Kivy deletes the GL textures
    of collected widgets at the next frame (about 7 MB for the clinic log's), which the
    running app draws 20 times a second; without the frames one measure in three still held
    them."""
    gc.collect()
    if "kivy.base" in sys.modules:
        from kivy.base import EventLoop
        for _ in range(2):
            EventLoop.idle()
        gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return _rss_mb()


def _cache_sizes() -> dict:
    """Entries in Kivy's caches (textures, label textures, images) and the trace window."""
    from kivy.cache import Cache
    out = {}
    for cat in ("kv.texture", "kv.image", "kv.loader", "kv.shader", "textinput.label",
                "textinput.width", "kv.atlas", "kv.resourcefind"):
        try:
            out[cat] = len(Cache._objects.get(cat, {}))
        except Exception:
            pass
    return out


def _trace_rows(ui) -> int:
    board = getattr(ui.device, "sim_board", None)
    rec = getattr(board, "trace_rec", None)
    return sum(len(t) for t in rec.times) if rec is not None else 0


#: Sessions already in the log when the soak starts: more than any screen lists (History's
#: chart 20, Caregiver's alerts 30, the clinic log 100), as on a device used for months, so
#: what the screens show no longer grows with each session the soak adds and what is left
#: is what the app keeps.
PAST_SESSIONS = 120


def fill_log(store, sessions: int = PAST_SESSIONS) -> None:
    """Past sessions, one a day before today: two contractions a channel, an electrode
    alert in every ninth, every seventh stopped early."""
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    for i in range(sessions):
        sid = f"past-{i}"
        start = now - dt.timedelta(days=sessions - i)
        store.start_session(session_id=sid, prescription_id="rx-past", started_at=start,
                            planned_contractions=2, channels=2)
        for ch in range(2):
            for k in range(2):
                store.add_contraction(sid, channel=ch, index=k, start_t=10.0 * k, end_t=10.0 * k + 5,
                                      peak_ma=10.0 + ch + (i % 10), completed=True)
        if i % 9 == 0:
            store.add_event(sid, t=12.0, kind="lead_off", detail={"channel": 1})
        store.end_session(sid, status="stopped" if i % 7 == 0 else "completed",
                          ended_at=start + dt.timedelta(minutes=15))


def one_cycle(ui, k: int, usb) -> None:
    """Home, language both ways, History, Caregiver (PIN), Clinic (PIN, both tabs), a
    prescription imported, Preparation, a session to its first contraction, STOP, After,
    skipped, Home."""
    from tests.uitools import write_rx
    app = ui.app
    home = app.screens["home"]
    # A new prescription each cycle (as a clinic would send): the schedule's sessions per
    # day count per prescription, so each cycle may start a session.
    # One file on the stick at a time, as a clinic hands one over: a stick holding one more
    # file each cycle would grow the clinic tab's list of files with the soak.
    for old in usb.glob("*.json") if usb.is_dir() else ():
        old.unlink()
    ok, problems = ui.svc.import_prescription(write_rx(usb, id=f"rx-soak-{k}"))
    assert ok, problems
    app.go("home")
    ui.pump(0.02)
    ui.tap(home.lang_button)               # Svenska
    ui.tap(home.lang_button)               # English
    for name in ("history", "caregiver", "clinician"):
        app.go(name)
        ui.pump(0.02)
        screen = app.screens[name]
        if hasattr(screen, "pad"):
            for key in ("0", "0", "0", "0", "ok"):
                ui.tap(screen.pad.buttons[key])
            if name == "clinician":
                screen.show_tab("log")
                ui.pump(0.02)
                screen.show_tab("rx")
                ui.pump(0.02)
        app.go("home")
        ui.pump(0.02)
    ui.start_session()
    sess = ui.screen
    ui.wait_until(lambda: ui.state.phase.value == "running", what="running")
    for _ in range(2):
        ui.tap(sess.controls[0].plus)
        ui.tap(sess.controls[1].plus)
    ui.wait_until(lambda: ui.state.contracting, timeout=10, what="a contraction")
    ui.pump(0.3)
    ui.tap(sess.stop_button)
    ui.wait_until(lambda: app.current == "after", timeout=10, what="After")
    ui.pump(0.02)
    app.skip_report()
    ui.pump(0.1)
    assert app.current == "home"


def _as_the_app_starts() -> None:
    """What `homeapp` does first (homeapp.ui.app.main): numpy kept out of the process."""
    from homeapp.ui.app import keep_numpy_out
    keep_numpy_out()


def child_soak(cycles: int) -> None:
    from pathlib import Path

    _as_the_app_starts()
    from tests.uitools import UI

    verbose = bool(os.environ.get("BENCH_SOAK_VERBOSE"))
    tmp = Path(tempfile.mkdtemp(prefix="homeapp-soak-"))
    ui = UI(tmp)
    if PAST_SESSIONS:
        fill_log(ui.device.store)
    start = _settled_rss_mb()
    t0 = time.monotonic()
    rss = []
    for k in range(cycles):
        one_cycle(ui, k, tmp / "usb")
        rss.append(_settled_rss_mb())
        if verbose:
            print(f"cycle {k + 1}: {rss[-1]:.1f} MB, trace rows {_trace_rows(ui)}, caches {_cache_sizes()}",
                  file=sys.__stderr__, flush=True)
    print(json.dumps({"start_mb": start, "after_first_mb": rss[0], "end_mb": rss[-1],
                      "max_mb": max(rss), "cycles": cycles, "seconds": time.monotonic() - t0,
                      "soft_gl_mb": _soft_gl_mb(), "trace_rows": _trace_rows(ui),
                      "matplotlib": "matplotlib" in sys.modules,
                      "numpy": sys.modules.get("numpy") is not None}), flush=True)
    ui.close()


def child_parts() -> None:
    """The app at Home after a start, and what of it can be named."""
    import tracemalloc
    _as_the_app_starts()
    tracemalloc.start()
    from pathlib import Path

    from tests.uitools import UI
    ui = UI(Path(tempfile.mkdtemp(prefix="homeapp-parts-")))
    ui.app.go("home")
    ui.pump(0.1)
    python_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    from kivy.core.text import Label as CoreLabel
    fonts = len(getattr(CoreLabel, "_fonts_cache", {}) or {})
    print(json.dumps({"rss_mb": _settled_rss_mb(), "soft_gl_mb": _soft_gl_mb(),
                      "python_mb": python_mb, "matplotlib": "matplotlib" in sys.modules,
                      "numpy": "numpy" in sys.modules and sys.modules["numpy"] is not None,
                      "modules": len(sys.modules), "fonts": fonts,
                      "caches": _cache_sizes(), "trace_rows": _trace_rows(ui)}), flush=True)
    ui.close()


def _run(*args: str) -> dict:
    env = dict(os.environ, KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1",
               KIVY_HOME=tempfile.mkdtemp(prefix="kivy-"),
               XDG_DATA_HOME=tempfile.mkdtemp(prefix="homeapp-data-"))
    env.pop("HOMEAPP_CONFIG", None)
    out = subprocess.run([sys.executable, "-m", "tests.bench.bench_soak", *args], env=env,
                         capture_output=True, text=True, timeout=1800)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"bench_soak {args} gave no figure: {out.stderr[-2000:]}")


def figures() -> list[Figure]:
    from tests.bench.bench_ui import _run as run_ui
    base = run_ui("baseline")
    parts = _run("parts")
    soak = _run("soak", str(CYCLES))
    growth = soak["end_mb"] - soak["after_first_mb"]
    return [
        Figure("soak: baseline, an empty Kivy window (not the app)", base["rss_mb"], "MB", "",
               f"{base['soft_gl_mb']:.0f} MB of it Mesa's software GL"),
        Figure("soak: the app at Home, resident", parts["rss_mb"], "MB", "",
               f"{parts['soft_gl_mb']:.0f} MB of it software GL"),
        Figure("soak: the app's own share at Home (RSS - baseline)", parts["rss_mb"] - base["rss_mb"], "MB", "",
               f"Python objects {parts['python_mb']:.1f} MB, {parts['modules']} modules, "
               f"matplotlib loaded: {parts['matplotlib']}, numpy loaded: {parts['numpy']}, "
               f"trace rows {parts['trace_rows']}"),
        Figure(f"soak: resident at the start of {soak['cycles']} cycles", soak["start_mb"], "MB", ""),
        Figure("soak: resident after the first cycle", soak["after_first_mb"], "MB", ""),
        Figure(f"soak: resident after cycle {soak['cycles']}", soak["end_mb"], "MB", "",
               f"highest {soak['max_mb']:.1f} MB; {soak['seconds']:.0f} s; trace rows {soak['trace_rows']}"),
        Figure("soak: growth after the first cycle", growth, "MB", f"<= {GROWTH_GOAL_MB:g}"),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "soak":
        child_soak(int(sys.argv[2]) if len(sys.argv) > 2 else CYCLES)
    else:
        child_parts()
