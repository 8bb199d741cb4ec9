"""Deleting and editing a message on the web page (docs/web.md, "Deleting and editing")
in a real browser: Debian's chromium driven by Playwright, against `imkit serve --web`
in a subprocess (tests/browser/test_web_browser.py's helpers), with a netcat client on
the chat port beside it. The author edits and deletes from its own line's buttons; the
other page changes the line in place; an administrator's `imkit history delete` too."""

from __future__ import annotations

import os

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
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.browser.test_web_browser import (  # noqa: E402
    TIMEOUT_MS,
    WebServer,
    add_account,
    join,
    log_in,
    netcat,
    say,
)
from tests.support import run_imkit  # noqa: E402


def _page(browser: Browser, web: WebServer) -> Page:
    # Not test_web_browser.open_page: its watch dismisses every dialog, and these
    # buttons ask (prompt, confirm).
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(web.url)
    return page


def _line(page: Page, text: str) -> str:
    return f'#logs .log:not([hidden]) li.msg:has-text("{text}")'


def test_the_author_edits_and_deletes_the_others_see_it_in_place(
    browser: Browser, web: WebServer
) -> None:
    add_account(web, "alice", "alice-secret")
    alice = _page(browser, web)
    log_in(alice, "alice", "alice-secret")
    expect(alice.locator("#status")).to_have_text("you are alice (logged in)")
    bob = _page(browser, web)
    join(bob, "bob")
    nc = netcat(web, "tee")
    say(alice, "deploy faild")
    say(alice, "my password is hunter2")
    say(alice, "the admin takes this")
    for text in ("deploy faild", "hunter2", "the admin takes this"):
        expect(bob.locator(_line(bob, text))).to_be_visible()
    assert bob.locator(".msg-actions").count() == 0  # a guest's page offers none

    first = alice.locator(_line(alice, "deploy faild"))
    first.hover()
    alice.once("dialog", lambda dialog: dialog.accept("deploy failed"))
    first.locator(".msg-edit").click()
    edited = bob.locator(_line(bob, "deploy failed"))
    expect(edited.locator(".edited")).to_have_text(" (edited)")
    assert nc.line_matching("edited message").endswith(": deploy failed")

    second = alice.locator(_line(alice, "hunter2"))
    msgid = second.get_attribute("data-msgid")
    second.hover()
    alice.once("dialog", lambda dialog: dialog.accept())
    second.locator(".msg-delete").click()
    gone = bob.locator(f'li.msg[data-msgid="{msgid}"]')
    expect(gone).to_have_class("msg deleted")
    expect(gone.locator(".text")).to_have_text("deleted by alice")
    expect(alice.locator(f'li.msg[data-msgid="{msgid}"] .text')).to_have_text("deleted by alice")
    assert nc.line_matching("deleted message") == f"#lobby * alice deleted message {msgid}"
    assert "hunter2" not in bob.locator("#logs").inner_text()

    third = bob.locator(_line(bob, "the admin takes this"))
    admin_msgid = third.get_attribute("data-msgid")
    assert admin_msgid is not None
    result = run_imkit("history", "delete", admin_msgid, "--admin-socket", str(web.admin_socket))
    assert result.returncode == 0, result.stderr
    taken = bob.locator(f'li.msg[data-msgid="{admin_msgid}"] .text')
    expect(taken).to_have_text("deleted by an administrator")

    # A page opened now gets history as it is: the edit, without the deleted lines.
    later = _page(browser, web)
    join(later, "later")
    expect(later.locator(_line(later, "deploy failed")).locator(".edited")).to_be_visible()
    expect(later.locator("#logs")).not_to_contain_text("hunter2")
    expect(later.locator("#logs")).not_to_contain_text("the admin takes this")
    nc.close()
