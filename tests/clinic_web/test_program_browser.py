"""The program editor in a real browser (chromium through Playwright) against the real clinic
service over TLS, with a real device: a clinician signs in, opens the patient's program
from the progression suggestion, edits it (the validator's message shows beside the field
it names), signs it in the browser with the key file `homeapp rx keygen` wrote, publishes;
the signature verifies with `homeapp rx verify`, and the device's `homeapp sync` installs
it (`homeapp rx active` shows it; the page shows it installed). Also: a key made in the
browser, and a browser without Ed25519 (download, `homeapp rx sign`, upload)."""
from __future__ import annotations

import json
import re

import pytest

from schedules.signing import TrustStore, key_id, load_public_key, verify_prescription

from .browser import browser, chromium_path, save_download, sign_in, web_tls  # noqa: F401 (fixtures)
from .program_kit import CAP_MA, CLINICIAN, NO_ED25519, PATIENT, ProgramWorld, homeapp
from tests.clinic.kit import PASSWORD


@pytest.fixture(scope="module")
def world(tmp_path_factory, web_tls, browser):
    w = ProgramWorld(tmp_path_factory.mktemp("program-world"), web_tls).start()
    try:
        yield w
    finally:
        browser.close_contexts()
        w.stop()


def program_page(browser, world, query: str = "", lang: str = "en-GB"):
    page = browser.new_page(lang=lang)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, world.url, CLINICIAN, PASSWORD)
    page.goto(f"{world.url}/patients/{PATIENT}/program{query}")
    page.js_errors = errors
    return page


def check(page):
    page.click("#check")
    page.wait_for_load_state()


def test_signed_in_the_browser_verified_by_the_cli_and_installed_by_the_device(browser, world, tmp_path):
    page = browser.new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    # the clinician signs in and finds the flagged patient on the patients page
    sign_in(page, world.url, CLINICIAN, PASSWORD)
    row = page.locator("tbody tr", has_text=PATIENT)
    assert "Ready to progress" in row.inner_text()
    # opens the review, then the program editor from the progression suggestion
    row.locator(f"a:text-is('{PATIENT}')").click()
    page.wait_for_url(f"**/patients/{PATIENT}")
    assert page.locator("#h-review").is_visible()
    page.click("#new-program")
    page.wait_for_url(f"**/patients/{PATIENT}/program")
    page.click("a[href$='start=suggestion']")
    page.wait_for_url("**start=suggestion")
    # the progression rules' proposal, with its reasons
    assert "Raise the cap" in page.inner_text(".suggestion")
    new_cap = CAP_MA + 4
    assert page.input_value("#f-channels-0-max_ma") == str(new_cap)
    assert f"was {CAP_MA}" in page.inner_text("#h-channels-0-max_ma")      # what changes, at a glance
    # the clinician edits it; a value beyond the device limits gets the validator's own message beside it
    page.fill("#f-blocks-0-hz", "400")
    check(page)
    page.click("#problems a[href='#f-blocks-0-hz']")          # the summary links to the field
    assert page.evaluate("document.activeElement.id") == "f-blocks-0-hz"
    problem = page.inner_text("#e-blocks-0-hz")
    assert "blocks[0].hz: 400 is above the device limit of 150 (allowed 1 to 150 Hz)" in problem
    assert page.get_attribute("#f-blocks-0-hz", "aria-invalid") == "true"
    assert page.locator("#sign").count() == 0          # nothing to sign until it is valid
    page.fill("#f-blocks-0-hz", "40")
    check(page)
    assert page.locator(".ready .ok").is_visible()
    changes = page.inner_text("table.changes")
    assert "Channel 1 · Amplitude cap" in changes and "Block 1 · Frequency" in changes
    # what the signature will cover, decoded from the very bytes to be signed
    what = page.inner_text("#signing-what")
    assert f"left quadriceps: ≤ {new_cap} mA" in what and "strength: 1 min, 40 Hz, 300 µs, 5 s / 5 s" in what
    # sign in the browser with the key file rx keygen wrote; the key never leaves the page
    page.set_input_files("#keyfile", str(world.key_file))
    page.click("#sign-button")
    page.wait_for_selector("#publish:enabled")
    assert world.key_id in page.inner_text("#sign-result")
    signature = json.loads(page.input_value("#signature"))
    assert set(signature) == {"alg", "key_id", "value"}
    with page.expect_navigation():
        page.click("#publish")
    assert "/program/status" in page.url
    assert page.get_attribute("#device-status", "data-status") == "pending"
    rx_id = page.inner_text("table.published tbody tr:first-child td:first-child")
    assert rx_id.startswith("rx-knee-") and rx_id != world.first_rx.stem
    # the real CLI verifies the signature the browser made, against the device's trust store
    signed = world.published_source(rx_id)
    assert signed["signature"] == signature and signed["channels"][0]["max_ma"] == new_cap
    assert signed["blocks"][0]["hz"] == 40
    assert verify_prescription(signed, TrustStore(world.device.data / "trust")) == world.key_id
    path = tmp_path / "signed.json"
    path.write_text(json.dumps(signed))
    r = homeapp("rx", "verify", str(path), "--trust", str(world.device.data / "trust"))
    assert r.returncode == 0 and f"signed by {world.key_id}" in r.stdout, r.stderr
    # the device installs it at its next sync; the page (refreshing itself) shows it
    assert world.sync()["prescription"] == rx_id
    r = world.device.run("rx", "active")
    assert r.returncode == 0 and rx_id in r.stdout.splitlines()[0] and "signature: verified" in r.stdout
    page.wait_for_selector("#device-status[data-status=installed]", timeout=15_000)
    assert rx_id in page.inner_text("#device-status")
    assert page.js_errors == []


