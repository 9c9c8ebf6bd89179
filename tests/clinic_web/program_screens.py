"""`python -m tests.clinic_web.program_screens OUT_DIR`: pictures of the program editor in
English and Swedish (docs/clinic-screens/program-*.png), from the same world as its browser
tests (tests/clinic_web/program_kit.py): a patient ready to progress, a suggestion, a
validator message, a signed program, the device's answer, and a browser without Ed25519."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.clinic.kit import PASSWORD

from .browser import CHROMIUM, CHROMIUM_ARGS, sign_in
from .program_kit import CLINICIAN, NO_ED25519, PATIENT, ProgramWorld

LANGS = (("en", "en-GB"), ("sv", "sv-SE"))


def _tls(folder: Path) -> tuple[Path, Path, Path]:
    from tests.clinic.kit import write_tls_files
    return write_tls_files(folder)


def make(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        root = Path(tmp)
        world = ProgramWorld(root / "world", _tls(root)).start()
        # one browser per language: a date field's format follows the browser's own language
        browsers = {lang: pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--lang={locale}"],
                                             headless=True) for lang, locale in LANGS}
        try:
            def page_for(locale: str, init: str | None = None, width: int = 1280, height: int = 800):
                context = browsers[locale[:2]].new_context(ignore_https_errors=True, locale=locale, accept_downloads=True,
                                              extra_http_headers={"Accept-Language": locale},
                                              viewport={"width": width, "height": height})
                page = context.new_page()
                if init:
                    page.add_init_script(init)
                sign_in(page, world.url, CLINICIAN, PASSWORD)
                return page

            def shot(page, name: str, lang: str, *, full: bool = True, locator: str | None = None) -> None:
                path = out / f"program-{name}-{lang}.png"
                if locator:
                    page.locator(locator).screenshot(path=str(path))
                else:
                    page.screenshot(path=str(path), full_page=full)
                written.append(path)

            base = f"{world.url}/patients/{PATIENT}/program"
            signed = {}
            for lang, locale in LANGS:
                page = page_for(locale)
                page.goto(base + "?start=suggestion")
                shot(page, "suggestion", lang)
                page.fill("#f-blocks-0-hz", "400")
                page.fill("#f-blocks-0-ramp_up_s", "5")
                page.click("#check")
                page.wait_for_load_state()
                shot(page, "refused", lang)
                page.fill("#f-blocks-0-hz", "35")
                page.fill("#f-blocks-0-ramp_up_s", "1")
                page.click("#check")
                page.wait_for_load_state()
                page.set_input_files("#keyfile", str(world.key_file))
                page.click("#sign-button")
                page.wait_for_selector("#publish:enabled")
                shot(page, "signed", lang, locator="section.ready")
                signed[lang] = page
                # a 10-inch tablet, a preset, and a browser without Ed25519
                tablet = page_for(locale, NO_ED25519, width=1024, height=768)
                tablet.goto(base + "?start=preset&preset=quadriceps-after-knee-surgery")
                shot(tablet, "preset-tablet", lang)
                tablet.click("#check")
                tablet.wait_for_selector("#sign-unsupported:visible")
                shot(tablet, "no-ed25519", lang, locator="section.ready")
                tablet.context.close()
            # published from the English page; the status page in both languages, before and after the sync
            signed["en"].click("#publish")
            signed["en"].wait_for_selector("#device-status")
            for lang, page in signed.items():
                page.goto(f"{base}/status")
                shot(page, "status-pending", lang, full=False)
            world.sync()
            for lang, page in signed.items():
                page.goto(f"{base}/status")
                page.wait_for_selector("#device-status[data-status=installed]")
                shot(page, "status-installed", lang, full=False)
        finally:
            for browser in browsers.values():
                browser.close()
            world.stop()
    return written


if __name__ == "__main__":
    for p in make(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/clinic-screens")):
        print(p)
