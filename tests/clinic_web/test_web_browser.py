"""The clinician's pages in a real browser (Debian's chromium, driven by Playwright)
against the real service process: a clinician signs in, finds the patient in pain, opens
the review, moves by keyboard, switches to Swedish and signs out."""
from __future__ import annotations

import pytest

from clinic.db import migrate, open_engine
from clinic.service import Clinic
from clinic.web import demo

from .browser import Served, chromium_missing, launch, sign_in

try:
    from playwright.sync_api import expect
except ImportError:   # the module is skipped then
    expect = None

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'clinic.db'}"
    engine = open_engine(url)
    migrate(engine)
    demo.fill(Clinic(engine), patients=10, days=28, contractions=False)   # the session pages have their own test
    engine.dispose()
    with Served(url) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    yield context.new_page()
    context.close()


def test_a_clinician_finds_the_patient_in_pain_and_opens_the_review(served, page):
    sign_in(page, served.url, "demo", demo.DEMO_PASSWORD)
    cookie = next(c for c in page.context.cookies() if c["name"] == "homeapp_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""          # no script can read the session
    # only those with flags, then the one in pain
    page.check("input[name=flagged]")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**/patients?*flagged=1*")
    row = page.locator("tr", has=page.locator("li.flag", has_text="Pain 6/10 or more")).first
    assert row.locator("th.pid").inner_text() == "DEMO-002"
    flag = row.locator("li.flag", has_text="Pain 6/10 or more")
    assert "after" in flag.get_attribute("title") and flag.locator(".why").is_visible()
    row.locator("th.pid a").click()
    page.wait_for_url(served.url + "/patients/DEMO-002")
    assert page.locator("h1").inner_text() == "Patient DEMO-002"
    assert page.locator(".attention li.flag", has_text="Pain 6/10 or more").count() == 1
    chart = page.locator("img.charts")
    chart.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('img.charts').complete")
    assert page.evaluate("document.querySelector('img.charts').naturalWidth") > 500
    # a shorter range, from the form
    page.click("a.button:has-text('3 months')")
    page.wait_for_url("**/patients/DEMO-002?from=*")
    page.locator("table.sessions tbody tr th a").first.click()
    expect(page.locator("h1")).to_have_text(__import__("re").compile(r"^Session "))


def test_the_pages_work_by_keyboard_and_in_swedish(served, page):
    sign_in(page, served.url, "demo", demo.DEMO_PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    assert page.locator("a.skip").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    # the language switch is a pair of buttons reachable by Tab
    page.focus("form.lang button[value=sv]")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Patienter")
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    page.focus("form.signout button")
    page.keyboard.press("Enter")
    page.wait_for_url(served.url + "/signin?out=1")
    expect(page.locator("p.notice")).to_have_text("Du är utloggad.")
    page.goto(served.url + "/patients/DEMO-002")
    assert page.url.startswith(served.url + "/signin?next=")   # signed out means signed out


def test_another_clinicians_patient_is_not_found_in_the_browser(served, page):
    sign_in(page, served.url, "demo", demo.DEMO_PASSWORD)
    response = page.goto(served.url + "/patients/OTHER-001")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
