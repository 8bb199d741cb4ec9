"""``imkit serve --irc``: IRC clients in the same chat as text and JSON users (one
server, in process; docs/irc.md). The IRC side is a raw socket client
(tests/support/irc.py); the conformance suite (irctest) is run by tests/irc."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from imkit.irc.names import shown
from imkit.server import Server, ServerConfig
from tests.support import ask, joined, json_client, run_server
from tests.support.accounts import add
from tests.support.accounts import config as accounts_config
from tests.support.irc import IrcClient, irc_address


def irc_config(short_dir: Path, **extra: Any) -> ServerConfig:
    return accounts_config(short_dir, irc=("127.0.0.1:0",), server_name="irc.test", **extra)


@pytest.fixture
async def server(short_dir: Path) -> Any:
    async with run_server(irc_config(short_dir)) as running:
        yield running


async def test_irc_text_and_json_users_talk_in_the_lobby_and_in_private(server: Server) -> None:
    address = server.addresses[0]
    text = await joined(address)
    js = await json_client(address, "jay")
    alex = await IrcClient.connect(server, "alex")
    await alex.send("JOIN #lobby")
    names = await alex.expect(r" 353 ")
    assert shown(text.addr) in names.split() or f":{shown(text.addr)}" in names
    assert "jay" in names and "alex" in names
    await text.line_matching(r"#lobby \* alex .* has joined")
    await alex.send("PRIVMSG #lobby :hello from irc")
    assert (await text.line_matching("hello from irc")).endswith("alex:hello from irc\n")
    message = await js.json_of_type("message")
    assert (message["from"], message["text"], message["room"]) == (
        "alex",
        "hello from irc",
        "#lobby",
    )
    assert message["msgid"]
    await text.send("public line from netcat\n")
    line = await alex.expect("public line from netcat")
    assert line == f":{shown(text.addr)}!~u@127.0.0.1 PRIVMSG #lobby :public line from netcat"
    await js.request(type="message", to="alex", text="psst")
    assert await alex.expect("psst") == ":jay!~u@127.0.0.1 PRIVMSG alex :psst"
    await alex.send("PRIVMSG jay :back to you")
    reply = await js.json_of_type("message")
    assert (reply["from"], reply["to"], reply["text"]) == ("alex", "jay", "back to you")
    await alex.send(f"PRIVMSG {shown(text.addr)} :to netcat")
    assert await text.line_matching("to netcat") == "alex say: to netcat\n"


async def test_a_room_with_irc_and_text_members(server: Server) -> None:
    address = server.addresses[0]
    text = await joined(address)
    alex = await IrcClient.connect(server, "alex")
    await alex.send("JOIN #builds")
    assert await alex.expect(r"JOIN") == ":alex!~u@127.0.0.1 JOIN #builds"
    assert (await alex.expect(r" 353 ")).endswith(":@alex")
    await text.send("join|#builds\n")
    await alex.expect(rf"^:{re.escape(shown(text.addr))}!~u@127.0.0.1 JOIN #builds$")
    await alex.send("TOPIC #builds :nightly is green", "MODE #builds +m")
    await text.line_matching(r"#builds \* alex set the topic: nightly is green")
    await text.line_matching(r"#builds \* alex set mode \+m")
    await text.send("to|#builds|can I speak?\n")
    assert "moderated" in await text.line_matching("error")
    await alex.send(f"MODE #builds +v {shown(text.addr)}")
    await alex.expect(rf"MODE #builds \+v {re.escape(shown(text.addr))}")
    await text.send("to|#builds|now I can\n")
    await alex.expect(r"PRIVMSG #builds :now I can$")
    await alex.send(f"KICK #builds {shown(text.addr)} :enough")
    await text.line_matching(r"#builds \* .* was kicked by alex: enough")


async def test_exceptions_set_from_irc_reach_a_text_user_and_their_lists(server: Server) -> None:
    """+e and +I set by an IRC operator are the room's masks for everyone: a text user is
    told of them and let in; a full list is IRC's 478."""
    text = await joined(server.addresses[0], "bart")
    op = await IrcClient.connect(server, "chanop")
    await op.send("JOIN #r", "MODE #r +bi *!*@*")
    await op.expect(r"MODE #r \+bi \*!\*@\*$")
    await op.send("MODE #r +eI b*!*@* bar?!*@*")
    await op.expect(r"MODE #r \+eI b\*!\*@\* bar\?!\*@\*$")
    await text.send("join|#r\n")
    assert await text.line_matching(r"^#r ") == "#r * you have joined #r\n"
    await op.expect(r"bart!~u@127.0.0.1 JOIN #r$")
    await op.send("MODE #r +e", "MODE #r +I")
    assert [await op.line() for _ in range(4)] == [
        ":irc.test 348 chanop #r b*!*@*",
        ":irc.test 349 chanop #r :End of channel exception list",
        ":irc.test 346 chanop #r bar?!*@*",
        ":irc.test 347 chanop #r :End of channel invite exception list",
    ]
    masks = [f"n{k}!*@*" for k in range(99)]  # and bar?: 100, the most
    for start in range(0, 99, 10):  # MODES=10 a line
        some = masks[start : start + 10]
        await op.send(f"MODE #r +{'I' * len(some)} {' '.join(some)}")
    await op.send("MODE #r +I one!*@*", "MODE #r +I")
    await op.expect(r"MODE #r \+IIIIIIIII n90!\*@\* ")
    assert await op.expect(r" 478 ") == ":irc.test 478 chanop #r I :Channel list is full"


