"""The clinician's pages in a real browser: Debian's chromium driven by Playwright, and
the real clinic service in its own process on loopback (shared by the browser tests and
`make clinic-screenshots`)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("HOMEAPP_CHROMIUM", "/usr/bin/chromium")
#: Chromium as the tests run it: no sandbox (root in a container), no GPU, nothing fetched.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions"]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (`make test` installs Debian's chromium through apt)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing (pip install playwright)"
    return None


def launch(playwright):
    """Chromium, headless, from Debian's package (never a downloaded build)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


class Served:
    """`homeapp-clinic serve` on a free loopback port over plain http (browsers keep
    Secure cookies of http://127.0.0.1), as a separate process."""

    def __init__(self, db_url: str, *, tls: tuple[Path, Path] | None = None) -> None:
        self.db_url, self.tls = db_url, tls
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> "Served":
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        argv = [sys.executable, "-m", "clinic.cli", "serve", "--port", "0", "--db", self.db_url]
        if self.tls:
            argv += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     cwd=ROOT)
        first = self.proc.stdout.readline().strip()
        if not first.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"the clinic did not start: {first!r}")
        self.url = first.removeprefix("listening on ").replace("://127.0.0.1", "://127.0.0.1")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/signin")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/signin'] button[type=submit]")
    page.wait_for_url(base + "/patients")
