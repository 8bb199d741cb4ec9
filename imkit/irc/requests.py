"""IRC commands into the hub's commands (docs/irc.md has the table): one function a
command, taking the connection's state (:class:`~imkit.irc.wire.IrcConnection`) and
the parsed message, returning the commands for the hub, in order. What the hub does not
answer (CAP, PING, MOTD, a bad parameter) is answered here, as an
:class:`~imkit.protocol.queries.Answer` queued in order with the hub's replies."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from imkit.irc import numerics
from imkit.irc.message import Message
from imkit.irc.names import ban_mask, nick_problem, unescaped
from imkit.protocol import (
    Command,
    Invite,
    JoinRoom,
    ListRooms,
    Login,
    PartRoom,
    PrivateMessage,
    Rename,
    RoomKick,
    RoomMessage,
    RoomMode,
    Topic,
    Who,
)
from imkit.protocol.queries import (
    Lusers,
    Quit,
    Register,
    SetAway,
    UserModes,
    Whois,
)
from imkit.protocol.room_requests import RoomRequestError, parse_changes
from imkit.rules.rooms import FLAGS, LISTS, TOPIC_MAX, room_key, room_problem

if TYPE_CHECKING:
    from imkit.irc.wire import IrcConnection

Handler = Callable[["IrcConnection", Message], list[Command]]
HANDLERS: dict[str, Handler] = {}
PRE_REGISTRATION = frozenset(
    {"CAP", "PASS", "NICK", "USER", "AUTHENTICATE", "PING", "PONG", "QUIT"}
)


def registrar(table: dict[str, Handler]) -> Callable[..., Callable[[Handler], Handler]]:
    """A decorator that enters a handler in ``table`` under each verb it names."""

    def handles(*verbs: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for verb in verbs:
                table[verb] = handler
            return handler

        return register

    return handles


handles = registrar(HANDLERS)


def need(conn: IrcConnection, message: Message, count: int) -> list[Command] | None:
    """A 461 when ``message`` has fewer than ``count`` parameters (empty ones too)."""
    if len(message.params) < count or not all(message.params[:count]):
        return [conn.numeric("461", message.command, "Not enough parameters")]
    return None


# ------------------------------------------------------------------ registration


def _registration(conn: IrcConnection) -> list[Command]:
    """The registration command once NICK and USER are in and CAP is over."""
    if conn.registered or conn.negotiating or conn.sasl is not None:
        return []
    if conn.requested_nick is None or conn.ident is None:
        return []
    # Registered from here on: the lines after it are the chat's (a nick that turns
    # out taken makes it unregistered again, imkit.irc.replies).
    conn.registered = True
    rid = conn.ask("register", conn.requested_nick)
    register = Register(
        id=rid,
        nick=conn.requested_nick,
        ident=conn.ident,
        realname=conn.realname or "",
        password=conn.password,
    )
    return [register, Lusers(id=conn.ask("welcome"))]


@handles("PASS")
def _pass(conn: IrcConnection, message: Message) -> list[Command]:
    if conn.registered:
        return [conn.numeric("462", "You may not reregister")]
    missing = need(conn, message, 1)
    if missing:
        return missing
    conn.password = message.params[0]
    return []


@handles("NICK")
def _nick(conn: IrcConnection, message: Message) -> list[Command]:
    if not message.params or not message.params[0]:
        return [conn.numeric("431", "No nickname given")]
    nick = message.params[0]
    problem = nick_problem(nick)
    if problem is not None:
        return [conn.numeric("432", nick, f"Erroneous nickname: {problem}")]
    if not conn.registered:
        conn.requested_nick = nick
        return _registration(conn)
    if nick == conn.name:
        return []
    return [Rename(id=conn.ask("nick", nick), name=nick)]


@handles("USER")
def _user(conn: IrcConnection, message: Message) -> list[Command]:
    if conn.registered:
        return [conn.numeric("462", "You may not reregister")]
    if len(message.params) < 4 or not message.params[0] or not message.params[3]:
        return [conn.numeric("461", "USER", "Not enough parameters")]
    conn.ident = message.params[0][:10]
    conn.realname = message.params[3]
    return _registration(conn)


@handles("CAP")
def _cap(conn: IrcConnection, message: Message) -> list[Command]:
    if not message.params:
        return [conn.numeric("461", "CAP", "Not enough parameters")]
    sub = message.params[0].upper()
    nick = conn.nick
    server = conn.server
    if sub == "LS":
        if not conn.registered:
            conn.negotiating = True
        version = message.params[1] if len(message.params) > 1 else ""
        conn.cap_version = max(conn.cap_version, int(version) if version.isdigit() else 0)
        offered = [numerics.cap_value(conn, cap) for cap in numerics.CAPABILITIES]
        if conn.cap_version >= 302:
            conn.caps.add("cap-notify")  # implied by 302
            conn.set_caps(conn.caps)
        return [conn.answer(numerics.raw(server, "CAP", nick, "LS", " ".join(offered)))]
    if sub == "LIST":
        return [conn.answer(numerics.raw(server, "CAP", nick, "LIST", " ".join(sorted(conn.caps))))]
    if sub == "REQ":
        if not conn.registered:
            conn.negotiating = True
        asked = message.params[1] if len(message.params) > 1 else ""
        wanted = set(conn.caps)
        for item in asked.split():
            off = item.startswith("-")
            name = item[1:] if off else item
            if name not in numerics.CAPABILITIES:
                return [conn.answer(numerics.raw(server, "CAP", nick, "NAK", asked))]
            if off:
                if name == "cap-notify" and conn.cap_version >= 302:
                    return [conn.answer(numerics.raw(server, "CAP", nick, "NAK", asked))]
                wanted.discard(name)
            else:
                wanted.add(name)
        conn.set_caps(wanted)
        return [conn.answer(numerics.raw(server, "CAP", nick, "ACK", asked))]
    if sub == "END":
        if conn.registered or not conn.negotiating:
            return []
        conn.negotiating = False
        return _registration(conn)
    return [conn.numeric("410", sub, "Invalid CAP command")]


@handles("AUTHENTICATE")
def _authenticate(conn: IrcConnection, message: Message) -> list[Command]:
    if "sasl" not in conn.caps:
        return [conn.numeric("904", "SASL authentication failed")]
    if conn.registered:
        return [conn.numeric("907", "You have already authenticated")]
    if not message.params:
        return [conn.numeric("461", "AUTHENTICATE", "Not enough parameters")]
    data = message.params[0]
    if data == "*":
        conn.sasl, conn.sasl_buffer = None, ""
        return [conn.numeric("906", "SASL authentication aborted")]
    if conn.sasl is None:
        if data.upper() != "PLAIN":
            return [
                conn.numeric("908", "PLAIN", "are available SASL mechanisms"),
                conn.numeric("904", "SASL authentication failed"),
            ]
        conn.sasl = "PLAIN"
        return [conn.answer(numerics.raw(None, "AUTHENTICATE", "+"))]
    if len(data) > 400:
        conn.sasl, conn.sasl_buffer = None, ""
        return [conn.numeric("905", "SASL message too long")]
    conn.sasl_buffer += data if data != "+" else ""
    if len(data) == 400:
        return []  # more follows
    blob, conn.sasl_buffer, conn.sasl = conn.sasl_buffer, "", None
    try:
        authzid, authcid, password = base64.b64decode(blob, validate=True).decode().split("\0")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return [conn.numeric("904", "SASL authentication failed")] + _registration(conn)
    name = authcid or authzid
    login = Login(id=conn.ask("sasl", name), name=name, password=password)
    return [login, *_registration(conn)]


@handles("PING")
def _ping(conn: IrcConnection, message: Message) -> list[Command]:
    if not message.params:
        return [conn.numeric("409", "No origin specified")]
    return [conn.answer(numerics.raw(conn.server, "PONG", conn.server, message.params[0]))]


@handles("PONG")
def _pong(conn: IrcConnection, message: Message) -> list[Command]:
    return []


@handles("QUIT")
def _quit(conn: IrcConnection, message: Message) -> list[Command]:
    reason = message.params[0] if message.params else None
    return [Quit(id=conn.ask("quit"), reason=reason)]


# ------------------------------------------------------------------- messages


def _room_name(conn: IrcConnection, name: str, verb: str) -> str | list[Command]:
    """``name`` if it is a room's name, else the 403 to answer."""
    if room_problem(name) is not None:
        return [conn.numeric("403", name, "No such channel")]
    return name


