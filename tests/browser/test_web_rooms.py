"""Rooms on the web page (issue 28, docs/rooms.md, docs/web.md "Rooms") in a real
browser: Debian's chromium driven by Playwright, against `imkit serve --web` in a
subprocess (one node, then two nodes of a cluster on a real redis-server), with JSON
Lines clients on the chat port beside it.

The page, the server and the browser are the ones tests/browser/test_web_browser.py
uses (its helpers are imported from there); the TCP side is a blocking socket for the
same reason: Playwright's sync API runs its own event loop."""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
from playwright.sync_api import (  # noqa: E402
    Browser,
    Locator,
    Page,
    expect,
)

from tests.browser.test_web_browser import (  # noqa: E402
    TIMEOUT_MS,
    Watch,
    WebServer,
    active_log,
    add_account,
    join,
    open_page,
    say,
)
from tests.support import split_addr  # noqa: E402
from tests.support.cluster import Cluster, RedisServer  # noqa: E402

TIMEOUT = 10.0
Event = dict[str, Any]


class JsonClient:
    """A JSON Lines client on the chat port: blocking; the events that are not replies
    are kept (in order) for the test to look through."""

    _ids = itertools.count(1)

    def __init__(self, address: str, name: str) -> None:
        host, port = split_addr(address)
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buffer = b""
        self.events: list[Event] = []
        welcome = self.request(type="hello", v=1, name=name)
        assert welcome["type"] == "welcome", welcome
        self.name = welcome["name"]

    def _next(self, deadline: float) -> Event:
        """The next JSON object from the server (text lines are skipped)."""
        while True:
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                if raw.startswith(b"{"):
                    value = json.loads(raw)
                    assert isinstance(value, dict)
                    return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"nothing more came; events so far: {self.events}")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"closed; events so far: {self.events}")
            self.buffer += data

    def request(self, **fields: Any) -> Event:
        """Send a request; its reply (other objects are kept as events)."""
        fields["id"] = f"t{next(self._ids)}"
        self.sock.sendall(json.dumps(fields).encode() + b"\n")
        deadline = time.monotonic() + TIMEOUT
        while True:
            value = self._next(deadline)
            if value.get("id") == fields["id"]:
                return value
            self.events.append(value)

    def ok(self, **fields: Any) -> Event:
        reply = self.request(**fields)
        assert reply["type"] != "error", reply
        return reply

    def event(self, match: Callable[[Event], bool], timeout: float = TIMEOUT) -> Event:
        """The first kept or coming event that MATCH accepts (taken out of the list)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for n in range(seen, len(self.events)):
                if match(self.events[n]):
                    return self.events.pop(n)
            seen = len(self.events)
            self.events.append(self._next(deadline))

    def close(self) -> None:
        self.sock.close()


def message_with(text: str) -> Callable[[Event], bool]:
    return lambda event: event.get("type") == "message" and event.get("text") == text


def join_room_on_page(page: Page, room: str) -> None:
    """The sidebar's field and button; the room is then the one shown."""
    page.locator("#room-name").fill(room)
    page.locator("#room-join button").click()
    expect(page.locator("#rooms button", has_text=room)).to_be_visible()
    expect(page.locator("#pane-title")).to_have_text(room)
    expect(page.locator("#room-name")).to_have_value("")


def room_button(page: Page, room: str) -> Locator:
    return page.locator("#rooms button", has_text=room)


def everyone(page: Page) -> Locator:
    return page.locator("#conversations button", has_text="Everyone")


def assert_clean(watch: Watch) -> None:
    assert watch.dialogs == []
    assert watch.foreign == [], "the page must make no request to another host"
    assert watch.errors == []