def _make_key_in_browser(page, tmp_path) -> dict:
    """Check the draft, press "make a key" and save what the page downloads: file name -> path."""
    check(page)
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.click("#newkey-button")
    page.wait_for_function("document.getElementById('sign-result').textContent.length > 0")
    page.wait_for_timeout(300)
    return {d.suggested_filename: save_download(d, tmp_path) for d in downloads}


def test_a_key_made_in_the_browser_is_a_key_file_the_command_line_reads(browser, world, tmp_path):
    page = program_page(browser, world, "?start=current")
    files = _make_key_in_browser(page, tmp_path)
    assert set(files) == {"clinician.key", "clinician.pub"}
    kid = key_id(load_public_key(files["clinician.pub"]))
    assert kid in page.inner_text("#sign-result")
    # the same formats as rx keygen: the CLI signs with the private file, a device trusts the public one
    trust = tmp_path / "trust"
    assert homeapp("rx", "trust", "add", str(files["clinician.pub"]), "--trust", str(trust)).returncode == 0
    # sign with the key made here: the page warns that the clinic does not know it yet
    page.click("#sign-button")
    page.wait_for_selector("#publish:enabled")
    assert "not registered" in page.inner_text("#sign-result")
    draft = json.loads(page.locator("#publish-form input[name=draft]").input_value())
    draft["signature"] = json.loads(page.input_value("#signature"))
    (tmp_path / "b.json").write_text(json.dumps(draft))
    r = homeapp("rx", "verify", str(tmp_path / "b.json"), "--trust", str(trust))
    assert r.returncode == 0 and kid in r.stdout, r.stderr
    unsigned = dict(draft, id=draft["id"] + "-cli")
    unsigned.pop("signature")
    (tmp_path / "c.json").write_text(json.dumps(unsigned))
    r = homeapp("rx", "sign", str(tmp_path / "c.json"), "--key", str(files["clinician.key"]))
    assert r.returncode == 0 and kid in r.stdout, r.stderr
    # and the clinic refuses what a key not registered to the clinician signed, saying why
    with page.expect_navigation():
        page.click("#publish")
    assert "not registered to clinician alice" in page.inner_text("#publish-refused")
    assert page.is_visible("#sign-button")              # the same program, ready to sign again
    assert page.js_errors == []