async def test_a_netcat_users_long_line_reaches_an_irc_user_in_several_privmsgs(
    server: Server,
) -> None:
    """A text-mode line may be longer than an IRC line: it arrives as several PRIVMSGs
    of at most 512 bytes, cut after a space or between characters, whose texts joined
    are the line, in order."""
    text = await joined(server.addresses[0], "tee")
    alex = await IrcClient.connect(server, "alex")
    await alex.send("JOIN #lobby")
    await alex.expect(r" 366 alex #lobby ")
    said = " ".join(f"wörd{n}" for n in range(200)) + "🙂" * 150  # 1199 + 600 bytes
    await text.send(said + "\n")
    await text.send("to|alex|" + "ü" * 700 + "\n")  # no space: cut between characters
    received = ""
    while received != said:
        line = await alex.expect(r" PRIVMSG #lobby :")
        assert len(line.encode()) + 2 <= 512 and line.startswith(":tee!~u@127.0.0.1 PRIVMSG")
        received += line.partition(" PRIVMSG #lobby :")[2]
        assert said.startswith(received)
    private = [await alex.expect(r" PRIVMSG alex :") for _ in range(3)]
    assert "".join(p.partition(" PRIVMSG alex :")[2] for p in private) == "ü" * 700
    assert all(len(p.encode()) + 2 <= 512 for p in private)


async def test_whowas_tells_of_the_nicks_irc_users_left(server: Server) -> None:
    alex = await IrcClient.connect(server, "alex")
    await alex.send("NICK alexis")
    await alex.expect(r"NICK :?alexis$")
    bob = await IrcClient.connect(server, "bob")
    await bob.send("QUIT :bye")
    await bob.expect(r"^ERROR ")
    asker = await IrcClient.connect(server, "asker")
    await asker.send("WHOWAS alex", "WHOWAS bob 1", "WHOWAS nobody")
    lines = [await asker.line() for _ in range(8)]
    assert lines[0] == ":irc.test 314 asker alex alex 127.0.0.1 * :Real alex"
    assert lines[1].startswith(":irc.test 312 asker alex irc.test :")
    assert lines[2] == ":irc.test 369 asker alex :End of WHOWAS"
    assert lines[3] == ":irc.test 314 asker bob bob 127.0.0.1 * :Real bob"
    assert lines[5:] == [
        ":irc.test 369 asker bob :End of WHOWAS",
        ":irc.test 406 asker nobody :There was no such nickname",
        ":irc.test 369 asker nobody :End of WHOWAS",
    ]


async def test_nicks_taken_invalid_and_renamed(server: Server) -> None:
    await IrcClient.connect(server, "alex")
    other = await IrcClient.connect(server, "sam")
    await other.send("NICK ALEX")
    assert " 433 sam ALEX " in await other.expect(r" 43\d ")
    await other.send("NICK 9lives")
    assert " 432 sam 9lives " in await other.expect(r" 43\d ")
    await other.send("NICK samuel")
    assert await other.expect("NICK") == ":sam!~u@127.0.0.1 NICK samuel"
    client = await LineClientFor(server)
    await client.send("NICK alex\r\nUSER a 0 * :A\r\n")
    assert " 433 * alex " in await client.line_matching(" 433 ")


async def LineClientFor(server: Server, address: str | None = None) -> Any:  # noqa: N802
    from tests.support import LineClient

    return await LineClient.connect(address or irc_address(server))


