"""The IRC wire without sockets (imkit.irc): lines, nicks, registration, IRC commands
into the hub's, the hub's events and replies as IRC lines, and a broadcast rendered once
per form. The last tests drive a real Hub with IRC, text and JSON members."""

from __future__ import annotations

import json

import pytest

from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.irc import render as render_module
from imkit.irc.message import BadMessage, escape_tag, line, parse, unescape_tag
from imkit.irc.names import ban_mask, host, irc_mask, nick_problem, shown, unescaped
from imkit.irc.numerics import ISUPPORT
from imkit.irc.wire import IrcConnection
from imkit.protocol import (
    ChatMessage,
    Command,
    Frame,
    JoinRoom,
    Mode,
    PrivateMessage,
    Rename,
    RoomMessage,
    ServerConnection,
    Topic,
    Who,
)
from imkit.protocol.queries import AccountChanged, Answer, Lusers, Quit, Register


def wire(host_: str = "127.0.0.1") -> IrcConnection:
    return IrcConnection(server_name="irc.test", lobby="#lobby", host=host_, created="now")


def feed(conn: IrcConnection, *lines: str) -> list[Command]:
    return conn.receive_data("".join(f"{text}\r\n" for text in lines).encode())


def answered(commands: list[Command]) -> str:
    """What the wire answered itself, as text."""
    out = []
    for command in commands:
        assert isinstance(command, Answer)
        out.append(command.event.text)  # type: ignore[attr-defined]
    return "".join(out)


# --------------------------------------------------------------------- lines


def test_a_line_with_tags_a_source_and_a_trailing_parameter() -> None:
    message = parse(r"@time=x;+a=b\sc :nick!u@h PRIVMSG #chan :hello  there")
    assert message.tags == {"time": "x", "+a": "b c"}
    assert message.source == "nick!u@h"
    assert message.command == "PRIVMSG"
    assert message.params == ["#chan", "hello  there"]


def test_commands_are_upper_case_and_empty_lines_are_no_message() -> None:
    assert parse("privmsg a b").command == "PRIVMSG"
    with pytest.raises(BadMessage):
        parse(":only.a.source")


@pytest.mark.parametrize("value", ["a;b", "a b", "back\\slash", "cr\rlf\n", ""])
def test_tag_values_escape_and_unescape(value: str) -> None:
    assert unescape_tag(escape_tag(value)) == value


def test_the_last_parameter_is_trailing_only_when_it_must_be() -> None:
    assert line("s", "001", "nick", "hi") == ":s 001 nick hi\r\n"
    assert line("s", "001", "nick", "hi there") == ":s 001 nick :hi there\r\n"
    assert line(None, "PING", "") == "PING :\r\n"


# --------------------------------------------------------------------- nicks


@pytest.mark.parametrize("nick", ["alex", "Alex_", "a[b]", "café", "x-1"])
def test_nicks_irc_can_carry(nick: str) -> None:
    assert nick_problem(nick) is None
    assert shown(nick) == nick


@pytest.mark.parametrize(
    "nick", ["", "1abc", "-a", "#a", "a b", "a,b", "a!b", "a@b", "a.b", "a*", "a\\b"]
)
def test_nicks_irc_refuses(nick: str) -> None:
    assert nick_problem(nick) is not None


@pytest.mark.parametrize(
    "name", ["127.0.0.1:5000", "127.0.0.1:5000#2", "anon:7f3k2p", "a.b", "1st"]
)
def test_a_name_irc_cannot_show_is_escaped_and_read_back(name: str) -> None:
    escaped = shown(name)
    assert nick_problem(escaped.replace("\\", "x")) is None or escaped[0] == "\\"
    assert not any(c in escaped for c in " ,*?!@.:")
    assert unescaped(escaped) == name


def test_escapes_never_merge_two_names() -> None:
    names = ["127.0.0.1:5000", "127.0.0.1:5001", "127\\2e0", "a.b", "a:b"]
    assert len({shown(n) for n in names}) == len(names)


