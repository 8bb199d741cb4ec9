"""An incoming webhook's message on the web page (docs/integrations.md, docs/web.md
"Webhooks on the web port") in a real browser: ``curl`` posts to the same ``--web``
port that serves the page, and the room's log shows the message from the hook's name
with the *bot* badge (the JSON event's ``"bot": true``), a person's message without.

The server and the browser are tests/browser/test_web_browser.py's."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"{CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )
pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
)
from playwright.sync_api import Browser, expect  # noqa: E402

from tests.browser.test_web_browser import (  # noqa: E402
    WebServer,
    active_log,
    join,
    open_page,
    say,
)
from tests.browser.test_web_rooms import join_room_on_page  # noqa: E402
from tests.support import run_imkit  # noqa: E402
from tests.support.hooks import curl_args, parse_curl  # noqa: E402


def test_a_hooks_message_shows_with_the_bot_badge(browser: Browser, web: WebServer) -> None:
    socket = str(web.admin_socket)
    assert run_imkit("room", "add", "#builds", "--admin-socket", socket).returncode == 0
    made = run_imkit("hook", "add", "#builds", "--name", "ci", "--admin-socket", socket)
    url = made.stdout.splitlines()[1]
    assert url.startswith(web.url + "hooks/"), made.stdout

    page, watch = open_page(browser, web)
    join(page, "alex")
    join_room_on_page(page, "#builds")
    say(page, "from a person")
    log = page.locator(active_log(page))
    expect(log).to_contain_text("from a person")

    body = json.dumps({"text": "nightly build green"}).encode()
    done = subprocess.run(
        curl_args(url, "application/json"), input=body, capture_output=True, timeout=30
    )
    assert parse_curl(done.stdout).status == 200
    posted = log.locator("li.msg", has_text="nightly build green")
    expect(posted.locator(".from")).to_have_text("ci")
    expect(posted.locator(".badge-bot")).to_have_text("bot")
    person = log.locator("li.msg", has_text="from a person")
    expect(person.locator(".badge-bot")).to_have_count(0)
    assert watch.dialogs == [] and watch.errors == []
