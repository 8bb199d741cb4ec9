"""WHOWAS (imkit.irc.whowas): a node's bounded memory of the nicks its IRC users left,
newest first, and its replies; an IrcConnection tells it of a nick change and of its
end (once)."""

from __future__ import annotations

from imkit.irc.whowas import Was, Whowas, whowas_count, whowas_lines
from imkit.irc.wire import IrcConnection
from imkit.protocol import Bye, NameChange
from imkit.protocol.queries import Answer


def _was(name: str, when: float, ident: str = "~u") -> Was:
    return Was(name, ident, "192.0.2.1", "Real", when)


def test_lookup_is_newest_first_by_name_key_and_counted() -> None:
    memory = Whowas()
    memory.remember(_was("Bob", 1.0, "~one"))
    memory.remember(_was("sam", 2.0))
    memory.remember(_was("bob", 3.0, "~two"))
    assert [w.ident for w in memory.lookup("BOB")] == ["~two", "~one"]
    assert [w.ident for w in memory.lookup("bob", 1)] == ["~two"]
    assert len(memory.lookup("bob", -1)) == len(memory.lookup("bob", 0)) == 2
    assert memory.lookup("nobody") == []
    assert [w.name for w in memory.lookup("j\\2edoe")] == []  # escapes are read back
    memory.remember(_was("j.doe", 4.0))
    assert [w.name for w in memory.lookup("j\\2edoe")] == ["j.doe"]


def test_the_memory_is_bounded_oldest_forgotten_first() -> None:
    memory = Whowas(limit=3)
    for n in range(5):
        memory.remember(_was(f"n{n}", float(n)))
    assert len(memory) == 3
    assert memory.lookup("n1") == [] and memory.lookup("n4") != []


def test_the_replies_and_the_count() -> None:
    text = whowas_lines("irc.test", "me", "bob", [_was("bob", 0.0)])
    assert text.split("\r\n") == [
        ":irc.test 314 me bob ~u 192.0.2.1 * :Real",
        ":irc.test 312 me bob irc.test :Thu Jan 01 00:00:00 1970 UTC",
        ":irc.test 369 me bob :End of WHOWAS",
        "",
    ]
    assert whowas_lines("irc.test", "me", "x", []) == (
        ":irc.test 406 me x :There was no such nickname\r\n:irc.test 369 me x :End of WHOWAS\r\n"
    )
    assert whowas_count("2") == 2 and whowas_count(None) == 0 and whowas_count("x") == 0


def test_a_connection_remembers_the_nicks_it_leaves_once() -> None:
    memory = Whowas()
    clock = iter([10.0, 20.0, 30.0])
    conn = IrcConnection(
        server_name="irc.test",
        lobby="#lobby",
        host="192.0.2.9",
        whowas=memory,
        clock=lambda: next(clock),
    )
    conn.receive_data(b"NICK bob\r\nUSER bobby 0 * :Bob B\r\n")
    conn.name, conn.registered = "bob", True  # as the hub's reply to its registration makes it
    assert len(memory) == 0
    conn.encode(NameChange("bob", "robert", "192.0.2.9:1"))
    assert conn.name == "robert"
    [was] = memory.lookup("bob")
    assert (was.ident, was.host, was.realname, was.when) == ("bobby", "192.0.2.9", "Bob B", 10.0)
    conn.encode(Bye("quit", "bye"))
    conn.gone()  # and the server, when the socket is closed: remembered once
    assert [w.when for w in memory.lookup("robert")] == [20.0]
    [answer] = conn.receive_data(b"WHOWAS robert 1\r\n")
    assert isinstance(answer, Answer)
    assert answer.event.text.startswith(  # type: ignore[attr-defined]
        ":irc.test 314 robert robert bobby 192.0.2.9 * :Bob B\r\n"
    )