def test_hosts_drop_the_port_and_keep_pseudonyms() -> None:
    assert host("127.0.0.1:5000") == "127.0.0.1"
    assert host("[::1]:5000") == "0::1"
    assert host("[2001:db8::1]:5000") == "2001:db8::1"
    assert host("anon:7f3k2p") == "anon:7f3k2p"


def test_ban_masks_both_ways() -> None:
    assert ban_mask("bar!*@*") == "bar"
    assert ban_mask("*!*@10.0.0.0/8") == "10.0.0.0/8"
    assert ban_mask("bar") == "bar"
    assert irc_mask("bar") == "bar!*@*"
    assert irc_mask("10.0.0.0/8") == "*!*@10.0.0.0/8"


def test_name_patterns_keep_their_wildcards_both_ways() -> None:
    assert ban_mask("ba*!*@*") == "ba*" and irc_mask("ba*") == "ba*!*@*"
    assert ban_mask("*!*@*") == "*" and irc_mask("*") == "*!*@*"
    assert irc_mask("a.b?") == "a\\2eb?!*@*"  # what a nick cannot hold is escaped still
    assert ban_mask("a\\2eb?!*@*") == "a.b?"


def test_isupport_tells_of_ban_and_invite_exceptions() -> None:
    tokens = dict(token.partition("=")[::2] for token in ISUPPORT)
    assert tokens["EXCEPTS"] == "e" and tokens["INVEX"] == "I"
    assert tokens["CHANMODES"].split(",")[0] == "beI"  # group A: the lists
    assert tokens["MAXLIST"] == "b:100,e:100,I:100"


# -------------------------------------------------------------- registration


def test_registration_waits_for_nick_and_user_and_the_end_of_cap() -> None:
    conn = wire()
    ls = feed(conn, "CAP LS 302")
    assert "sasl=PLAIN" in answered(ls) and "server-time" in answered(ls)
    assert feed(conn, "NICK alex", "USER a 0 * :Alex A") == []
    assert "ACK" in answered(feed(conn, "CAP REQ :server-time echo-message"))
    commands = feed(conn, "CAP END")
    assert isinstance(commands[0], Register)
    assert (commands[0].nick, commands[0].ident, commands[0].realname) == ("alex", "a", "Alex A")
    assert isinstance(commands[1], Lusers)
    assert conn.caps == {"server-time", "echo-message", "cap-notify"}


def test_a_command_before_registration_is_451_and_a_bad_nick_432() -> None:
    conn = wire()
    assert " 451 " in answered(feed(conn, "JOIN #a"))
    assert " 432 * 1abc " in answered(feed(conn, "NICK 1abc"))
    assert " 461 " in answered(feed(conn, "USER a 0 *"))


def test_sasl_plain_is_a_login() -> None:
    conn = wire()
    feed(conn, "CAP REQ sasl")
    assert answered(feed(conn, "AUTHENTICATE PLAIN")) == "AUTHENTICATE +\r\n"
    [login] = feed(conn, "AUTHENTICATE AGFsZXgAc2VjcmV0")  # \0alex\0secret
    assert (login.name, login.password) == ("alex", "secret")  # type: ignore[attr-defined]


def test_lines_too_long_and_invalid_utf8_are_answered_not_raised() -> None:
    conn = wire()
    [too_long] = conn.receive_data(b"PRIVMSG #a :" + b"x" * 600 + b"\r\n")
    [invalid] = conn.receive_data(b"PRIVMSG #a :\xff\r\n")
    assert " 417 " in conn.encode(too_long.event).decode()  # type: ignore[attr-defined]
    assert "FAIL * INVALID_UTF8" in conn.encode(invalid.event).decode()  # type: ignore[attr-defined]


def registered(nick: str = "alex") -> IrcConnection:
    conn = wire()
    register, _ = feed(conn, f"NICK {nick}", "USER a 0 * :A")
    from imkit.protocol import RenameOk

    welcome = conn.encode(RenameOk(register.id, nick)).decode()
    assert f" 001 {nick} " in welcome and " 005 " in welcome
    return conn