def test_a_room_in_the_sidebar_unread_topic_members_and_sending(
    browser: Browser, web: WebServer
) -> None:
    address = f"127.0.0.1:{web.port}"
    sam = JsonClient(address, "sam")
    joined = sam.ok(type="join", room="#builds")
    assert joined["type"] == "joined" and joined["room"] == "#builds", joined
    sam.ok(type="topic", room="#builds", topic="nightly builds")
    lobbyist = JsonClient(address, "lobbyist")  # in the lobby only

    page, watch = open_page(browser, web)
    join(page, "alex")
    expect(page.locator("#rooms-section")).to_be_visible()  # the welcome lists "rooms"
    expect(page.locator("#no-rooms")).to_be_visible()
    # The join field suggests the rooms the server lists (not the lobby: it is Everyone).
    page.locator("#room-name").focus()
    expect(page.locator("#room-suggestions option")).to_have_count(1)
    expect(page.locator("#room-suggestions option")).to_have_attribute("value", "#builds")
    expect(page.locator("#room-suggestions option")).to_have_attribute(
        "label", "1 member: nightly builds"
    )
    join_room_on_page(page, "#builds")
    expect(page.locator("#no-rooms")).to_be_hidden()
    # The topic from the `joined` reply, the members from `who`.
    expect(page.locator("#topic")).to_have_text("nightly builds")
    members = page.locator("#members")
    expect(members).to_contain_text("sam")
    expect(members).to_contain_text("alex")
    expect(members.locator("li", has_text="sam").locator(".role")).to_have_text("op")
    expect(page.locator("#members-title")).to_have_text("Members of #builds")
    expect(page.locator("#text")).to_be_focused()
    sam.event(lambda e: e["type"] == "join" and e.get("name") == "alex")

    # Sending in the room reaches its member, not a client that is in the lobby only.
    say(page, "the build is green")
    expect(page.locator(active_log(page))).to_contain_text("the build is green")
    got = sam.event(message_with("the build is green"))
    assert got["room"] == "#builds" and got["from"] == "alex" and got["to"] is None, got
    lobbyist.ok(type="message", text="lobby marker")
    marker = lobbyist.event(message_with("lobby marker"))
    assert marker.get("room", "#lobby") == "#lobby", marker
    assert not any(e.get("text") == "the build is green" for e in lobbyist.events)
    # ...and the lobby's message is in Everyone, not in the room.
    expect(everyone(page).locator(".unread")).to_have_text("1")
    expect(page.locator(active_log(page))).not_to_contain_text("lobby marker")

    # Messages into a room that is not shown count as unread; showing it resets that.
    everyone(page).click()
    expect(page.locator("#pane-title")).to_have_text("Everyone")
    expect(page.locator("#room-info")).to_be_hidden()
    expect(page.locator("#members-section")).to_be_hidden()
    expect(page.locator(active_log(page))).to_contain_text("lobby marker")
    sam.ok(type="message", room="#builds", text="first while away")
    expect(room_button(page, "#builds").locator(".unread")).to_have_text("1")
    sam.ok(type="message", room="#builds", text="second while away")
    expect(room_button(page, "#builds").locator(".unread")).to_have_text("2")
    expect(page).to_have_title("(2) imkit")
    expect(page.locator(active_log(page))).not_to_contain_text("while away")
    room_button(page, "#builds").click()
    expect(page.locator("#pane-title")).to_have_text("#builds")
    expect(room_button(page, "#builds").locator(".unread")).to_have_count(0)
    expect(page).to_have_title("imkit")
    log = page.locator(active_log(page))
    expect(log).to_contain_text("first while away")
    expect(log).to_contain_text("second while away")

    # The topic: live from `topic` events, shown as text; the page's own form is refused
    # while the room is topic-locked (+t) and alex is not an operator, then works.
    payload = "<img src=x onerror=alert(1)> nightly"
    sam.ok(type="topic", room="#builds", topic=payload)
    expect(page.locator("#topic")).to_have_text(payload)
    page.locator("#topic-text").fill("alex's topic")
    page.locator("#topic-text").press("Enter")
    expect(page.locator("#topic-error")).to_contain_text("not_room_operator")
    expect(page.locator("#topic")).to_have_text(payload)
    sam.ok(type="mode", room="#builds", changes="-t")
    page.locator("#topic-form button").click()
    expect(page.locator("#topic")).to_have_text("alex's topic")
    expect(page.locator("#topic-error")).to_have_text("")
    topic = sam.event(lambda e: e["type"] == "topic" and e.get("topic") == "alex's topic")
    assert topic["room"] == "#builds" and topic["by"] == "alex", topic

    # Members come and go: a join, a part, a kick.
    kim = JsonClient(address, "kim")
    kim.ok(type="join", room="#builds")
    expect(members).to_contain_text("kim")
    expect(log).to_contain_text("kim has joined")
    kim.ok(type="part", room="#builds", reason="lunch")
    expect(members).not_to_contain_text("kim")
    expect(log).to_contain_text("kim has left: lunch")
    lee = JsonClient(address, "lee")
    lee.ok(type="join", room="#builds")
    expect(members).to_contain_text("lee")
    sam.ok(type="kick", room="#builds", name="lee", reason="flooding")
    expect(members).not_to_contain_text("lee")
    expect(log).to_contain_text("lee was removed by sam: flooding")

    # A refused join is said under the field, which keeps what was typed.
    page.locator("#room-name").fill("#no/slash")
    page.locator("#room-name").press("Enter")
    expect(page.locator("#room-error")).to_contain_text("bad_room_name")
    expect(page.locator("#room-name")).to_have_value("#no/slash")
    expect(page.locator("#pane-title")).to_have_text("#builds")

    # Leaving: the room goes from the sidebar, Everyone is shown, the members are told.
    page.locator("#room-leave").click()
    expect(room_button(page, "#builds")).to_have_count(0)
    expect(page.locator("#pane-title")).to_have_text("Everyone")
    expect(page.locator(active_log(page))).to_contain_text("You left #builds.")
    sam.event(lambda e: e["type"] == "part" and e.get("name") == "alex")
    sam.ok(type="message", room="#builds", text="after alex left")
    lobbyist.ok(type="message", text="second marker")
    expect(page.locator(active_log(page))).to_contain_text("second marker")
    expect(page.locator("#logs")).not_to_contain_text("after alex left")

    assert page.locator("img").count() == 0
    time.sleep(0.3)  # an onerror would have fired by now
    assert_clean(watch)
    for client in (sam, lobbyist, kim, lee):
        client.close()


