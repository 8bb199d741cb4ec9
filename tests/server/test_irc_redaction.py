"""IRC and deleting or editing a message (docs/irc.md, "Deleting and editing"): IRCv3
``draft/message-redaction`` negotiated over a raw socket, REDACT both ways, the NOTICE
an IRC client without the capability gets, and an edit's NOTICE; one server, in process,
beside a JSON user (the cluster's path is the hub's events: tests/behaviour)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imkit.server import Server
from tests.server.test_irc import irc_config
from tests.support import LineClient, json_client, run_server
from tests.support.accounts import add
from tests.support.irc import IrcClient, irc_address

CAPS = ("message-tags", "draft/message-redaction")


@pytest.fixture
async def server(short_dir: Path) -> Any:
    async with run_server(irc_config(short_dir)) as running:
        yield running


async def test_the_capability_is_offered(server: Server) -> None:
    raw = await LineClient.connect(irc_address(server))
    await raw.send("CAP LS 302\r\n")
    offered = await raw.line_matching(r" CAP \* LS ")
    assert "draft/message-redaction" in offered.split()
    await raw.send("CAP REQ :draft/message-redaction\r\n")
    acked = await raw.line_matching(r" CAP \* ")
    assert acked == ":irc.test CAP * ACK draft/message-redaction\r\n"


async def test_redact_deletes_and_is_told_to_each_client_its_way(server: Server) -> None:
    await add(server, "alex", "sesame")
    jay = await json_client(server.addresses[0], "jay")
    alex = await IrcClient.connect(server, "alex", caps=CAPS, sasl=("alex", "sesame"))
    old = await IrcClient.connect(server, "old")  # no capability: a NOTICE
    for client in (alex, old):
        await client.send("JOIN #lobby")
        await client.expect(r" 366 ")
    await alex.send("PRIVMSG #lobby :oops", "PRIVMSG #lobby :kept")
    oops = (await jay.json_of_type("message"))["msgid"]
    kept = (await jay.json_of_type("message"))["msgid"]
    await old.send(f"REDACT #lobby {kept} :not mine")  # a guest, not the author
    refused = await old.expect(r"FAIL REDACT")
    assert refused.startswith(f":irc.test FAIL REDACT REDACT_FORBIDDEN #lobby {kept} :")
    await alex.send("REDACT #lobby 1000000000000001", "REDACT #lobby nonsense")
    for msgid in ("1000000000000001", "nonsense"):
        line = await alex.expect(r"FAIL REDACT")
        assert line.startswith(f":irc.test FAIL REDACT UNKNOWN_MSGID #lobby {msgid} :")
    await alex.send(f"REDACT #elsewhere {oops}", f"REDACT jay {oops}")  # not its channels
    for target in ("#elsewhere", "jay"):
        line = await alex.expect(r"FAIL REDACT")
        assert line.startswith(f":irc.test FAIL REDACT INVALID_TARGET {target} :")
    await alex.send(f"REDACT #lobby {oops} :typo")
    assert await alex.expect(r" REDACT ") == f":alex!~u@127.0.0.1 REDACT #lobby {oops} :typo"
    assert await old.expect(r"deleted message") == (
        f":alex!~u@127.0.0.1 NOTICE #lobby :deleted message {oops}: typo"
    )
    told = await jay.json_of_type("deleted")
    assert told == {
        "type": "deleted",
        "msgid": oops,
        "room": "#lobby",
        "by": "alex",
        "reason": "typo",
    }
    page = await jay.request(type="history")
    assert [m["text"] for m in page["messages"]] == ["kept"]


async def test_json_deletes_and_edits_reach_irc_clients(server: Server) -> None:
    await add(server, "jay", "pw")
    jay = await json_client(server.addresses[0], "guest")
    assert (await jay.request(type="login", name="jay", password="pw"))["type"] == "ok"
    alex = await IrcClient.connect(server, "alex", caps=CAPS)
    await alex.send("JOIN #dev")
    await alex.expect(r" 366 ")
    assert (await jay.request(type="join", room="#dev"))["type"] == "joined"
    sent = await jay.request(type="message", room="#dev", text="buidl")
    assert await alex.expect(r"PRIVMSG #dev") == (
        f"@msgid={sent['msgid']} :jay!~u@127.0.0.1 PRIVMSG #dev :buidl"
    )
    assert (await jay.request(type="edit", msgid=sent["msgid"], text="build"))["type"] == "ok"
    notice = await alex.expect(r"NOTICE #dev")
    assert notice == f":jay!~u@127.0.0.1 NOTICE #dev :edited {sent['msgid']}: build"
    await alex.send("JOIN #lobby")
    await alex.expect(r" 366 ")
    await alex.send(f"REDACT #lobby {sent['msgid']}")  # #dev's message, not #lobby's
    refused = await alex.expect(r"FAIL REDACT")
    assert refused.startswith(f":irc.test FAIL REDACT UNKNOWN_MSGID #lobby {sent['msgid']} :")
    # alex made #dev: its operator deletes jay's message from IRC.
    await alex.send(f"REDACT #dev {sent['msgid']}")
    redact = await alex.expect(r" REDACT ")
    assert redact == f":alex!~u@127.0.0.1 REDACT #dev {sent['msgid']}"
    assert (await jay.json_of_type("deleted"))["by"] == "alex"
