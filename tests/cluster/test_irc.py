"""``imkit serve --irc`` on a cluster node (docs/irc.md): an IRC user on node 1 and a
netcat user on node 2 talk in public (the lobby), in private and in a room."""

from __future__ import annotations

import re

import anyio

from tests.support import LineClient, joined
from tests.support.cluster import Cluster


class RawIrc:
    def __init__(self, client: LineClient) -> None:
        self.client = client

    async def send(self, *lines: str) -> None:
        await self.client.send("".join(f"{line}\r\n" for line in lines))

    async def expect(self, pattern: str) -> str:
        while True:
            line = (await self.client.line()).rstrip("\r\n")
            if re.search(pattern, line):
                return line


async def test_an_irc_user_and_a_netcat_user_on_two_nodes(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0")
    found = re.search(r"IRC on irc://(\S+) as", one.wait_log("IRC on irc://"))
    assert found is not None
    text = await joined(two.address, "tee")
    irc = RawIrc(await LineClient.connect(found.group(1)))
    await irc.send("NICK alex", "USER alex 0 * :Alex")
    await irc.expect(r" 001 alex ")
    await irc.send("PING sync")
    await irc.expect("PONG")
    await text.send("who\n")  # an IRC user is in no channel, the lobby neither
    listed = []
    with anyio.move_on_after(1):
        while True:
            listed.append(await text.line())
    assert any(line.endswith("tee:online...\n") for line in listed), listed
    assert not any(line.endswith("alex:online...\n") for line in listed), listed
    await irc.send("JOIN #lobby")
    await irc.expect(r" 366 alex #lobby ")
    await irc.send("PRIVMSG #lobby :hello from irc on node one")
    assert (await text.line_matching("hello from irc")).endswith(
        "alex:hello from irc on node one\n"
    )
    await text.send("hello from netcat on node two\n")
    assert (await irc.expect("hello from netcat")).endswith(
        "PRIVMSG #lobby :hello from netcat on node two"
    )
    await text.send("to|alex|psst\n")
    assert (await irc.expect("psst")) == ":tee!~u@127.0.0.1 PRIVMSG alex :psst"
    await irc.send("PRIVMSG tee :psst back")
    assert await text.line_matching("psst back") == "alex say: psst back\n"
    await irc.send("JOIN #builds")
    await irc.expect(r" 366 alex #builds ")
    await text.send("join|#builds\n")
    await irc.expect(r"tee!~u@127.0.0.1 JOIN #builds")
    await text.send("to|#builds|room line\n")
    assert (await irc.expect("room line")).endswith("PRIVMSG #builds :room line")
    await irc.send("PRIVMSG #builds :room reply")
    await text.line_matching("room reply")
    with anyio.fail_after(5):
        await irc.send("QUIT :bye")
        await text.line_matching(r"alex")


async def test_an_irc_users_private_message_is_echoed_on_a_cluster(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0")
    found = re.search(r"IRC on irc://(\S+) as", one.wait_log("IRC on irc://"))
    assert found is not None
    text = await joined(two.address, "tee")
    irc = RawIrc(await LineClient.connect(found.group(1)))
    await irc.send("CAP REQ echo-message", "NICK alex", "USER alex 0 * :Alex", "CAP END")
    await irc.expect(r" 001 alex ")
    await irc.send("PRIVMSG tee :echo me")
    assert await text.line_matching("echo me") == "alex say: echo me\n"
    assert (await irc.expect("echo me")) == ":alex!~u@127.0.0.1 PRIVMSG tee :echo me"


async def _irc_user(address: str, nick: str) -> RawIrc:
    irc = RawIrc(await LineClient.connect(address))
    await irc.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    await irc.expect(rf" 001 {nick} ")
    return irc


async def test_ban_and_invite_exceptions_across_two_nodes(cluster: Cluster) -> None:
    """A channel operator on node 1 sets +b, +e, +i and +I; a user on node 2 is kept out
    and let in by them (the cluster's scripts decide, as one server's rules do)."""
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0")
    addresses = []
    for node in (one, two):
        found = re.search(r"IRC on irc://(\S+) as", node.wait_log("IRC on irc://"))
        assert found is not None
        addresses.append(found.group(1))
    op = await _irc_user(addresses[0], "chanop")
    await op.send("JOIN #chan")
    await op.expect(r" 366 chanop #chan ")
    bar = await _irc_user(addresses[1], "Bar")
    await op.send("MODE #chan +b ba*!*@*")
    await op.expect(r"MODE #chan \+b ba\*!\*@\*$")
    await bar.send("JOIN #chan")
    await bar.expect(r" 474 Bar #chan ")
    await op.send("MODE #chan +e *ar!*@*")
    await op.expect(r"MODE #chan \+e \*ar!\*@\*$")
    await bar.send("JOIN #chan")
    await bar.expect(r"^:Bar!\S+ JOIN #chan")
    await bar.send("PART #chan")
    await op.send("MODE #chan -b+i ba*!*@*")
    await op.expect(r"MODE #chan -b\+i ba\*!\*@\*$")
    await bar.send("JOIN #chan")
    await bar.expect(r" 473 Bar #chan ")
    await op.send("MODE #chan +I bar!*@*", "MODE #chan +I", "MODE #chan +e")
    await op.expect(r"MODE #chan \+I bar!\*@\*$")
    assert (await op.expect(r" 34[67] ")).endswith(" 346 chanop #chan bar!*@*")
    assert " 347 chanop #chan " in await op.expect(r" 34[67] ")
    assert (await op.expect(r" 34[89] ")).endswith(" 348 chanop #chan *ar!*@*")
    assert " 349 chanop #chan " in await op.expect(r" 34[89] ")
    await bar.send("JOIN #chan")
    await bar.expect(r"^:Bar!\S+ JOIN #chan")


async def test_whowas_is_each_nodes_own(cluster: Cluster) -> None:
    """WHOWAS answers from the memory of the node the asker is on (docs/irc.md): the
    nick an IRC user of node 1 left is known there, not on node 2."""
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0")
    addresses = []
    for node in (one, two):
        found = re.search(r"IRC on irc://(\S+) as", node.wait_log("IRC on irc://"))
        assert found is not None
        addresses.append(found.group(1))
    bob = await _irc_user(addresses[0], "bob")
    await bob.send("QUIT :bye")
    await bob.expect(r"^ERROR ")
    here = await _irc_user(addresses[0], "here")
    there = await _irc_user(addresses[1], "there")
    await here.send("WHOWAS bob")
    assert (await here.expect(r" (314|406) ")).endswith(" 314 here bob bob 127.0.0.1 * :bob")
    await there.send("WHOWAS bob")
    assert (await there.expect(r" (314|406) ")).endswith(
        " 406 there bob :There was no such nickname"
    )
