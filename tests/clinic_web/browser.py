"""A real browser for the clinic's web pages: Playwright for Python driving Debian's
`chromium` (installed by `make test` through apt), and the real clinic service over TLS
(trustme CA) in its own process.

Use in a test module:

    from .browser import browser, chromium_path, web_tls   # noqa: F401 (fixtures)

    def test_x(browser, ...):
        page = browser.new_page()           # a fresh context per call: no shared cookies
        sign_in(page, server_url, "alice", PASSWORD)

`browser` is session-scoped (one chromium for the run); `new_page(lang=...)` makes a new
context (its own cookies, downloads accepted, the trustme certificate accepted since the
CA is not in chromium's store). The tests skip, with the reason, only when
/usr/bin/chromium or the playwright package is missing.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"{CHROMIUM} is not installed (make test installs the Debian package chromium through apt)")
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


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

    def close(self) -> None:
        for context in self.contexts:
            try:
                context.close()
            except Exception:
                pass
        self.browser.close()


@pytest.fixture(scope="session")
def browser(chromium_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install '.[test]')")
    with sync_playwright() as pw:
        b = Browser(pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True))
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def web_tls(tmp_path_factory):
    """(cert chain PEM, key PEM, CA PEM) of a throwaway CA for a server on localhost."""
    import trustme
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("web-tls")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain, key, ca_pem = folder / "server.pem", folder / "server.key", folder / "ca.pem"
    cert.private_key_pem.write_to_path(str(key))
    with open(chain, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    ca.cert_pem.write_to_path(str(ca_pem))
    return chain, key, ca_pem


def sign_in(page: Any, base_url: str, username: str, password: str, *, next_path: str = "/patients") -> None:
    """Sign in through the form, as a person does, and land on `next_path`."""
    page.goto(f"{base_url}/signin?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form[action='/signin'] button[type=submit]")
    page.wait_for_url(f"**{next_path.split('?')[0]}*")


def save_download(download: Any, folder: Path) -> Path:
    path = folder / download.suggested_filename
    download.save_as(str(path))
    return path
