"""``imkit serve --irc`` on a cluster node (docs/irc.md): an IRC user on node 1 and a
netcat user on node 2 talk in public (the lobby), in private and in a room; WHOIS, WHO,
ISON and USERHOST see the users of every node; a NOTICE stays a NOTICE across nodes; an
IRC user is announced to no lobby until it joins #lobby."""

from __future__ import annotations

import base64
import re

import anyio

from tests.support import LineClient, joined
from tests.support.cluster import Cluster, Node, add_account


def irc_address(node: Node) -> str:
    found = re.search(r"IRC on irc://(\S+) as", node.wait_log("IRC on irc://"))
    assert found is not None
    return found.group(1)


class RawIrc:
    def __init__(self, client: LineClient) -> None:
        self.client = client

    @classmethod
    async def register(cls, node: Node, nick: str, user: str, real: str) -> RawIrc:
        irc = cls(await LineClient.connect(irc_address(node)))
        await irc.send(f"NICK {nick}", f"USER {user} 0 * :{real}")
        await irc.expect(rf" 001 {nick} ")
        return irc

    async def until(self, pattern: str) -> list[str]:
        """Every line up to and including the first that matches ``pattern``."""
        lines = []
        while True:
            line = (await self.client.line()).rstrip("\r\n")
            lines.append(line)
            if re.search(pattern, line):
                return lines

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


