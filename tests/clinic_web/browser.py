"""The clinician's pages in a real browser: Debian's chromium driven by Playwright, and
the real clinic service in its own process (shared by the browser tests and the
screenshots).

Two ways in, both on the same chromium and arguments:
- plain helpers: `chromium_missing()`, `launch(playwright)`, `Served(db_url)` (the service on
  a free loopback port, http or TLS), `sign_in(page, base, username, password)`;
- pytest fixtures, imported into a test module:

      from .browser import browser, chromium_path, web_tls   # noqa: F401 (fixtures)

      def test_x(browser):
          page = browser.new_page(lang="sv-SE")   # a fresh context: its own cookies

  `browser` is module-scoped (one chromium per test module); `new_page()` accepts downloads and
  the throwaway CA's certificate (`web_tls`, trustme), which is not in chromium's store.
  The tests skip, with the reason, only when chromium or the playwright package is missing.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def launch(playwright, *, args: tuple[str, ...] = ()):
    """Chromium, headless, from Debian's package (never a downloaded build)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *args], headless=True)


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
        self.url = first.removeprefix("listening on ")
        return self

    def __exit__(self, *exc: object) -> None:
        from tests.clinic.kit import stop_process
        if self.proc is not None:
            stop_process(self.proc)


def sign_in(page, base: str, username: str, password: str, *, next_path: str = "/patients") -> None:
    """Sign in through the form, as a person does, and land on `next_path`."""
    page.goto(base + "/signin" + (f"?next={next_path}" if next_path != "/patients" else ""))
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/signin'] button[type=submit]")
    page.wait_for_url(base + next_path)


def save_download(download: Any, folder: Path) -> Path:
    """A Playwright download saved under its suggested name in `folder`."""
    path = folder / download.suggested_filename
    download.save_as(str(path))
    return path


# --------------------------------------------------------------------------- pytest fixtures

@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The chromium the tests drive (skips, saying why, when it or Playwright is missing)."""
    missing = chromium_missing()
    if missing:
        pytest.skip(missing)
    return CHROMIUM


class Browser:
    """One chromium; `new_page()` opens a page in a fresh context (cookies of its own)."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []

    def new_page(self, *, lang: str = "en-GB", width: int = 1280, height: int = 900) -> Any:
        context = self.browser.new_context(ignore_https_errors=True, accept_downloads=True, locale=lang,
                                           extra_http_headers={"Accept-Language": lang},
                                           viewport={"width": width, "height": height})
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        return context.new_page()

    def close_contexts(self) -> None:
        """Close every page opened so far (their keep-alive connections would hold a
        server's graceful shutdown for seconds)."""
        for context in self.contexts:
            try:
                context.close()
            except Exception:
                pass
        self.contexts = []

    def close(self) -> None:
        self.close_contexts()
        self.browser.close()


@pytest.fixture(scope="module")
def browser(chromium_path):
    # module-scoped: Playwright's sync API allows one running instance per thread, and
    # other modules start their own
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = Browser(launch(pw))
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def web_tls(tmp_path_factory):
    """(cert chain PEM, key PEM, CA PEM) of a throwaway CA for a server on localhost."""
    from tests.clinic.kit import write_tls_files
    return write_tls_files(tmp_path_factory.mktemp("web-tls"))