async def test_sasl_plain_logs_in_to_an_account(server: Server) -> None:
    await add(server, "alex", "sesame")
    js = await json_client(server.addresses[0], "jay")
    alex = await IrcClient.connect(
        server, "whatever", caps=("server-time",), sasl=("alex", "sesame")
    )
    await alex.send("WHOIS alex")
    assert " 330 alex alex alex " in await alex.expect(r" 330 ")
    await js.request(type="message", to="alex", text="hi account")
    assert "PRIVMSG alex :hi account" in await alex.expect("hi account")
    bad = await LineClientFor(server)
    await bad.send("CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n")
    await bad.line_matching("AUTHENTICATE")
    await bad.send("AUTHENTICATE AGFsZXgAd3Jvbmc=\r\n")  # \0alex\0wrong
    assert " 904 " in await bad.line_matching(" 90")


async def test_bad_input_is_answered_and_harms_nobody(server: Server) -> None:
    text = await joined(server.addresses[0])
    alex = await IrcClient.connect(server, "alex")
    await alex.send("PRIVMSG #lobby :" + "x" * 600)
    assert " 417 " in await alex.expect(r" 417 ")
    await alex.client.send(b"PRIVMSG alex :\xff\xfe\r\n")
    assert "FAIL * INVALID_UTF8" in await alex.expect("FAIL")
    await alex.send("FROBNICATE now")
    assert " 421 alex FROBNICATE " in await alex.expect(" 421 ")
    await alex.send("PRIVMSG", "JOIN", "KICK #x", "MODE #x +z")
    assert " 411 " in await alex.expect(" 411 ")
    await alex.send(*(f"PRIVMSG {shown(text.addr)} :flood {i}" for i in range(300)))
    await text.line_matching("flood 299", timeout=20)
    await alex.sync()  # still served
    await text.send("who\n")
    assert (await text.line()).startswith(f"[{text.addr}]")  # alex is in no channel


async def test_quit_and_the_administrators_kick(server: Server) -> None:
    alex = await IrcClient.connect(server, "alex")
    sam = await IrcClient.connect(server, "sam")
    await alex.send("JOIN #r")
    await alex.expect(" 366 ")
    await sam.send("JOIN #r")
    await alex.expect("JOIN #r")
    await sam.send("QUIT :gone fishing")
    assert await alex.expect("QUIT") == ":sam!~u@127.0.0.1 QUIT :Quit: gone fishing"
    reply = await ask(server, type="kick", name="alex", reason="spam")
    assert reply["type"] == "ok", reply
    assert "KILL alex" in await alex.expect("KILL")
    assert (await alex.expect("^ERROR")).endswith("spam)")


async def test_tls_on_the_irc_port(short_dir: Path, tls_files: dict[str, str]) -> None:
    import ssl

    import anyio

    config = irc_config(short_dir, tls_cert=tls_files["cert"], tls_key=tls_files["key"])
    async with run_server(config) as server:
        host, port = irc_address(server).rsplit(":", 1)
        context = ssl.create_default_context(cafile=tls_files["ca"])
        stream = await anyio.connect_tcp(
            host, int(port), ssl_context=context, tls_standard_compatible=False
        )
        await stream.send(b"NICK secure\r\nUSER s 0 * :S\r\n")
        data = b""
        with anyio.fail_after(5):
            while b" 001 " not in data:
                data += await stream.receive()
        assert b":irc.test 001 secure " in data
        await stream.aclose()


async def test_chathistory_of_a_room_and_of_the_lobby(server: Server) -> None:
    alex = await IrcClient.connect(
        server, "alex", caps=("batch", "draft/chathistory", "message-tags")
    )
    await alex.send("JOIN #builds")
    await alex.expect(" 366 ")
    text = await joined(server.addresses[0])
    await text.send("join|#builds\n")
    await alex.expect("JOIN #builds")
    for number in range(5):
        await text.send(f"to|#builds|line {number}\n")
    await alex.expect("line 4")
    await alex.send("CHATHISTORY LATEST #builds * 3")
    start = await alex.expect("BATCH")
    ref = start.split()[2][1:]
    assert start == f":irc.test BATCH +{ref} chathistory #builds"
    lines = [await alex.line() for _ in range(4)]
    assert [line.rsplit(":", 1)[1] for line in lines[:3]] == ["line 2", "line 3", "line 4"]
    assert all(
        f"batch={ref}" in line and "msgid=" in line and "time=" in line for line in lines[:3]
    )
    assert lines[3] == f":irc.test BATCH -{ref}"
    msgid = lines[0].split("msgid=")[1].split(";")[0].split(" ")[0]
    await alex.send(f"CHATHISTORY BEFORE #builds msgid={msgid} 10")
    await alex.expect(r"BATCH \+")
    before = [await alex.line() for _ in range(3)]
    assert [line.rsplit(":", 1)[1] for line in before[:2]] == ["line 0", "line 1"]
    await alex.send(f"CHATHISTORY AFTER #builds msgid={msgid} 1")
    await alex.expect(r"BATCH \+")
    assert (await alex.line()).endswith(":line 3")
    await text.send("in the lobby\n")
    await alex.send("CHATHISTORY LATEST #lobby * 10")
    await alex.expect(r"BATCH \+")
    assert (await alex.line()).endswith("PRIVMSG #lobby :in the lobby")
    await alex.send("CHATHISTORY LATEST #elsewhere * 10")
    assert "FAIL CHATHISTORY INVALID_TARGET" in await alex.expect("FAIL")


