"""IRC commands about people and the server (WHO, WHOIS, ISON, USERHOST, AWAY, OPER,
KILL, WALLOPS, MOTD, LUSERS, VERSION, TIME...) into the hub's commands, or answered
here: the second half of :mod:`imkit.irc.requests`' table."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from imkit.irc import numerics
from imkit.irc.message import Message
from imkit.irc.names import unescaped
from imkit.irc.requests import Handler, need, registrar
from imkit.irc.whowas import whowas_count, whowas_lines
from imkit.protocol import HISTORY_MAX, Command, History
from imkit.protocol.queries import (
    Kill,
    Lusers,
    SetAway,
    SetName,
    UserModes,
    Wallops,
    Whois,
)
from imkit.rules.rooms import room_problem

if TYPE_CHECKING:
    from imkit.irc.wire import IrcConnection

HANDLERS: dict[str, Handler] = {}
handles = registrar(HANDLERS)


# ---------------------------------------------------------------------- people


@handles("WHO")
def _who(conn: IrcConnection, message: Message) -> list[Command]:
    mask = message.params[0] if message.params and message.params[0] else "*"
    if mask.startswith("#"):
        if room_problem(mask) is not None:
            return [conn.numeric("315", mask, "End of WHO list")]
        return [Whois(id=conn.ask("WHO", mask), room=mask)]
    if "*" in mask or "?" in mask or mask == "0":
        return [Whois(id=conn.ask("WHO", mask), room="*")]
    return [Whois(id=conn.ask("WHO", mask), names=(unescaped(mask),))]


@handles("WHOIS")
def _whois(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return [conn.numeric("431", "No nickname given")]
    nicks = message.params[-1]
    names = [n for n in nicks.split(",") if n]
    return [Whois(id=conn.ask("WHOIS", *names), names=tuple(unescaped(n) for n in names))]


@handles("WHOWAS")
def _whowas(conn: IrcConnection, message: Message) -> list[Command]:
    if not message.params or not message.params[0]:
        return [conn.numeric("431", "No nickname given")]
    nick = message.params[0]
    count = whowas_count(message.params[1] if len(message.params) > 1 else None)
    entries = conn.whowas.lookup(nick, count)
    return [conn.answer(whowas_lines(conn.server, conn.nick, nick, entries))]


@handles("ISON")
def _ison(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return missing
    nicks = [n for p in message.params for n in p.split() if n]
    return [Whois(id=conn.ask("ISON", *nicks), names=tuple(unescaped(n) for n in nicks))]


@handles("USERHOST")
def _userhost(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return missing
    nicks = [n for p in message.params for n in p.split() if n][:5]
    return [Whois(id=conn.ask("USERHOST", *nicks), names=tuple(unescaped(n) for n in nicks))]


@handles("SETNAME")
def _setname(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return [conn.answer(numerics.fail(conn, "SETNAME", "INVALID_REALNAME", "empty"))]
    conn.realname = message.params[0][:300]
    return [SetName(id=conn.ask("SETNAME"), realname=conn.realname)]


@handles("AWAY")
def _away(conn: IrcConnection, message: Message) -> list[Command]:
    text = message.params[0] if message.params else ""
    conn.away = text or None
    return [SetAway(id=conn.ask("AWAY"), message=text or None)]


# ----------------------------------------------------------------- the server


@handles("MOTD")
def _motd(conn: IrcConnection, message: Message) -> list[Command]:
    return [conn.answer(numerics.motd(conn))]


@handles("LUSERS")
def _lusers(conn: IrcConnection, message: Message) -> list[Command]:
    return [Lusers(id=conn.ask("LUSERS"))]


@handles("VERSION")
def _version(conn: IrcConnection, message: Message) -> list[Command]:
    return [
        conn.numeric("351", conn.version, conn.server, "imkit: the same chat over IRC"),
        conn.answer(numerics.isupport(conn)),
    ]


@handles("TIME")
def _time(conn: IrcConnection, message: Message) -> list[Command]:
    return [conn.answer(numerics.time_line(conn))]


@handles("INFO")
def _info(conn: IrcConnection, message: Message) -> list[Command]:
    return [
        conn.numeric("371", f"{conn.version}: an instant-messaging server, one chat for all"),
        conn.numeric("374", "End of INFO list"),
    ]


@handles("LINKS")
def _links(conn: IrcConnection, message: Message) -> list[Command]:
    # One IRC server, however many nodes (they are not linked IRC servers): no links.
    return [conn.numeric("365", "*", "End of /LINKS list")]


@handles("ADMIN")
def _admin(conn: IrcConnection, message: Message) -> list[Command]:
    return [
        conn.numeric("256", conn.server, "Administrative info"),
        conn.numeric("257", "an imkit server"),
        conn.numeric("258", "ask the operator of this server"),
        conn.numeric("259", "-"),
    ]


@handles("OPER")
def _oper(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 2)
    if missing:
        return missing
    name, password = message.params[0], message.params[1]
    expected = conn.operators.get(name)
    if expected is None:
        return [conn.numeric("491", "No O-lines for your host")]
    if not hmac.compare_digest(password.encode(), expected.encode()):
        return [conn.numeric("464", "Password incorrect")]
    return [UserModes(id=conn.ask("OPER"), add="o")]


@handles("KILL")
def _kill(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 2)
    if missing:
        return missing
    nick = message.params[0]
    return [Kill(id=conn.ask("KILL", nick), name=unescaped(nick), reason=message.params[1])]


@handles("WALLOPS")
def _wallops(conn: IrcConnection, message: Message) -> list[Command]:
    missing = need(conn, message, 1)
    if missing:
        return missing
    return [Wallops(id=conn.ask("WALLOPS"), text=message.params[0])]


@handles("REHASH", "DIE", "RESTART", "SQUIT", "CONNECT")
def _operator_only(conn: IrcConnection, message: Message) -> list[Command]:
    return [conn.numeric("481", "Permission Denied- You're not an IRC operator")]


# ------------------------------------------------------------------ history


@handles("CHATHISTORY")
def _chathistory(conn: IrcConnection, message: Message) -> list[Command]:
    """draft/chathistory from the store: LATEST, BEFORE and AFTER, by msgid (imkit's
    history pages are by msgid; a timestamp is refused), of a channel (its members) or
    of a conversation between two accounts."""
    params = message.params
    if len(params) < 4 or params[0].upper() not in ("LATEST", "BEFORE", "AFTER"):
        sub = params[0].upper() if params else "*"
        text = "CHATHISTORY LATEST|BEFORE|AFTER <target> <* | msgid=ID> <limit>"
        return [conn.answer(numerics.fail(conn, "CHATHISTORY", "INVALID_PARAMS", sub, text))]
    sub, target, ref, count = params[0].upper(), params[1], params[2], params[3]
    if ref != "*" and not ref.startswith("msgid="):
        text = "only msgid= references (and * for LATEST) are supported"
        return [conn.answer(numerics.fail(conn, "CHATHISTORY", "INVALID_PARAMS", sub, text))]
    limit = min(int(count), HISTORY_MAX) if count.isdigit() and int(count) > 0 else HISTORY_MAX
    msgid = ref[len("msgid=") :] if ref.startswith("msgid=") else None
    room = target if target.startswith("#") else None
    with_ = None if room is not None else unescaped(target)
    # BEFORE: the page before the msgid; LATEST and AFTER: the newest page, cut to what
    # comes after the msgid (imkit reads history backwards only).
    before = msgid if sub == "BEFORE" else None
    asked = HISTORY_MAX if sub == "AFTER" or (sub == "LATEST" and msgid) else limit
    rid = conn.ask("CHATHISTORY", target, sub, msgid or "", str(limit))
    return [History(id=rid, limit=asked, before=before, room=room, with_=with_)]
