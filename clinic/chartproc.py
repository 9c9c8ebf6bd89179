"""Drawing the review's charts (homeapp/report.py's `review_png`) for the clinic, in the
serving process or in a separate process at low priority (the pre-draw of
clinic/web/charts.py).

This module stays outside clinic/web so that the separate process imports only the
report module and matplotlib, not the web pages.
"""
from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from homeapp.report import review_png
from homeapp.report_texts import LANGUAGES as REPORT_LANGUAGES

def chart_language(lang: str | None) -> str:
    """The language a chart is drawn in for a page in `lang`: one the report module writes
    (homeapp/report_texts.py), else English ("en")."""
    lang = (lang or "en").strip().lower()
    return lang if lang in REPORT_LANGUAGES else "en"


def draw_png(review: Any, lang: str = "en") -> bytes:
    """The PNG of `review`'s charts in `lang` (see `chart_language`)."""
    return review_png(review, lang=chart_language(lang))


def draw_timed(review: Any, lang: str = "en") -> tuple[bytes, float]:
    """`draw_png`, and the CPU seconds this thread spent on it."""
    cpu = time.thread_time()
    png = draw_png(review, lang)
    return png, time.thread_time() - cpu


def lower_priority(nice: int) -> None:
    """The drawing process's start: behind every serving process for the CPU (`nice`),
    and deaf to the terminal's Ctrl-C (its parent stops it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if nice > 0:
        os.nice(nice)


class DrawingProcess:
    """A separate Python process (`python -m clinic.chartproc NICE`) that draws charts
    for this one: each `draw(review, lang)` sends the review (pickled) through its stdin
    and reads back (png, CPU seconds). Started on first use, again after it died."""

    def __init__(self, *, nice: int) -> None:
        self.nice = nice
        self._proc: Any = None
        self._lock = threading.Lock()

    def _start(self) -> Any:
        import subprocess
        env = dict(os.environ)
        # the child finds this very code, whatever way the parent was started
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        return subprocess.Popen([sys.executable, "-m", "clinic.chartproc", str(int(self.nice))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)

    def draw(self, review: Any, lang: str = "en") -> tuple[bytes, float]:
        """The picture of `review` in `lang`, drawn by the separate process, and its CPU seconds there."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            try:
                pickle.dump((review, lang), proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.flush()
                ok, value = pickle.load(proc.stdout)
            except (OSError, EOFError, pickle.UnpicklingError) as e:
                self.close()
                raise RuntimeError(f"the chart drawing process stopped: {e}") from None
        if not ok:
            raise RuntimeError(f"drawing the chart failed: {value}")
        return value

    def close(self) -> None:
        """Stop the separate process (it ends when its stdin closes)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except Exception:
                proc.kill()


def _serve(nice: int) -> None:
    """The separate process's loop: (review, lang) in, (True, (png, cpu_s)) or (False, error) out."""
    lower_priority(nice)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            review, lang = pickle.load(stdin)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, draw_timed(review, lang))
        except Exception as e:      # told to the parent, which logs it; the next chart goes on
            answer = (False, f"{type(e).__name__}: {e}")
        pickle.dump(answer, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