def test_irc_commands_are_the_hubs_commands() -> None:
    conn = registered()
    join, topic, names = feed(conn, "JOIN #builds")
    assert isinstance(join, JoinRoom) and join.room == "#builds"
    assert isinstance(topic, Topic) and isinstance(names, Who)
    [message] = feed(conn, "PRIVMSG #builds :hi there")
    assert isinstance(message, RoomMessage) and message.text == "hi there"
    [private] = feed(conn, "PRIVMSG \\3127\\2e0\\2e0\\2e1\\3a5000 :psst")
    assert isinstance(private, PrivateMessage) and private.to == "127.0.0.1:5000"
    [rename] = feed(conn, "NICK sam")
    assert isinstance(rename, Rename)
    [quit_] = feed(conn, "QUIT :bye")
    assert isinstance(quit_, Quit) and quit_.reason == "bye"
    assert " 421 alex FOO " in answered(feed(conn, "FOO"))
    assert "PONG irc.test x" in answered(feed(conn, "PING x"))


# -------------------------------------------------------------- one per form


def test_a_broadcast_is_rendered_once_per_form(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = render_module.render

    def counting(*args: object) -> str | None:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("imkit.irc.wire.render", counting)
    plain = [registered(f"p{i}") for i in range(5)]
    timed = [registered(f"t{i}") for i in range(5)]
    for conn in timed:
        conn.set_caps({"server-time"})
    frame = Frame(ChatMessage("sam", "1.2.3.4:5", None, "hi", 0.0, "0001", None, "#b"))
    plain_bytes = {conn.frame_bytes(frame) for conn in plain}
    timed_bytes = {conn.frame_bytes(frame) for conn in timed}
    assert len(calls) == 2
    assert plain_bytes == {b":sam!~u@1.2.3.4 PRIVMSG #b :hi\r\n"}
    [one] = timed_bytes
    assert one.startswith(b"@time=1970-01-01T00:00:00.000Z :sam!")


def test_ones_own_message_comes_back_only_with_echo_message() -> None:
    conn = registered("sam")
    frame = Frame(ChatMessage("sam", "1.2.3.4:5", None, "hi", 0.0, "1", None, "#b"))
    assert conn.frame_bytes(frame) == b""
    conn.set_caps({"echo-message"})
    assert conn.frame_bytes(frame).endswith(b"PRIVMSG #b :hi\r\n")


def test_an_account_change_is_an_account_line_for_account_notify_alone() -> None:
    """account-notify: ``ACCOUNT name`` at a login, ``ACCOUNT *`` at a logout, from the
    user's source; nothing for a client that did not negotiate it."""
    plain, told = registered("p"), registered("t")
    told.set_caps({"account-notify", "server-time"})
    login = Frame(AccountChanged("alex", "1.2.3.4:5", "alex"))
    assert plain.frame_bytes(login) == b""
    assert told.frame_bytes(login) == b":alex!~u@1.2.3.4 ACCOUNT alex\r\n"
    out = Frame(AccountChanged("alex", "1.2.3.4:5", None))
    assert told.frame_bytes(out) == b":alex!~u@1.2.3.4 ACCOUNT *\r\n"
    # An account IRC cannot show in a nick is escaped, as its nick is.
    odd = Frame(AccountChanged("j.doe", "anon:7f3k2p", "j.doe"))
    assert told.frame_bytes(odd) == b":j\\2edoe!~u@anon:7f3k2p ACCOUNT j\\2edoe\r\n"
    assert render_module.render(odd.event, frozenset(), "#lobby") == (
        ":j\\2edoe!~u@anon:7f3k2p ACCOUNT j\\2edoe\r\n"
    )


# ---------------------------------------------------------------- with a hub


class IrcPeer:
    def __init__(self, hub: Hub, addr: str, nick: str) -> None:
        self.conn = wire(addr.rsplit(":", 1)[0])
        self.member: Member = hub.new_member(addr, self.conn, Outbox(1 << 20), now=0.0)  # type: ignore[arg-type]
        self.member.in_lobby = False
        self.hub = hub
        hub.join(self.member)
        self.send(f"NICK {nick}", "USER u 0 * :Real")
        self.read()

    def send(self, *lines: str) -> None:
        for command in feed(self.conn, *lines):
            self.hub.handle(self.member, command)

    def read(self) -> list[str]:
        outbox = self.member.outbox
        data = outbox.take()
        outbox.wrote(data, len(data))
        return data.decode().splitlines()


def text_peer(hub: Hub, addr: str, mode: Mode = Mode.TEXT) -> Member:
    conn = ServerConnection()
    conn.mode = mode
    member = hub.new_member(addr, conn, Outbox(1 << 20), now=0.0)
    hub.join(member)
    return member


def read(member: Member) -> list[str]:
    data = member.outbox.take()
    member.outbox.wrote(data, len(data))
    return data.decode().splitlines()


def test_irc_text_and_json_users_share_the_lobby_and_rooms() -> None:
    hub = Hub(wall_clock=lambda: 0.0)
    text = text_peer(hub, "10.0.0.1:1")
    js = text_peer(hub, "10.0.0.2:2", Mode.JSON)
    alex = IrcPeer(hub, "10.0.0.3:3", "alex")
    assert read(text) == [
        "[10.0.0.1:1]10.0.0.1:1:user is online",
        "[10.0.0.2:2]10.0.0.2:2:user is online",
    ]
    read(js)
    alex.send("JOIN #lobby")
    joined = alex.read()
    assert joined[0] == ":alex!~u@10.0.0.3 JOIN #lobby"
    text_nick = shown("10.0.0.1:1")
    assert text_nick == "\\310\\2e0\\2e0\\2e1\\3a1"
    json_nick = shown("10.0.0.2:2")
    assert f":irc.test 353 alex = #lobby :{text_nick} {json_nick} alex" in joined
    assert read(text) == ["#lobby * alex [10.0.0.3:3] has joined"]
    alex.send("PRIVMSG #lobby :hello all")
    assert read(text)[0].endswith("alex:hello all")
    assert json.loads(read(js)[-1])["text"] == "hello all"
    hub.handle(text, PrivateMessage(to="alex", text="psst"))
    assert alex.read() == [f":{text_nick}!~u@10.0.0.1 PRIVMSG alex :psst"]
    alex.send(f"PRIVMSG {text_nick} :back")
    assert read(text) == ["alex say: back"]


def test_an_irc_user_outside_the_lobby_is_not_announced_there() -> None:
    hub = Hub(wall_clock=lambda: 0.0)
    text = text_peer(hub, "10.0.0.1:1")
    read(text)
    IrcPeer(hub, "10.0.0.3:3", "alex")
    assert read(text) == []


def test_a_labeled_line_gets_its_replies_labeled() -> None:
    from imkit.protocol import RenameOk

    conn = registered("alex")
    conn.set_caps({"labeled-response", "batch"})
    start, ping, end = feed(conn, "@label=one PING x")
    out = b"".join(conn.encode(c.event) for c in (start, ping, end))  # type: ignore[attr-defined]
    assert out == b"@label=one :irc.test PONG irc.test x\r\n"
    start, end = feed(conn, "@label=two PONG x")
    assert conn.encode(start.event) == b""  # type: ignore[attr-defined]
    assert conn.encode(end.event) == b"@label=two :irc.test ACK\r\n"  # type: ignore[attr-defined]
    commands = feed(conn, "@label=three NICK sam")
    conn.encode(commands[0].event)  # type: ignore[attr-defined]
    assert conn.encode(RenameOk(commands[1].id, "sam")) == b""  # held until the end
    assert conn.encode(commands[2].event) == b"@label=three :alex!~u@127.0.0.1 NICK sam\r\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "numeric"),
    [
        ("MOTD", " 422 "),
        ("LUSERS", " 251 "),
        ("VERSION", " 351 "),
        ("TIME", " 391 "),
        ("INFO", " 374 "),
        ("ADMIN", " 256 "),
        ("WHOWAS sam", " 406 "),
        ("OPER a b", " 491 "),
        ("KILL sam :x", " 481 "),
        ("WALLOPS :x", " 481 "),
        ("REHASH", " 481 "),
        ("MODE alex", " 221 "),
        ("MODE alex +z", " 501 "),
        ("MODE sam +i", " 401 "),
        ("WHOIS nobody", " 401 "),
        ("ISON alex nobody", " 303 alex :alex"),
        ("USERHOST alex", " 302 "),
        ("WHO #nowhere", " 315 "),
        ("WHO a*", " 352 "),
        ("NAMES", " 366 "),
        ("NAMES #nowhere", " 366 "),
        ("LIST", " 323 "),
        ("TOPIC #nowhere", " 403 "),
        ("PART #nowhere", " 442 "),
        ("KICK #nowhere sam", " 403 "),
        ("INVITE sam #nowhere", " 403 "),
        ("INVITE", " 337 "),
        ("MODE #nowhere", " 403 "),
        ("MODE #nowhere +q", " 472 "),
        ("JOIN &local", " 403 "),
        ("PRIVMSG nobody :hi", " 401 "),
        ("PRIVMSG #nowhere :hi", " 403 "),
        ("PRIVMSG alex", " 412 "),
        ("AWAY :lunch", " 306 "),
        ("AWAY", " 305 "),
        ("SETNAME", "FAIL SETNAME"),
        ("CHATHISTORY", "FAIL CHATHISTORY"),
        ("CHATHISTORY LATEST #a timestamp=1 5", "FAIL CHATHISTORY"),
        ("CAP LIST", "CAP alex LIST"),
        ("CAP BOGUS", " 410 "),
        ("USER a 0 * :b", " 462 "),
        ("PASS x", " 462 "),
        ("NICK", " 431 "),
        ("PING", " 409 "),
        ("AUTHENTICATE PLAIN", " 904 "),
    ],
)
def test_each_command_is_answered(line: str, numeric: str) -> None:
    hub = Hub(wall_clock=lambda: 0.0)
    alex = IrcPeer(hub, "10.0.0.3:3", "alex")
    alex.send(line)
    assert any(numeric in text for text in alex.read()), line