def test_without_ed25519_in_the_browser_download_sign_with_the_cli_and_upload(browser, world, tmp_path):
    page = browser.new_page()
    page.add_init_script(NO_ED25519)      # a browser whose WebCrypto has no Ed25519 (as older ones)
    sign_in(page, world.url, CLINICIAN, PASSWORD)
    page.goto(f"{world.url}/patients/{PATIENT}/program?start=preset&preset=circulation")
    page.fill("#f-channels-0-max_ma", "35")
    check(page)
    page.wait_for_selector("#sign-unsupported:visible")
    assert "cannot sign with Ed25519" in page.inner_text("#sign-unsupported")
    assert page.is_disabled("#sign-button") and page.is_visible("#download-unsigned")
    with page.expect_download() as info:
        page.click("#download-unsigned")
    unsigned = save_download(info.value, tmp_path)
    draft = json.loads(unsigned.read_text())
    assert draft["channels"][0]["max_ma"] == 35 and "signature" not in draft
    assert re.search(r"homeapp rx sign \S+\.json --key clinician\.key", page.inner_text("#fallback"))
    r = homeapp("rx", "sign", str(unsigned), "--key", str(world.key_file))
    assert r.returncode == 0, r.stderr
    page.set_input_files("#signed-file", str(unsigned))
    with page.expect_navigation():
        page.click("#upload")
    assert page.get_attribute("#device-status", "data-status") == "pending"
    assert draft["id"] in page.inner_text("#device-status")
    assert world.sync()["prescription"] == draft["id"]
    assert draft["id"] in world.device.run("rx", "active").stdout.splitlines()[0]


def test_the_editor_speaks_swedish_and_refuses_a_form_without_its_token(browser, world):
    page = program_page(browser, world, "?start=suggestion", lang="sv-SE")
    assert page.get_attribute("html", "lang") == "sv"
    assert "Nytt program för P-0042" in page.inner_text("h1")
    assert "tillåtet 1 till 150 Hz" in page.inner_text("#h-blocks-0-hz")
    assert "Bara 0 pass med programmet" in page.inner_text(".suggestion")   # the new program has no session yet
    page.fill("#f-blocks-0-on_s", "")
    check(page)
    assert page.inner_text("#e-blocks-0-on_s") == "blocks[0].on_s: saknas (ett tal, 1 till 60 s)"
    # CSRF: the same form without its token is refused
    page.evaluate("document.querySelector('form.program input[name=csrf_token]').value = 'forged'")
    check(page)
    assert "Nekad" in page.inner_text("main") or "Refused" in page.inner_text("main")


def test_a_key_made_in_the_browser_is_registered_on_the_keys_page_and_then_signs(browser, world, tmp_path):
    """No terminal: make a key here, register its public file on /account/keys (password
    again, the key id shown to compare), then sign with it and the clinic publishes."""
    page = program_page(browser, world, "?start=current")
    files = _make_key_in_browser(page, tmp_path)
    kid = key_id(load_public_key(files["clinician.pub"]))
    page.click("a[href='/account/keys']")
    page.wait_for_load_state()
    page.set_input_files("#keyfile", str(files["clinician.pub"]))
    page.fill("#password", PASSWORD)
    page.click("form.keyform button[type=submit]")
    page.wait_for_load_state()
    assert kid in page.inner_text("#key-registered") and kid in page.inner_text("table.keys")
    # the program page now knows the key: signed with the key file, the clinic publishes it
    page.goto(f"{world.url}/patients/{PATIENT}/program?start=current")
    check(page)
    page.set_input_files("#keyfile", str(files["clinician.key"]))
    page.click("#sign-button")
    page.wait_for_selector("#publish:enabled")
    assert kid in page.inner_text("#sign-result") and "not registered" not in page.inner_text("#sign-result")
    with page.expect_navigation():
        page.click("#publish")
    assert "/program/status" in page.url
    assert page.js_errors == []