def test_a_kicked_page_leaves_the_room_and_says_why(browser: Browser, web: WebServer) -> None:
    sam = JsonClient(f"127.0.0.1:{web.port}", "sam")
    sam.ok(type="join", room="#ops")
    page, watch = open_page(browser, web)
    join(page, "pat")
    join_room_on_page(page, "#ops")
    sam.event(lambda e: e["type"] == "join" and e.get("name") == "pat")
    sam.ok(type="kick", room="#ops", name="pat", reason="<b>enough</b>")
    expect(room_button(page, "#ops")).to_have_count(0)
    expect(page.locator("#pane-title")).to_have_text("Everyone")
    expect(page.locator(active_log(page))).to_contain_text(
        "You were removed from #ops by sam: <b>enough</b>"
    )
    assert page.locator("b").count() == 0
    assert_clean(watch)
    sam.close()


def test_an_account_is_put_back_in_its_rooms_at_login(browser: Browser, web: WebServer) -> None:
    add_account(web, "robin", "robin-secret")
    sam = JsonClient(f"127.0.0.1:{web.port}", "sam")
    sam.ok(type="join", room="#deploys")
    first, _ = open_page(browser, web)
    first.locator("#login-name").fill("robin")
    first.locator("#login-password").fill("robin-secret")
    first.locator("#login-password").press("Enter")
    expect(first.locator("#status")).to_have_text("you are robin (logged in)")
    join_room_on_page(first, "#deploys")
    sam.event(lambda e: e["type"] == "join" and e.get("name") == "robin")
    first.context.close()
    sam.event(lambda e: e.get("type") in ("presence", "part") and e.get("name") == "robin")
    sam.ok(type="message", room="#deploys", text="said while robin was away")

    # A new browser: the server puts the account back in #deploys (`joined` without an
    # id), the sidebar shows it, and its history has what was said meanwhile.
    page, watch = open_page(browser, web)
    page.locator("#login-name").fill("robin")
    page.locator("#login-password").fill("robin-secret")
    page.locator("#login-password").press("Enter")
    expect(page.locator("#status")).to_have_text("you are robin (logged in)")
    expect(room_button(page, "#deploys")).to_be_visible()
    sam.ok(type="message", room="#deploys", text="live after the login")
    expect(room_button(page, "#deploys").locator(".unread")).to_have_text("1")
    room_button(page, "#deploys").click()
    log = page.locator(active_log(page))
    expect(log).to_contain_text("said while robin was away")
    expect(log).to_contain_text("live after the login")
    expect(page.locator("#members")).to_contain_text("sam")
    say(page, "robin is back")
    sam.event(message_with("robin is back"))
    assert_clean(watch)
    sam.close()


