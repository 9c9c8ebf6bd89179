"""`python -m tests.clinic_web.screens OUT_DIR` (`make clinic-screenshots`): a demo clinic
(`homeapp-clinic demo`) served by `homeapp-clinic serve`, every clinician page
photographed by Debian's chromium through Playwright, in English and Swedish, on a
desktop (1280 wide) and the patient list on a 10-inch tablet held upright (800 wide)."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from .browser import ROOT, Served, chromium_missing, launch, sign_in

DESKTOP = {"width": 1280, "height": 800}


def _private_key_sample() -> bytes:
    """A fresh private key file, as someone might pick by mistake (the page refuses it)."""
    from cryptography.hazmat.primitives import serialization

    from schedules.signing import generate_keypair
    private, _ = generate_keypair()
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())


PRIVATE_KEY_SAMPLE = _private_key_sample()
TABLET = {"width": 800, "height": 1280}


def make(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        subprocess.run([sys.executable, "-m", "clinic.cli", "demo", "--db", url, "--patients", "24", "--days", "56"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        with Served(url) as served, sync_playwright() as p:
            browser = launch(p)
            for lang in ("en", "sv"):
                context = browser.new_context(viewport=DESKTOP, locale="sv-SE" if lang == "sv" else "en-GB")
                page = context.new_page()

                def shot(name: str, *, full: bool = True) -> None:
                    path = out / f"{lang}-{name}.png"
                    page.screenshot(path=str(path), full_page=full)
                    written.append(path)

                page.goto(served.url + "/signin")
                if lang == "sv":
                    page.click("form.lang button[value=sv]")
                    page.wait_for_load_state()
                shot("signin", full=False)
                page.fill("#username", "demo")
                page.fill("#password", "wrong password")
                page.click("form[action='/signin'] button[type=submit]")
                page.wait_for_load_state()
                shot("signin-wrong", full=False)
                sign_in(page, served.url, "demo", "demo clinic password")
                shot("patients")
                page.fill("#q", "DEMO-00")
                page.check("input[name=flagged]")
                page.click("form.search button[type=submit]")
                page.wait_for_load_state()
                shot("patients-search-flagged")
                page.set_viewport_size(TABLET)
                page.goto(served.url + "/patients")
                shot("patients-tablet")
                page.set_viewport_size(DESKTOP)
                for pid, name in (("DEMO-002", "patient-in-pain"), ("DEMO-003", "patient-electrode"),
                                  ("DEMO-005", "patient-not-syncing")):
                    page.goto(served.url + f"/patients/{pid}")
                    page.wait_for_load_state("networkidle")
                    shot(name)
                page.goto(served.url + "/patients/DEMO-008")
                page.wait_for_load_state("networkidle")
                page.click("table.sessions tbody tr.worry th a")
                page.wait_for_load_state()
                shot("session")
                page.goto(served.url + "/patients/OTHER-001")
                shot("not-yours", full=False)
                # the signing keys page: empty, then a private key refused
                page.goto(served.url + "/account/keys")
                shot("keys", full=False)
                page.set_input_files("#keyfile", files=[{"name": "clinician.key", "mimeType": "text/plain",
                                                         "buffer": PRIVATE_KEY_SAMPLE}])
                page.fill("#password", "demo clinic password")
                page.click("form.keyform button[type=submit]")
                page.wait_for_load_state()
                shot("keys-private-refused", full=False)
                context.close()
            browser.close()
    return written


if __name__ == "__main__":
    missing = chromium_missing()
    if missing:
        sys.exit(missing)
    for path in make(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/clinic-screens")):
        print(path)