def test_an_irc_operator_kills_and_sends_wallops() -> None:
    hub = Hub(wall_clock=lambda: 0.0)
    alex = IrcPeer(hub, "10.0.0.3:3", "alex")
    alex.conn.operators = {"op": "pw"}
    sam = IrcPeer(hub, "10.0.0.4:4", "sam")
    sam.send("MODE sam +w")
    alex.send("OPER op pw")
    assert any(" 381 " in text for text in alex.read())
    alex.send("WALLOPS :hear ye")
    assert any("WALLOPS :hear ye" in text for text in sam.read())
    alex.send("WHOIS alex")
    assert any(" 313 " in text for text in alex.read())
    alex.send("KILL sam :enough")
    assert any(text.startswith("ERROR") for text in sam.read())
    assert hub.find("sam") is None


def test_channel_modes_and_bans_as_irc_shows_them() -> None:
    hub = Hub(wall_clock=lambda: 0.0)
    alex = IrcPeer(hub, "10.0.0.3:3", "alex")
    sam = IrcPeer(hub, "10.0.0.4:4", "sam")
    alex.send("JOIN #r")
    sam.send("JOIN #r")
    alex.read()
    alex.send("MODE #r +bkl-t bad!*@* secret 5", "MODE #r +o sam", "MODE #r +b", "MODE #r")
    lines = alex.read()
    assert ":alex MODE #r +bkl-t bad!*@* secret 5" in lines
    assert ":alex MODE #r +o sam" in lines
    assert ":irc.test 367 alex #r bad!*@*" in lines
    assert ":irc.test 324 alex #r +nkl secret 5" in lines
    assert any(line.startswith(":irc.test 329 alex #r ") for line in lines)
    sam.read()
    sam.send("PART #r :later", "JOIN #r")
    assert " 475 sam #r " in "\n".join(sam.read())