async def test_who_and_stats_count_irc_users(server: Server) -> None:
    await joined(server.addresses[0])
    await IrcClient.connect(server, "alex")
    users = (await ask(server, type="who"))["users"]
    assert [u["mode"] for u in users] == ["text", "irc"]
    assert (await ask(server, type="stats"))["users_irc"] == 1


async def test_hidden_addresses_are_hidden_from_irc_users_too(short_dir: Path) -> None:
    async with run_server(irc_config(short_dir, hide_addresses=True)) as server:
        text = await LineClientFor(server, server.addresses[0])
        assert "user is online" in await text.line()
        alex = await IrcClient.connect(server, "alex")
        await alex.send("JOIN #lobby", "WHOIS alex")
        joined_line = await alex.expect("JOIN #lobby")
        assert "127.0.0.1" not in joined_line and "@anon:" in joined_line
        assert "127.0.0.1" not in await alex.expect(" 311 ")
        await text.send("hi\n")
        said = await alex.expect("PRIVMSG #lobby :hi")
        assert "127.0.0.1" not in said and said.startswith(":anon\\3a")


async def test_a_full_server_refuses_an_irc_client_with_an_irc_error(short_dir: Path) -> None:
    async with run_server(irc_config(short_dir, max_clients=1)) as server:
        await IrcClient.connect(server, "alex")
        late = await LineClientFor(server)
        assert (await late.line()).startswith("ERROR :")


async def test_an_account_is_put_back_in_its_rooms_after_the_welcome(server: Server) -> None:
    await add(server, "alex", "sesame")
    first = await IrcClient.connect(server, "x", sasl=("alex", "sesame"))
    await first.send("JOIN #builds")
    await first.expect(" 366 ")
    await first.send("QUIT")
    await first.expect("^ERROR")
    again = await LineClientFor(server)
    blob = "AGFsZXgAc2VzYW1l"  # \0alex\0sesame
    await again.send("CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n")
    await again.line_matching("AUTHENTICATE")
    await again.send(f"AUTHENTICATE {blob}\r\nNICK alex\r\nUSER a 0 * :A\r\nCAP END\r\n")
    order: list[str] = []
    while not order or " JOIN " not in order[-1]:
        line = await again.line()
        order.append(line)
    assert any(" 001 " in line for line in order[:-1])
    assert any(" 422 " in line for line in order[:-1])
    assert order[-1].startswith(":alex!~u@127.0.0.1 JOIN #builds")


async def test_chathistory_of_a_conversation_between_accounts(server: Server) -> None:
    await add(server, "alex", "sesame")
    await add(server, "sam", "sesame")
    caps = ("batch", "draft/chathistory")
    alex = await IrcClient.connect(server, "alex", caps=caps, sasl=("alex", "sesame"))
    sam = await IrcClient.connect(server, "sam", caps=caps, sasl=("sam", "sesame"))
    await alex.send("PRIVMSG sam :first", "PRIVMSG sam :second")
    await sam.expect("second")
    await sam.send("CHATHISTORY LATEST alex * 10")
    await sam.expect(r"BATCH \+")
    lines = [await sam.line() for _ in range(3)]
    assert [line.rsplit(":", 1)[1] for line in lines[:2]] == ["first", "second"]
    assert lines[2].endswith("BATCH -" + lines[0].split("batch=")[1].split(";")[0].split(" ")[0])


async def test_a_quiet_irc_client_is_pinged_before_it_is_dropped(short_dir: Path) -> None:
    async with run_server(irc_config(short_dir, idle_timeout=0.6)) as server:
        alex = await IrcClient.connect(server, "alex")
        assert await alex.expect("^PING", timeout=3) == "PING :irc.test"
        await alex.send("PONG :irc.test")
        assert await alex.expect("^PING", timeout=3) == "PING :irc.test"  # answered: kept
        assert "(Ping timeout)" in await alex.expect("^ERROR", timeout=3)
