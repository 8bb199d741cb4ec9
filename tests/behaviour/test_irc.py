"""IRC clients (``--irc``, docs/irc.md) on both backends: one node, and two nodes
through Redis (the second connection on the other node)."""

from __future__ import annotations

import re

from imkit.server import Server
from tests.behaviour.conftest import Chat
from tests.support import joined, json_client
from tests.support.irc import IrcClient
from tests.support.names import _add_account


async def test_an_account_put_back_in_its_rooms_gets_their_names(irc_chat: Chat) -> None:
    """At a SASL login an account is put back in its rooms: JOIN, then (no topic set)
    353 with the room's members, then 366, as after a JOIN of its own."""
    first_node: Server = irc_chat.servers[0]
    other_node: Server = irc_chat.servers[-1]
    assert (await _add_account(first_node, "alex", "sesame"))["type"] == "ok"
    sam = await IrcClient.connect(other_node, "sam")
    await sam.send("JOIN #builds")
    await sam.expect(r" 366 sam #builds ")
    alex = await IrcClient.connect(first_node, "x", sasl=("alex", "sesame"))
    await alex.send("JOIN #builds")
    await alex.expect(r" 366 alex #builds ")
    await alex.send("QUIT")
    await alex.expect("^ERROR")
    await sam.expect(r"^:alex!\S+ QUIT")

    again = await IrcClient.connect(other_node, "x", sasl=("alex", "sesame"))
    lines = [await again.line()]
    while " 366 " not in lines[-1]:
        lines.append(await again.line())
    lines += await again.sync()  # and nothing of it again
    joined = [i for i, line in enumerate(lines) if " JOIN #builds" in line]
    assert len(joined) == 1, lines
    after = lines[joined[0] :]
    assert after[0].startswith(":alex!~u@127.0.0.1 JOIN #builds"), lines
    assert after[1].split()[1:5] == ["353", "alex", "=", "#builds"], lines
    assert sorted(after[1].split(" :", 1)[1].split()) == ["@sam", "alex"], lines
    assert after[2].split()[1:4] == ["366", "alex", "#builds"], lines
    assert sum(" 353 " in line for line in lines) == 1, lines
    assert sum(" 366 " in line for line in lines) == 1, lines
    await sam.expect(r"^:alex!\S+ JOIN #builds")


async def _until(client: IrcClient, pattern: str) -> list[str]:
    """Every line up to and including the first that matches ``pattern``."""
    lines = [await client.line()]
    while not re.search(pattern, lines[-1]):
        lines.append(await client.line())
    return lines


async def test_a_login_is_told_to_the_irc_clients_that_share_a_channel_and_asked(
    irc_chat: Chat,
) -> None:
    """account-notify: a JSON user already online logs in; each IRC client that
    negotiated the capability and shares the lobby or a room with it gets one ``ACCOUNT``
    under its new name, after the NICK; one without the capability, or sharing no
    channel, gets none. On two nodes the login is on the other node than ``shared``."""
    first_node: Server = irc_chat.servers[0]
    other_node: Server = irc_chat.servers[-1]
    assert (await _add_account(first_node, "alex", "sesame"))["type"] == "ok"
    caps = ("account-notify",)
    shared = await IrcClient.connect(first_node, "shared", caps=caps)  # #lobby and #builds
    apart = await IrcClient.connect(first_node, "apart", caps=caps)  # neither
    plain = await IrcClient.connect(other_node, "plain")  # #lobby and #builds, no cap
    roomy = await IrcClient.connect(other_node, "roomy", caps=caps)  # #builds only
    await shared.send("JOIN #lobby,#builds")
    await shared.expect(r" 366 shared #builds ")
    await apart.send("JOIN #elsewhere")
    await apart.expect(r" 366 apart #elsewhere ")
    await plain.send("JOIN #lobby,#builds")
    await plain.expect(r" 366 plain #builds ")
    await roomy.send("JOIN #builds")
    await roomy.expect(r" 366 roomy #builds ")
    guest = await json_client(irc_chat.address(1), "guest")
    assert (await guest.request(type="join", room="#builds"))["type"] == "joined"
    for client in (shared, plain, roomy):
        await client.expect(r"^:guest!\S+ JOIN #builds")

    reply = await guest.request(type="login", name="alex", password="sesame")
    assert reply["type"] == "ok" and reply["account"] == "alex"
    # A lobby message after the login: every node has applied the login when it comes.
    assert (await guest.request(type="message", text="marker"))["type"] == "ok"

    seen = await _until(shared, r"PRIVMSG #lobby :marker$")
    accounts = [line for line in seen if " ACCOUNT " in line]
    assert accounts == [":alex!~u@127.0.0.1 ACCOUNT alex"], seen
    nick = seen.index(":guest!~u@127.0.0.1 NICK alex")
    assert nick < seen.index(accounts[0]), seen
    seen = await _until(plain, r"PRIVMSG #lobby :marker$")
    assert ":guest!~u@127.0.0.1 NICK alex" in seen, seen
    assert not [line for line in seen if " ACCOUNT " in line], seen
    # plain's node (the login's) and shared's node have applied it: roomy, apart next.
    seen = await roomy.sync()
    assert [line for line in seen if " ACCOUNT " in line] == [":alex!~u@127.0.0.1 ACCOUNT alex"], (
        seen
    )
    assert [line for line in await apart.sync() if "alex" in line] == []


async def test_a_text_users_login_is_told_once_and_a_login_again_not_at_all(
    irc_chat: Chat,
) -> None:
    """account-notify for a netcat user's ``login|``, in the lobby alone; logging in
    again to the same account changes nothing, so nothing is told."""
    assert (await _add_account(irc_chat.servers[0], "sam", "pw"))["type"] == "ok"
    watcher = await IrcClient.connect(irc_chat.servers[0], "watcher", caps=("account-notify",))
    await watcher.send("JOIN #lobby")
    await watcher.expect(r" 366 watcher #lobby ")
    text = await joined(irc_chat.address(1), "tee")
    await watcher.expect(r" NICK tee$")
    await text.send("login|sam|pw\n")
    assert await text.line() == "you have logged in as sam\n"
    await text.send("login|sam|pw\n")
    assert await text.line() == "you have logged in as sam\n"
    await text.send("marker\n")
    seen = await _until(watcher, r"PRIVMSG #lobby :marker$")
    assert seen == [
        ":tee!~u@127.0.0.1 NICK sam",
        ":sam!~u@127.0.0.1 ACCOUNT sam",
        ":sam!~u@127.0.0.1 PRIVMSG #lobby :marker",
    ], seen
