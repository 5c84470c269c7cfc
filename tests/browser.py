"""Browser tests' fixtures: Playwright driving Debian's Chromium (never a downloaded browser).

One browser per test module (``chromium``), a fresh context and page per test
(``page``) against pytest-django's ``live_server``, which runs in the test
process (so ``monkeypatch`` reaches it). When a test fails, a screenshot of
the page it was on is kept under ``test-output/``. ``console`` collects what
the page logs, where Chromium reports Content-Security-Policy violations.

Import the fixtures into a test module (their functions have other names than
the fixtures, so the import shadows nothing)::

    from tests.browser import chromium_browser, browser_console, browser_page  # noqa: F401
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEST_OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 667}

requires_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM}: `make test` installs Debian's package"
)


@pytest.fixture(scope="module", name="chromium")
def chromium_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread while the
    # browser lives; the ORM calls of the tests and of pytest-django's database
    # teardown are still plain synchronous code, so Django must not refuse them.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(name="page")
def browser_page(chromium: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(base_url=live_server.url, viewport=LAPTOP)
    context.set_default_timeout(20_000)
    opened = context.new_page()
    yield opened
    call_report = getattr(request.node, "report_call", None)
    if call_report is not None and call_report.failed:
        TEST_OUTPUT.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        opened.screenshot(path=str(TEST_OUTPUT / f"{name}-last-page.png"), full_page=True)
    context.close()


class Console:
    """What the page logged, and every URL it requested."""

    def __init__(self, page: Any) -> None:
        self.messages: list[str] = []
        self.requested: list[str] = []
        page.on("console", lambda message: self.messages.append(f"{message.type}: {message.text}"))
        page.on("request", lambda sent: self.requested.append(sent.url))

    @property
    def csp_violations(self) -> list[str]:
        return [text for text in self.messages if "Content Security Policy" in text]

    def foreign_requests(self, origin: str) -> list[str]:
        return [url for url in self.requested if not url.startswith(origin + "/")]


@pytest.fixture(name="console")
def browser_console(page: Any) -> Console:
    return Console(page)


def sign_in_as(page: Any, user: Any, base_url: str) -> None:
    """Give the page's browser a session of ``user`` (what the sign-in form does, without typing)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url}])


def fits_horizontally(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
