"""Webhooks end to end on one ``imkit serve --db FILE --web`` process: the real ``imkit
hook add|add-outgoing|list|remove`` (their output and exit statuses), the real ``curl``
posting through the URL ``hook add`` printed, and hooks and bot-marked history kept
across a restart (SQLite)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from imkit.rules.hooks import signature_matches
from tests.support import (
    TIMEOUT,
    ServerProcess,
    free_port,
    imkit_env,
    json_client,
    run_imkit,
    start_server_process,
)
from tests.support.hook_receiver import Answer as ReceiverAnswer
from tests.support.hook_receiver import Received, Receiver, receiving
from tests.support.hooks import Answer, post_json


class Served:
    """``imkit serve`` with a database, a web port and an admin socket of its own."""

    def __init__(self, folder: Path) -> None:
        self.socket = folder / "admin.sock"
        self.db = folder / "imkit.db"
        self.web = f"127.0.0.1:{free_port()}"
        self.process = self._start()

    def _start(self) -> ServerProcess:
        return start_server_process(
            *("--idle-timeout", "0", "--rate", "0", "--db", str(self.db), "--web", self.web),
            *("--admin-socket", str(self.socket)),
        )

    def restart(self) -> None:
        assert self.process.stop() == 0, self.process.stderr()
        self.process = self._start()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_imkit(*args, "--admin-socket", str(self.socket))

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout


@pytest.fixture
def served(short_dir: Path) -> Iterator[Served]:
    server = Served(short_dir)
    yield server
    server.process.stop()


async def test_hook_add_list_remove_and_a_restart(served: Served) -> None:
    refused = served.cli("hook", "add", "#ops")
    assert refused.returncode == 1
    assert "#ops is not a registered room: register it first (imkit room add #ops)" in (
        refused.stderr
    )
    served.ok("room", "add", "#ops")
    made = served.ok("hook", "add", "#ops", "--name", "ci").splitlines()
    assert made[0] == "incoming hook ci added to #ops"
    found = re.fullmatch(rf"http://{re.escape(served.web)}/hooks/([A-Za-z0-9_-]{{43}})", made[1])
    assert found is not None, made
    key = found.group(1)
    again = served.cli("hook", "add", "#ops", "--name", "CI")
    assert again.returncode == 1 and "there is a hook named ci" in again.stderr
    out = served.ok("hook", "add-outgoing", "#ops", "http://127.0.0.1:9/bot", "--trigger", "Deploy")
    assert (
        out.splitlines()[0]
        == "outgoing hook outgoing added to #ops: POSTs to http://127.0.0.1:9/bot"
    )
    secret = out.splitlines()[1].removeprefix("secret: ")
    assert len(secret) == 43

    listed = json.loads(served.ok("hook", "list", "--json"))
    kinds = [(h["name"], h["kind"]) for h in listed]
    assert kinds == [("ci", "incoming"), ("outgoing", "outgoing")]
    outgoing = listed[1]
    assert outgoing["url"] == "http://127.0.0.1:9/bot" and outgoing["triggers"] == ["deploy"]
    assert (outgoing["queued"], outgoing["delivered"], outgoing["failed"]) == (0, 0, 0)
    table = served.ok("hook", "list")
    assert table.splitlines()[0].split() == [
        "NAME", "KIND", "ROOM", "URL/OPTIONS", "QUEUED", "DELIVERED", "FAILED", "ERROR"
    ]  # fmt: skip
    for shown in (table, json.dumps(listed), served.process.stderr()):
        assert key not in shown and secret not in shown

    url = f"http://{served.web}/hooks/{key}"
    assert (await post_json(url, {"text": "kept across restarts"})).status == 200
    served.restart()  # the hook and its message are in the file
    assert (await post_json(url, {"text": "after the restart"})).status == 200
    reader = await json_client(served.process.address, "reader")
    assert (await reader.request(type="join", room="#ops"))["type"] == "joined"
    page = await reader.request(type="history", room="#ops")
    assert [(m["from"], m["text"], m.get("bot")) for m in page["messages"]] == [
        ("ci", "kept across restarts", True),
        ("ci", "after the restart", True),
    ]
    assert served.ok("hook", "remove", "CI") == "hook ci removed\n"
    assert (await post_json(url, {"text": "gone"})).status == 404
    missing = served.cli("hook", "remove", "ci")
    assert missing.returncode == 1 and "there is no hook named ci" in missing.stderr
    assert key not in served.process.stderr()


def test_a_hooks_name_is_a_name_and_no_accounts(served: Served) -> None:
    served.ok("room", "add", "#ops")
    added = run_imkit(
        "account", "add", "sam", "--password-stdin", "--admin-socket", str(served.socket),
        stdin="a password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    taken = served.cli("hook", "add", "#ops", "--name", "Sam")
    assert taken.returncode == 1 and "Sam is an account's name" in taken.stderr
    bad = served.cli("hook", "add", "#ops", "--name", "two words")
    assert bad.returncode == 1 and "cannot be a hook's name" in bad.stderr
    lobby = served.cli("hook", "add", "#lobby")
    assert lobby.returncode == 1 and "is the lobby" in lobby.stderr
    url = served.cli("hook", "add-outgoing", "#ops", "ftp://x/")
    assert url.returncode == 1 and "URL is http:// or https://" in url.stderr
    secret = served.cli("hook", "add-outgoing", "#ops", "http://user:pw@127.0.0.1:9/")
    assert secret.returncode == 1 and "may not carry a user name or password" in secret.stderr
    assert served.cli("hook", "list").returncode == 0


def test_completion_offers_the_hook_subcommands() -> None:
    result = run_imkit(
        env=imkit_env(_IMKIT_COMPLETE="bash_complete", COMP_WORDS="imkit hook a", COMP_CWORD="2")
    )
    assert result.stdout.splitlines() == ["plain,add", "plain,add-outgoing"]


async def test_a_store_that_cannot_write_answers_503_and_posts_nothing(served: Served) -> None:
    served.ok("room", "add", "#ops")
    url = served.ok("hook", "add", "#ops").splitlines()[1]
    member = await json_client(served.process.address, "jo")
    assert (await member.request(type="join", room="#ops"))["type"] == "joined"
    assert (await post_json(url, {"text": "stored"})).status == 200
    assert (await member.json_of_type("message"))["text"] == "stored"
    served.db.unlink()  # the writer's file check finds it within a second, and fails
    # A POST whose message was delivered while the writer found the file gone is
    # answered 503 "delivered but not stored"; once the store's trouble is known, the
    # next is refused before anyone sees it.
    refused_before = "the message was not posted: "
    seen: list[tuple[str, Answer]] = []
    with anyio.fail_after(15):
        while not seen or not seen[-1][1].body.startswith(refused_before):
            await anyio.sleep(0.2)
            text = f"try {len(seen)}"
            seen.append((text, await post_json(url, {"text": text})))
    assert seen[-1][1].status == 503
    for _, answer in seen[:-1]:
        assert answer.status == 200 or answer.body.startswith(
            "the message was delivered but not stored: "
        ), answer
    delivered = [text for text, _ in seen[:-1]]
    got = [(await member.json_of_type("message"))["text"] for _ in delivered]
    assert got == delivered  # what was refused never reached the room
    assert await member.silent()


async def test_an_outgoing_hook_made_with_the_cli_posts_signed_and_its_reply_is_posted(
    served: Served,
) -> None:
    """The wiring end to end: `imkit hook add-outgoing` on a running server; a message
    whose first word is the trigger is POSTed, signed with the secret printed; the
    receiver's reply is posted back into the room as the hook (a bot, not POSTed again);
    `imkit hook list` counts the delivery."""
    served.ok("room", "add", "#ops")

    def answer(request: Received) -> ReceiverAnswer:
        return 200, json.dumps({"text": f"on it: {request.json['text']}"}).encode()

    async with receiving(Receiver(answer=answer)) as receiver:
        out = served.ok("hook", "add-outgoing", "#ops", receiver.url, "--name", "bot",
                        "--trigger", "deploy")  # fmt: skip
        secret = out.splitlines()[1].removeprefix("secret: ")
        sam = await json_client(served.process.address, "sam")
        assert (await sam.request(type="join", room="#ops"))["type"] == "joined"
        for text in ("hello", "Deploy now"):
            assert (await sam.request(type="message", room="#ops", text=text))["type"] == "ok"
        (request,) = await receiver.until(1)
        assert signature_matches(secret, request.body, request.headers["x-imkit-signature"])
        assert (request.json["room"], request.json["name"], request.json["text"]) == (
            "#ops", "sam", "Deploy now"
        )  # fmt: skip
        with anyio.fail_after(TIMEOUT):
            while (reply := await sam.json_of_type("message")).get("from") != "bot":
                pass
        assert (reply["text"], reply["bot"], reply["room"]) == ("on it: Deploy now", True, "#ops")
        await anyio.sleep(0.5)  # a reply that triggered the hook would be POSTed by now
        assert len(receiver.requests) == 1
    listed = json.loads(served.ok("hook", "list", "--json"))
    assert [(h["name"], h["delivered"], h["failed"]) for h in listed] == [("bot", 1, 0)]