def test_a_guest_page_joins_its_rooms_again_after_a_restart(
    browser: Browser, web: WebServer
) -> None:
    page, _ = open_page(browser, web)
    join(page, "stayer")
    join_room_on_page(page, "#night")
    web.stop()
    expect(page.locator("#banner")).to_contain_text("Reconnecting in")
    expect(room_button(page, "#night")).to_contain_text("(not joined)")
    web.start()
    expect(page.locator("#status")).to_have_text("you are stayer", timeout=20_000)
    expect(room_button(page, "#night")).not_to_contain_text("(not joined)")
    sam = JsonClient(f"127.0.0.1:{web.port}", "sam")
    sam.ok(type="join", room="#night")
    say(page, "back in the room")
    got = sam.event(message_with("back in the room"))
    assert got["room"] == "#night", got
    sam.close()


def test_a_lobby_named_by_the_server_is_everyone(browser: Browser, short_dir: Path) -> None:
    """`--lobby '#main'`: the welcome does not name the lobby; the page learns it from
    `rooms` (the lobby first), and joining it shows Everyone rather than a second
    entry."""
    web = WebServer(short_dir / "admin.sock", "--lobby", "#main")
    try:
        sam = JsonClient(f"127.0.0.1:{web.port}", "sam")
        page, watch = open_page(browser, web)
        join(page, "newcomer")
        join_room_on_page(page, "#side")
        page.locator("#room-name").fill("#Main")
        page.locator("#room-name").press("Enter")
        expect(page.locator("#pane-title")).to_have_text("Everyone")
        expect(page.locator("#rooms button")).to_have_count(1)
        sam.ok(type="message", text="in the main lobby")
        sam.ok(type="message", room="#main", text="to the lobby by its name")
        log = page.locator(active_log(page))
        expect(log).to_contain_text("in the main lobby")
        expect(log).to_contain_text("to the lobby by its name")
        assert_clean(watch)
        sam.close()
    finally:
        web.stop()


# ------------------------------------------------------------------- two nodes


@pytest.fixture
def two_nodes(redis_server: RedisServer, short_dir: Path) -> Iterator[tuple[str, str, str]]:
    """Two `imkit serve --cluster` nodes, the first with the page: (its URL, the chat
    address of node 1, that of node 2)."""
    cluster = Cluster(redis_server, short_dir)
    try:
        one, two = cluster.start_nodes(2, "--web", "127.0.0.1:0")
        found = re.search(r"web on http://(\S+)/", one.wait_log("web on http://"))
        assert found is not None
        yield f"http://{found.group(1)}/", one.address, two.address
    finally:
        cluster.stop()


def test_a_room_across_two_nodes(browser: Browser, two_nodes: tuple[str, str, str]) -> None:
    url, _, node_two = two_nodes
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch = Watch(page, url.rstrip("/"))
    page.goto(url)
    join(page, "webby")
    join_room_on_page(page, "#cross")
    far = JsonClient(node_two, "far")
    far.ok(type="join", room="#cross")
    expect(page.locator("#members")).to_contain_text("far")
    # Node 2 into the room: on the page on node 1, unread while Everyone is shown.
    everyone(page).click()
    far.ok(type="message", room="#cross", text="from node two")
    expect(room_button(page, "#cross").locator(".unread")).to_have_text("1")
    room_button(page, "#cross").click()
    expect(page.locator(active_log(page))).to_contain_text("from node two")
    # And back: the page on node 1 to the member on node 2.
    say(page, "from node one")
    got = far.event(message_with("from node one"))
    assert got["room"] == "#cross" and got["from"] == "webby", got
    assert_clean(watch)
    far.close()
