"""The pure parts of IRC on a cluster and around registration (docs/irc.md): the names
sent when an account is put back in its rooms, a WHOIS of another node's user (no idle
time), what an IRC client's record in Redis says of it, and ClusterLink.after's order
(no Redis: the write loop's answering step alone)."""

from __future__ import annotations

from typing import Any

from imkit.cluster.link import ClusterLink
from imkit.cluster.people import about
from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.irc.wire import IrcConnection
from imkit.protocol import Joined, RenameOk, ServerConnection, UserInfo, UserList
from imkit.protocol.queries import Counts, Lusers, People, Person, Register, Whois


def wire() -> IrcConnection:
    return IrcConnection(server_name="irc.test", lobby="#lobby", host="10.0.0.1")


def test_a_room_an_account_is_put_back_in_at_login_comes_with_its_names() -> None:
    conn = wire()
    commands = conn.receive_data(b"NICK alex\r\nUSER a 0 * :A\r\n")
    register = next(c for c in commands if isinstance(c, Register))
    lusers = next(c for c in commands if isinstance(c, Lusers))
    # A SASL login puts the account back in #builds before the welcome: held until then.
    users = (UserInfo("sam", "10.0.0.2", None, True), UserInfo("alex", "10.0.0.1", "alex"))
    assert conn.encode(Joined(None, "#builds", "the topic", "+nt", 2)) == b""
    assert conn.encode(UserList(None, users, "#builds")) == b""
    welcome = conn.encode(RenameOk(register.id, "alex")).decode()
    assert " 001 alex " in welcome and " JOIN " not in welcome
    after = conn.encode(Counts(lusers.id, 2, 2, 2)).decode().splitlines()
    start = next(i for i, text in enumerate(after) if " JOIN " in text)
    assert after[start:] == [
        ":alex!~u@10.0.0.1 JOIN #builds",
        ":irc.test 332 alex #builds :the topic",
        ":irc.test 353 alex = #builds :@sam alex",
        ":irc.test 366 alex #builds :End of /NAMES list",
    ]
    assert any(" 422 " in text for text in after[:start])  # after the MOTD
    # Once welcomed, the same comes at once, and the names list once.
    assert conn.encode(Joined(None, "#ops", None, "+nt", 1)).decode().splitlines() == [
        ":alex!~u@10.0.0.1 JOIN #ops"
    ]
    names = conn.encode(UserList(None, users[1:], "#ops")).decode().splitlines()
    assert [text.split()[1] for text in names] == ["353", "366"]


def test_a_whois_of_another_nodes_user_has_no_idle_time() -> None:
    conn = wire()
    register = next(c for c in conn.receive_data(b"NICK alex\r\nUSER a 0 * :A\r\n"))
    assert isinstance(register, Register)
    conn.encode(RenameOk(register.id, "alex"))
    (ask,) = conn.receive_data(b"WHOIS sam,tee\r\n")
    assert isinstance(ask, Whois)
    remote = Person("sam", "10.0.0.2", None, "samu", "Sam", None, None, 1000.0, ("@#b",))
    here = Person("tee", "10.0.0.3", None, None, None, None, 5.0, 1000.0)
    lines = conn.encode(People(ask.id, ask.names, (remote, here))).decode().splitlines()
    codes = [text.split()[1] for text in lines]
    assert codes == ["311", "319", "312", "311", "312", "317", "318"], lines
    assert lines[5] == ":irc.test 317 alex tee 5 1000 :seconds idle, signon time"


def member(hub: Hub, conn: Any) -> Member:
    return hub.new_member("10.0.0.1:5", conn, Outbox(1 << 20), now=0.0)


def test_what_a_users_record_in_redis_says_of_it() -> None:
    hub = Hub(wall_clock=lambda: 0.0)
    text = member(hub, ServerConnection())
    assert about(text) is None  # in the lobby, nothing IRC: nothing added to its record
    irc = member(hub, wire())
    irc.in_lobby = False  # an IRC client starts in no channel
    assert about(irc) == {"lobby": False}
    irc.ident, irc.realname, irc.away, irc.modes = "alexu", "Alex", "lunch", "iw"
    assert about(irc) == {
        "lobby": False,
        "ident": "alexu",
        "realname": "Alex",
        "away": "lunch",
        "modes": "iw",
    }
    irc.in_lobby, irc.away = True, None
    assert about(irc) == {"ident": "alexu", "realname": "Alex", "away": "", "modes": "iw"}


async def test_after_comes_after_every_command_asked_before() -> None:
    link = ClusterLink("redis://127.0.0.1:1", name="t")
    order: list[str] = []
    link.after(lambda: order.append("at once"))  # nothing asked: called now
    assert order == ["at once"]
    link.call(("GET", "a"), lambda reply: order.append(f"a={reply}"))
    link.after(lambda: order.append("after a"))
    link.call(("GET", "b"), lambda reply: order.append(f"b={reply}"))
    link.after(lambda: order.append("after b"))
    assert order == ["at once"]  # waiting for the replies
    batch, link._pending = link._pending, []
    assert [args for args, _ in batch] == [("GET", "a"), (), ("GET", "b"), ()]
    link._answer(batch, iter(["1", "2"]))
    assert order == ["at once", "a=1", "after a", "b=2", "after b"]


async def test_after_while_a_batch_is_in_flight_wakes_the_writer() -> None:
    """A mark asked for while the writer waits on Redis, with nothing queued behind it,
    is taken as soon as that batch is answered: not left until the next command."""
    link = ClusterLink("redis://127.0.0.1:1", name="t")
    link._writing = True  # the write loop is awaiting a pipeline's replies
    link.after(lambda: None)
    assert link._wanted.is_set() and [args for args, _ in link._pending] == [()]