async def test_whois_who_ison_and_userhost_see_every_node(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0", "--password-hash-cost", "4")
    alex = await RawIrc.register(one, "alex", "alexu", "Alex Real")
    sam = await RawIrc.register(two, "sam", "samu", "Sam Real")
    tee = await joined(two.address, "tee")  # a netcat user, in the lobby
    await sam.send("JOIN #builds", "AWAY :at lunch")
    await sam.expect(r" 366 sam #builds ")
    await sam.expect(r" 306 sam ")
    await sam.send("WHOIS sam")  # through Redis after its AWAY: that is kept now
    await sam.expect(r" 318 sam ")
    await alex.send("JOIN #builds")
    await alex.expect(r" 366 alex #builds ")

    await alex.send("WHOIS sam,nobody")
    whois = await alex.until(r" 318 alex ")
    assert whois[0].split(" ", 1)[1] == "311 alex sam samu 127.0.0.1 * :Sam Real"
    codes = [line.split()[1] for line in whois]
    assert codes == ["311", "319", "312", "301", "401", "318"], whois  # no 317: idle is node two's
    assert whois[1].endswith(" 319 alex sam :@#builds")  # its channel, as its operator
    assert whois[3].endswith(" 301 alex sam :at lunch")

    await alex.send("WHOIS alex")  # one of this node's own: its idle time too
    mine = await alex.until(r" 318 alex ")
    assert [line.split()[1] for line in mine] == ["311", "319", "312", "317", "318"], mine

    await alex.send("WHO #builds")
    who = await alex.until(r" 315 alex ")
    assert [line.split()[7] for line in who[:-1]] == ["sam", "alex"], who  # order of joining
    assert who[0].split()[3:9] == ["#builds", "samu", "127.0.0.1", who[0].split()[6], "sam", "G@"]
    assert who[0].endswith(":0 Sam Real")

    await alex.send("WHO sam")
    who = await alex.until(r" 315 alex ")
    assert len(who) == 2 and who[0].split()[7] == "sam", who

    await alex.send("WHO #lobby")  # the netcat user is in the lobby; sam is not
    who = await alex.until(r" 315 alex ")
    assert [line.split()[7] for line in who[:-1]] == ["tee"], who

    await alex.send("WHO *")
    who = await alex.until(r" 315 alex ")
    assert sorted(line.split()[7] for line in who[:-1]) == ["alex", "sam", "tee"], who

    await alex.send("ISON sam tee nobody alex")
    assert (await alex.expect(r" 303 ")).endswith(" 303 alex :sam tee alex")
    await alex.send("USERHOST sam tee")
    assert (await alex.expect(r" 302 ")).endswith(
        " 302 alex :sam=-samu@127.0.0.1 tee=+~u@127.0.0.1"
    )

    await sam.send("AWAY", "PART #builds")
    await sam.expect(r" 305 sam ")
    await sam.expect(r" PART #builds")
    await alex.expect(r":sam!\S+ PART #builds")
    await alex.send("USERHOST sam", "WHOIS sam")
    assert (await alex.expect(r" 302 ")).endswith(" 302 alex :sam=+samu@127.0.0.1")
    whois = await alex.until(r" 318 alex ")
    assert [line.split()[1] for line in whois] == ["311", "312", "318"], whois
    await tee.send("who\n")
    assert await tee.line_matching("tee:online") == f"[{tee.addr}]tee:online...\n"

    # A SASL login before NICK and USER: what it said after is kept too.
    await add_account(two, "kim", "sesame")
    kim = RawIrc(await LineClient.connect(irc_address(two)))
    blob = base64.b64encode(b"\0kim\0sesame").decode()
    await kim.send("CAP REQ :sasl", "AUTHENTICATE PLAIN")
    await kim.expect(r"^AUTHENTICATE \+")
    await kim.send(f"AUTHENTICATE {blob}", "NICK x", "USER kimu 0 * :Kim Real", "CAP END")
    registration = await kim.until(r" 001 ")  # the login answered first, then the welcome
    assert " 001 kim " in registration[-1], registration
    assert [line.split()[1] for line in registration[-3:-1]] == ["900", "903"], registration
    await kim.send("WHOIS kim")  # through Redis after its registration's
    await kim.expect(r" 318 kim ")
    await alex.send("WHOIS kim")
    whois = await alex.until(r" 318 alex ")
    assert whois[0].split(" ", 1)[1] == "311 alex kim kimu 127.0.0.1 * :Kim Real", whois
    assert any(line.endswith(" 330 alex kim kim :is logged in as") for line in whois), whois


async def test_a_notice_stays_a_notice_across_nodes(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0")
    alex = await RawIrc.register(one, "alex", "alex", "Alex")
    sam = await RawIrc.register(two, "sam", "sam", "Sam")
    tee = await joined(two.address, "tee")
    await sam.send("JOIN #lobby,#builds")
    await sam.expect(r" 366 sam #builds ")
    await alex.send("JOIN #lobby,#builds")
    await alex.expect(r" 366 alex #builds ")
    await sam.expect(r":alex!\S+ JOIN #builds")

    await alex.send("NOTICE sam :private notice", "NOTICE tee :to netcat")
    assert await sam.expect("private notice") == ":alex!~u@127.0.0.1 NOTICE sam :private notice"
    assert await tee.line_matching("to netcat") == "alex say: to netcat\n"
    await alex.send("NOTICE #lobby :lobby notice", "NOTICE #builds :room notice")
    assert await sam.expect("lobby notice") == ":alex!~u@127.0.0.1 NOTICE #lobby :lobby notice"
    assert await sam.expect("room notice") == ":alex!~u@127.0.0.1 NOTICE #builds :room notice"
    assert (await tee.line_matching("lobby notice")).endswith("alex:lobby notice\n")
    await alex.send("PRIVMSG sam :and a privmsg")  # a message is still a message
    assert await sam.expect("a privmsg") == ":alex!~u@127.0.0.1 PRIVMSG sam :and a privmsg"


async def test_an_irc_user_is_told_to_no_lobby_until_it_joins(cluster: Cluster) -> None:
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0")
    tee = await joined(two.address, "tee")
    watcher = await RawIrc.register(two, "watcher", "w", "W")
    await watcher.send("JOIN #lobby")
    await watcher.expect(r" 366 watcher #lobby ")
    ghost = await RawIrc.register(one, "ghost", "g", "Ghost")  # never joins the lobby
    await ghost.send("QUIT :gone")
    await ghost.expect("^ERROR")
    alex = await RawIrc.register(one, "alex", "a", "Alex")
    await alex.send("JOIN #lobby")
    await alex.expect(r" 366 alex #lobby ")
    await alex.send("PRIVMSG #lobby :first words", "QUIT :bye")
    # Everything tee and watcher are told, in the cluster's one order: alex joining the
    # lobby, its message, its leaving; nothing of ghost, nor of alex coming online or
    # being renamed before it joined.
    seen: list[str] = []
    while not seen or "user offline" not in seen[-1]:
        seen.append(await tee.line())
    assert len(seen) == 4, seen
    assert re.fullmatch(r"#lobby \* watcher \[127\.0\.0\.1:\d+\] has joined\n", seen[0]), seen
    assert re.fullmatch(r"#lobby \* alex \[127\.0\.0\.1:\d+\] has joined\n", seen[1]), seen
    assert seen[2].endswith("alex:first words\n"), seen
    assert re.fullmatch(r"\[127\.0\.0\.1:\d+\]alex:user offline\n", seen[3]), seen
    lines = await watcher.until(r"QUIT")
    assert [line.split()[1] for line in lines] == ["JOIN", "PRIVMSG", "QUIT"], lines
    assert lines[0].startswith(":alex!~u@127.0.0.1 JOIN #lobby"), lines


async def test_ban_and_invite_exceptions_across_two_nodes(cluster: Cluster) -> None:
    """A channel operator on node 1 sets +b, +e, +i and +I; a user on node 2 is kept out
    and let in by them (the cluster's scripts decide, as one server's rules do)."""
    one, two = cluster.start_nodes(2, "--irc", "127.0.0.1:0")
    op = await RawIrc.register(one, "chanop", "chanop", "chanop")
    await op.send("JOIN #chan")
    await op.expect(r" 366 chanop #chan ")
    bar = await RawIrc.register(two, "Bar", "Bar", "Bar")
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
    bob = await RawIrc.register(one, "bob", "bob", "bob")
    await bob.send("QUIT :bye")
    await bob.expect(r"^ERROR ")
    here = await RawIrc.register(one, "here", "here", "here")
    there = await RawIrc.register(two, "there", "there", "there")
    await here.send("WHOWAS bob")
    assert (await here.expect(r" (314|406) ")).endswith(" 314 here bob bob 127.0.0.1 * :bob")
    await there.send("WHOWAS bob")
    assert (await there.expect(r" (314|406) ")).endswith(
        " 406 there bob :There was no such nickname"
    )
