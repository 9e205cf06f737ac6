"""Browser fixtures for the end-to-end tests: Playwright (sync API) driving Debian's chromium against
pytest-django's live server. Skipped when /usr/bin/chromium is missing, unless REQUIRE_BROWSER=1 (then the
tests fail). Screenshots go to ``$E2E_ARTIFACTS`` (default /tmp/baton-e2e), never into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", "/tmp/baton-e2e"))
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (REQUIRE_BROWSER=1 turns this into a failure)")
    from playwright.sync_api import sync_playwright

    # The sync API runs an event loop in this thread; the tests' own ORM calls are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield instance
        instance.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def forget_rate_limits():
    """The live server counts each address's POSTs (``BOOKING_RATE_LIMIT``) in this process's cache, shared
    by every browser test: each test starts with none counted (the suite books more than the limit)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def new_page(browser):
    """``new_page(width=1000, height=800, color_scheme="light")``: a fresh context in Europe/Berlin."""
    contexts = []

    def make(width: int = 1000, height: int = 800, color_scheme: str = "light"):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            timezone_id="Europe/Berlin",
            locale="en-GB",
            color_scheme=color_scheme,
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        refused: list[str] = []  # every 4xx/5xx the page's requests got (the icon's included)
        page.on("response", lambda r: r.status >= 400 and refused.append(f"{r.status} {r.url}"))
        # the browser's own requests (the icon) are not the page's: their failures show on the console
        failed = "Failed to load"
        page.on("console", lambda m: m.type == "error" and failed in m.text and refused.append(m.text))
        page.bad_responses = refused
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def shot():
    def save(page, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return save


@pytest.fixture
def host_site():
    """A marketing site on its own loopback origin (``tests.e2e.host_site.HostSite``)."""
    from tests.e2e.host_site import HostSite

    site = HostSite()
    yield site
    site.close()
