"""Driving the dashboard in Debian's Chromium with Playwright: one browser per test module, a
fresh context (cookie jar) per login, axe-core on each page, and screenshots on request.

Skipped, with the reason, where ``/usr/bin/chromium`` or Playwright is missing (``playwright
install`` cannot download browsers here). ``PINWARDEN_UI_SCREENSHOTS=DIR`` makes the tests save
each page at desktop and phone width into DIR (docs/dashboard.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
_SERIOUS = {"serious", "critical"}
_TIMEOUT_MS = 20_000


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need playwright (the test extra)")
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole module."""
    with _playwright()() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def log_in(browser: Any, url: str, token: str, *, viewport: dict[str, int] = DESKTOP) -> Any:
    """A new context logged in with ``token``; its page, on the overview.

    ``bypass_csp`` lets axe-core's script run: the dashboard's policy allows no script at all."""
    context = browser.new_context(viewport=viewport, bypass_csp=True, base_url=url)
    context.set_default_timeout(_TIMEOUT_MS)
    page = context.new_page()
    page.goto("/ui/login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/ui/$"))
    return page


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']}: "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation.get("impact") in _SERIOUS
    ]


def assert_accessible(page: Any) -> None:
    found = serious_violations(page)
    assert not found, f"{page.url}: " + " | ".join(found)


def screenshot(page: Any, name: str) -> None:
    """With ``PINWARDEN_UI_SCREENSHOTS=DIR``: ``DIR/NAME-desktop.png`` and ``NAME-phone.png``
    of the whole page."""
    directory = os.environ.get("PINWARDEN_UI_SCREENSHOTS")
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(Path(directory) / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)


def assert_fits_a_phone(page: Any) -> None:
    """At phone width the page does not scroll sideways (wide tables scroll in their own
    region)."""
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size(size)
    assert width <= PHONE["width"], f"{page.url} is {width} px wide at phone width"


def assert_forms_carry_csrf(page: Any) -> None:
    """Every form that changes something (``POST``) carries a CSRF value."""
    unguarded = page.eval_on_selector_all(
        "form",
        "forms => forms.filter(f => f.method === 'post' && !f.querySelector('input[name=csrf]'))"
        ".map(f => f.action)",
    )
    assert not unguarded, f"{page.url}: forms without a CSRF value: {unguarded}"


def check_page(page: Any, name: str) -> None:
    """Every page a test reaches: no serious axe violation, CSRF on every form, fits a phone,
    and a screenshot if asked."""
    assert_accessible(page)
    assert_forms_carry_csrf(page)
    assert_fits_a_phone(page)
    screenshot(page, name)
