"""IRC clients (``--irc``, docs/irc.md) on both backends: one node, and two nodes
through Redis (the second connection on the other node)."""

from __future__ import annotations

from imkit.server import Server
from tests.behaviour.conftest import Chat
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
