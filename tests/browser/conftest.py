"""What the browser tests share: one Chromium per module (Playwright's sync API), and
a fresh `imkit serve --web` per test. Playwright is imported only when a fixture runs:
the test modules skip themselves first when it or Chromium is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

    from tests.browser.test_web_browser import WebServer


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    from tests.browser.test_web_browser import CHROMIUM, CHROMIUM_ARGS

    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def web(short_dir: Path) -> Iterator[WebServer]:
    from tests.browser.test_web_browser import WebServer

    server = WebServer(short_dir / "admin.sock")
    yield server
    server.stop()