@handles("PRIVMSG", "NOTICE")
def _privmsg(conn: IrcConnection, message: Message) -> list[Command]:
    verb = message.command
    notice = verb == "NOTICE"
    if not message.params or not message.params[0]:
        return [] if notice else [conn.numeric("411", f"No recipient given ({verb})")]
    if len(message.params) < 2 or not message.params[1]:
        return [] if notice else [conn.numeric("412", "No text to send")]
    text = message.params[1]
    commands: list[Command] = []
    for target in message.params[0].split(",")[:4]:
        if not target:
            continue
        if target.startswith("#"):
            if room_problem(target) is not None:
                if not notice:
                    commands.append(conn.numeric("401", target, "No such nick/channel"))
                continue
            rid = conn.ask(verb, target)
            commands.append(RoomMessage(id=rid, room=target, text=text, notice=notice))
        else:
            rid = conn.ask(verb, target)
            to = unescaped(target)
            commands.append(PrivateMessage(id=rid, to=to, text=text, notice=notice))
    return commands


# ---------------------------------------------------------------------- rooms


@handles("JOIN")
def _join(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return missing
    if message.params[0] == "0":
        return [
            PartRoom(id=conn.ask("PART", name, ""), room=name) for name in conn.channels.values()
        ]
    keys = message.params[1].split(",") if len(message.params) > 1 else []
    commands: list[Command] = []
    for index, name in enumerate(message.params[0].split(",")):
        if not name:
            continue
        checked = _room_name(conn, name, "JOIN")
        if isinstance(checked, list):
            commands.extend(checked)
            continue
        key = keys[index] if index < len(keys) and keys[index] else None
        commands.append(JoinRoom(id=conn.ask("JOIN", name), room=name, key=key))
        commands.append(Topic(id=conn.ask("join-topic", name), room=name))
        commands.append(Who(id=conn.ask("join-names", name), room=name))
    if conn.away and len(commands) > 0:  # the channels' away-notify users learn it
        commands.append(SetAway(id=conn.ask("AWAY"), message=conn.away, again=True))
    return commands


@handles("PART")
def _part(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return missing
    reason = message.params[1] if len(message.params) > 1 else ""
    commands: list[Command] = []
    for name in message.params[0].split(","):
        checked = _room_name(conn, name, "PART")
        if isinstance(checked, list):
            commands.extend(checked)
            continue
        rid = conn.ask("PART", name, reason)
        commands.append(PartRoom(id=rid, room=name, reason=reason or None))
    return commands


@handles("TOPIC")
def _topic(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return missing
    name = message.params[0]
    checked = _room_name(conn, name, "TOPIC")
    if isinstance(checked, list):
        return checked
    topic = message.params[1][:TOPIC_MAX] if len(message.params) > 1 else None
    return [Topic(id=conn.ask("TOPIC", name), room=name, topic=topic)]


@handles("NAMES")
def _names(conn: IrcConnection, message: Message) -> list[Command]:
    if not message.params or not message.params[0]:
        return [conn.numeric("366", "*", "End of /NAMES list")]
    commands: list[Command] = []
    every = message.params[0]
    names = [n for n in every.split(",") if n]
    for index, name in enumerate(names):
        last = index == len(names) - 1  # only the last one's reply ends the list (366)
        if room_problem(name) is not None:
            if last:
                commands.append(conn.numeric("366", every, "End of /NAMES list"))
            continue
        rid = conn.ask("NAMES" if last else "NAMES-part", name, every)
        commands.append(Who(id=rid, room=name))
    return commands


@handles("LIST")
def _list(conn: IrcConnection, message: Message) -> list[Command]:
    wanted = message.params[0] if message.params and message.params[0] else ""
    masks = tuple(room_key(n) for n in wanted.split(",") if n.startswith("#") and len(n) > 1)
    return [ListRooms(id=conn.ask("LIST", *masks))]


@handles("KICK")
def _kick(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 2)
    if missing:
        return missing
    rooms = [n for n in message.params[0].split(",") if n]
    nicks = [n for n in message.params[1].split(",") if n]
    if len(rooms) == 1:
        rooms = rooms * len(nicks)
    elif len(rooms) != len(nicks):
        return [conn.numeric("461", "KICK", "Not enough parameters")]
    reason = message.params[2] if len(message.params) > 2 and message.params[2] else None
    commands: list[Command] = []
    for name, nick in zip(rooms, nicks, strict=True):
        checked = _room_name(conn, name, "KICK")
        if isinstance(checked, list):
            commands.extend(checked)
            continue
        rid = conn.ask("KICK", name, nick)
        commands.append(RoomKick(id=rid, room=name, name=unescaped(nick), reason=reason))
    return commands


@handles("INVITE")
def _invite(conn: IrcConnection, message: Message) -> list[Command]:
    if not message.params:
        return [conn.numeric("337", "End of INVITE list")]
    missing = need(conn, message, 2)
    if missing:
        return missing
    nick, name = message.params[0], message.params[1]
    checked = _room_name(conn, name, "INVITE")
    if isinstance(checked, list):
        return checked
    return [Invite(id=conn.ask("INVITE", name, nick), room=name, name=unescaped(nick))]


@handles("MODE")
def _mode(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return missing
    target = message.params[0]
    if not target.startswith("#"):
        return _user_mode(conn, message, target)
    checked = _room_name(conn, target, "MODE")
    if isinstance(checked, list):
        return checked
    if len(message.params) < 2:
        return [RoomMode(id=conn.ask("MODE", target), room=target)]
    changes_text, args = message.params[1], message.params[2:]
    if changes_text[:1] not in "+-":
        changes_text = "+" + changes_text
    try:
        changes, listing = parse_changes(changes_text, _mode_args(changes_text, args))
    except RoomRequestError as error:
        unknown = [c for c in changes_text if c not in "+-" + FLAGS]
        if unknown:
            return [conn.numeric("472", unknown[0], "is an unknown mode char to me")]
        if "+k" in changes_text or ("k" in changes_text and args):
            return [conn.numeric("525", target, "Key is not well-formed")]
        if "l" in changes_text and args:
            return [conn.numeric("696", target, "l", args[0] or "*", str(error))]
        if "o" in changes_text or "v" in changes_text or "k" in changes_text:
            return [conn.numeric("461", "MODE", "Not enough parameters")]
        return [conn.numeric("696", target, changes_text, " ".join(args) or "*", str(error))]
    rid = conn.ask("MODE", target, "list" if listing else "")
    return [RoomMode(id=rid, room=target, changes=changes, listing=listing)]


def _mode_args(changes: str, args: list[str]) -> list[str]:
    """A MODE's arguments as imkit reads them: nicks unescaped, and IRC's ban masks
    (``nick!*@*``, ``*!*@HOST``; +b, +e, +I) as the names, patterns, addresses or
    networks imkit's room masks hold."""
    out, sign, pending = [], True, list(args)
    for char in changes:
        if char in "+-":
            sign = char == "+"
            continue
        if not pending or not (char in "ov" + LISTS or (sign and char in "kl")):
            continue
        arg = pending.pop(0)
        if char in "ov":
            arg = unescaped(arg)
        elif char in LISTS:
            arg = ban_mask(arg)
        out.append(arg)
    return out + pending


def _user_mode(conn: IrcConnection, message: Message, target: str) -> list[Command]:
    if unescaped(target) != conn.name and target != conn.nick:
        return [Whois(id=conn.ask("MODE-user", target), names=(unescaped(target),))]
    if len(message.params) < 2:
        return [conn.numeric("221", "+" + conn.modes)]
    add, remove, sign, unknown = "", "", True, False
    for char in message.params[1]:
        if char in "+-":
            sign = char == "+"
        elif char in "iw" or (char == "o" and not sign):
            if sign:
                add += char
            else:
                remove += char
        elif char != "o":
            unknown = True
    out: list[Command] = []
    if add or remove:
        out.append(UserModes(id=conn.ask("MODE-self"), add=add, remove=remove))
    if unknown:
        out.append(conn.numeric("501", "Unknown MODE flag"))
    return out
