"""The replies one IRC client gets, numerics first (RFC 1459/2812 and the Modern IRC
document's numbers): they name the client's nick, so they are made per client, from the
hub's reply events and what the client asked (:meth:`IrcConnection.asked`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imkit.irc import redaction
from imkit.irc.message import clean, line, trailing_line
from imkit.irc.names import host, irc_mask, prefix, shown
from imkit.irc.numerics import LIST_NUMERICS, fail, lusers, motd, numeric, welcome
from imkit.irc.render import chat_line, render
from imkit.protocol import (
    Bye,
    Error,
    Event,
    HistoryPage,
    Invited,
    Joined,
    KeptMessage,
    LoginOk,
    ModesInfo,
    Ok,
    Pong,
    RenameOk,
    RoomList,
    RoomOk,
    TopicInfo,
    UserList,
    Welcome,
)
from imkit.protocol.queries import (
    AwayOk,
    Counts,
    IsAway,
    People,
    Person,
    UserModesSet,
)
from imkit.rules.names import name_key
from imkit.rules.rooms import LISTS, room_key, too_many_masks

if TYPE_CHECKING:
    from imkit.irc.wire import IrcConnection

# Error codes (imkit.protocol.codes) to numerics when the command does not decide.
# The error that a room's list of masks is full, by its text, to the list's letter.
_FULL_LISTS = {too_many_masks(flag).partition(": ")[0]: flag for flag in LISTS}
_ERRORS = {
    "no_such_user": ("401", "No such nick/channel"),
    "no_such_room": ("403", "No such channel"),
    "bad_room_name": ("403", "No such channel"),
    "not_room_operator": ("482", "You're not channel operator"),
    "banned_from_room": ("474", "Cannot join channel (+b)"),
    "invite_only": ("473", "Cannot join channel (+i)"),
    "bad_key": ("475", "Cannot join channel (+k)"),
    "room_full": ("471", "Cannot join channel (+l)"),
    "too_many_rooms": ("405", "You have joined too many channels"),
    "invalid_name": ("432", "Erroneous nickname"),
    "name_taken": ("433", "Nickname is already in use"),
    "name_reserved": ("433", "Nickname is reserved by an account: log in with SASL"),
    "logged_in": ("433", "You are logged in and keep your account's name"),
    "login_failed": ("904", "SASL authentication failed"),
    "too_many_attempts": ("904", "SASL authentication failed: too many failed logins"),
    "line_too_long": ("417", "Input line was too long"),
}


# ------------------------------------------------------------------ replies


def reply(conn: IrcConnection, event: Event) -> str | None:
    """The lines of a reply ``event`` for ``conn`` ("" for none); None when ``event``
    is no reply but a broadcast's, for :func:`imkit.irc.render.render`."""
    handler = _REPLIES.get(type(event))
    if handler is None:
        return None
    return handler(conn, event)


def _renamed(conn: IrcConnection, event: RenameOk) -> str:
    verb, _ = conn.asked(event.id)
    if verb == "register":
        conn.name = event.name
        conn.registered = True
        return welcome(conn)
    return conn.renamed(event) or ""


def _error(conn: IrcConnection, event: Error) -> str:
    verb, context = conn.asked(event.id)
    target = context[0] if context else (event.subject or "*")
    code = event.code
    if verb == "NOTICE":
        return ""  # a NOTICE is never answered
    if verb == "register":
        conn.requested_nick, conn.registered = None, False
        number, text = _ERRORS.get(code, ("433", "Nickname is already in use"))
        return (
            line(conn.server, number, "*", target, text)
            if number != "432"
            else (trailing_line(conn.server, "432", "*", target, text))
        )
    if verb == "sasl":
        return numeric(conn, "904", "SASL authentication failed")
    if verb == "REDACT":
        return redaction.failed(conn, event, context)
    if verb == "CHATHISTORY":
        return fail(conn, "CHATHISTORY", "INVALID_TARGET", context[1], target, clean(event.message))
    if verb in ("join-topic", "join-names", "NAMES-part"):
        return ""  # the JOIN's own error said it; a NAMES list goes on
    if verb == "NAMES":
        return numeric(
            conn, "366", context[1] if len(context) > 1 else target, "End of /NAMES list"
        )
    if code == "not_operator":
        return numeric(conn, "481", "Permission Denied- You're not an IRC operator")
    if code == "already_in_room":
        return numeric(conn, "443", shown(context[1]), target, "is already on channel")
    if code == "invalid_utf8":
        return line(conn.server, "FAIL", "*", "INVALID_UTF8", clean(event.message))
    if verb == "JOIN":
        conn.failed_joins.add(room_key(target))
    if code == "not_in_room":
        if verb in ("PRIVMSG",):
            return numeric(conn, "404", target, "Cannot send to channel")
        if verb == "KICK" and not event.message.startswith("you"):
            return numeric(conn, "441", shown(context[1]), target, "They aren't on that channel")
        if verb == "MODE" and " is not in " in event.message:
            nick = shown(event.message.split(" is not in ")[0])
            return numeric(conn, "441", nick, target, "They aren't on that channel")
        if verb == "MODE":
            return numeric(conn, "482", target, "You're not channel operator")
        return numeric(conn, "442", target, "You're not on that channel")
    if code == "muted":
        return numeric(conn, "404", target, f"Cannot send to channel: {clean(event.message)}")
    if code == "no_such_user" and verb in ("KICK", "INVITE"):
        return numeric(conn, "401", shown(context[1]), "No such nick/channel")
    if code == "bad_request" and verb == "MODE":
        full = _FULL_LISTS.get(event.message.partition(": ")[0])
        if full is not None:  # a room's list of masks is full (rules.rooms.too_many_masks)
            return numeric(conn, "478", target, full, "Channel list is full")
        return numeric(conn, "472", "*", clean(event.message))
    known = _ERRORS.get(code)
    if known is not None:
        if code == "line_too_long":
            return numeric(conn, "417", known[1])
        return numeric(conn, known[0], target, known[1])
    return line(conn.server, "NOTICE", conn.nick, f"error: {clean(event.message)}")


def _joined(conn: IrcConnection, event: Joined) -> str:
    conn.channels[room_key(event.room)] = event.room
    conn.failed_joins.discard(room_key(event.room))
    if "extended-join" in conn.form:
        account = shown(conn.account) if conn.account else "*"
        out = line(conn.source, "JOIN", event.room, account, conn.realname or conn.name)
    else:
        out = line(conn.source, "JOIN", event.room)
    if event.id is None:  # an account put back in its room (no JOIN of its own)
        if event.topic:  # (its names, 353 and 366, follow: a UserList without id)
            out += numeric(conn, "332", event.room, clean(event.topic))
        if not conn.welcomed:  # a SASL login, before the welcome: after it
            conn.deferred.append(out)
            return ""
    return out


def _names(conn: IrcConnection, event: UserList) -> str:
    verb, context = conn.asked(event.id)
    room = event.room or (context[0] if context else conn.lobby)
    if verb == "join-names" and room_key(room) in conn.failed_joins:
        conn.failed_joins.discard(room_key(room))
        return ""
    symbol = "@" if event.secret else "="
    multi, full = "multi-prefix" in conn.caps, "userhost-in-names" in conn.caps
    names = []
    for user in event.users:
        mark = ("@" if user.operator else "") + ("+" if user.voice else "")
        if not multi:
            mark = mark[:1]
        names.append(mark + (prefix(user.name, user.addr) if full else shown(user.name)))
    out, chunk = [], []
    for name in names:
        chunk.append(name)
        if sum(len(n) + 1 for n in chunk) > 350:
            out.append(numeric(conn, "353", symbol, room, " ".join(chunk)))
            chunk = []
    if chunk:
        out.append(numeric(conn, "353", symbol, room, " ".join(chunk)))
    if verb != "NAMES-part":
        end = context[1] if verb == "NAMES" and len(context) > 1 else room
        out.append(numeric(conn, "366", end, "End of /NAMES list"))
    if event.id is None and not conn.welcomed:  # a room's at login: after the welcome
        conn.deferred.append("".join(out))
        return ""
    return "".join(out)


def _room_ok(conn: IrcConnection, event: RoomOk) -> str:
    verb, context = conn.asked(event.id)
    if verb == "PART":
        conn.channels.pop(room_key(event.room), None)
        reason = context[1] if len(context) > 1 else ""
        if reason:
            return trailing_line(conn.source, "PART", event.room, clean(reason))
        return line(conn.source, "PART", event.room)
    if verb == "INVITE":
        return numeric(conn, "341", shown(context[1]), event.room)
    return ""


def _topic(conn: IrcConnection, event: TopicInfo) -> str | None:
    if event.changed:
        return None
    verb, _ = conn.asked(event.id)
    if verb == "join-topic" and (not event.topic or room_key(event.room) in conn.failed_joins):
        return ""
    if not event.topic:
        return numeric(conn, "331", event.room, "No topic is set")
    out = numeric(conn, "332", event.room, clean(event.topic))
    if event.by is not None and event.time is not None:
        out += line(
            conn.server, "333", conn.nick, event.room, shown(event.by), str(int(event.time))
        )
    return out


def _modes(conn: IrcConnection, event: ModesInfo) -> str:
    if event.masks is not None:
        item, end, text = LIST_NUMERICS[event.listing]
        masks = [
            line(conn.server, item, conn.nick, event.room, irc_mask(mask)) for mask in event.masks
        ]
        return "".join(masks) + numeric(conn, end, event.room, text)
    out = line(conn.server, "324", conn.nick, event.room, event.modes, *event.args)
    if event.created is not None:
        out += line(conn.server, "329", conn.nick, event.room, str(int(event.created)))
    return out


def _rooms(conn: IrcConnection, event: RoomList) -> str:
    _, masks = conn.asked(event.id)
    out = [numeric(conn, "321", "Channel", "Users  Name")]
    for info in event.rooms:
        if masks and room_key(info.room) not in masks:
            continue
        if info.room == conn.lobby and not info.members:
            continue  # the lobby, empty: no channel to IRC users
        out.append(numeric(conn, "322", info.room, str(info.members), clean(info.topic or "")))
    out.append(numeric(conn, "323", "End of /LIST"))
    return "".join(out)


def _invited(conn: IrcConnection, event: Invited) -> str:
    source = prefix(event.by, event.by_addr) if event.by_addr else shown(event.by)
    return line(source, "INVITE", conn.nick, event.room)


def _who_line(conn: IrcConnection, person: Person, room: str) -> str:
    here = ("G" if person.away else "H") + ("*" if "o" in person.modes else "")
    mark = ""
    for name in person.rooms:
        bare = name.lstrip("@+")
        if room != "*" and room_key(bare) == room_key(room):
            mark = name[: len(name) - len(bare)]
            break
    flags = here + (mark if "multi-prefix" in conn.caps else mark[:1])
    ident = person.ident or "~u"
    return trailing_line(
        conn.server,
        "352",
        conn.nick,
        room,
        ident,
        host(person.addr),
        conn.server,
        shown(person.name),
        flags,
        f"0 {clean(person.realname or person.name)}",
    )


def _people(conn: IrcConnection, event: People) -> str:
    verb, asked = conn.asked(event.id)
    found = {name_key(p.name): p for p in event.found}
    if verb == "WHO":
        mask = asked[0] if asked else "*"
        room = event.room or "*"
        people = event.found
        if room == "*" and event.room is not None:  # a mask: who matches, and is seen
            people = tuple(p for p in people if _matches(conn, p, mask))
        lines = [_who_line(conn, p, room) for p in people]
        return "".join(lines) + numeric(conn, "315", mask, "End of WHO list")
    if verb == "ISON":
        names = [shown(found[name_key(n)].name) for n in asked if name_key(n) in found]
        return numeric(conn, "303", " ".join(names))
    if verb == "USERHOST":
        items = []
        for nick in asked:
            p = found.get(name_key(nick))
            if p is not None:
                away = "-" if p.away else "+"
                items.append(f"{shown(p.name)}={away}{p.ident or '~u'}@{host(p.addr)}")
        return numeric(conn, "302", " ".join(items))
    if verb == "MODE-user":
        target = asked[0] if asked else "*"
        if not event.found:
            return numeric(conn, "401", target, "No such nick/channel")
        return numeric(conn, "502", "Can't change mode for other users")
    out = []
    for nick in asked:
        p = found.get(name_key(nick))
        if p is None:
            out.append(numeric(conn, "401", nick, "No such nick/channel"))
            continue
        out.append(_whois(conn, p))
    out.append(numeric(conn, "318", ",".join(asked), "End of /WHOIS list"))
    return "".join(out)


def _matches(conn: IrcConnection, p: Person, mask: str) -> bool:
    """Whether a WHO mask matches ``p`` (nick, user, host or real name; an invisible
    user only when it shares a channel with the asker, or is the asker)."""
    if "i" in p.modes and p.name != conn.name:
        shared = {room_key(r.lstrip("@+")) for r in p.rooms} & set(conn.channels)
        if not shared:
            return False
    if mask in ("*", "0"):
        return True
    pattern = mask.casefold()
    fields = (shown(p.name), p.ident or "~u", host(p.addr), p.realname or "")
    return any(fnmatch.fnmatchcase(f.casefold(), pattern) for f in fields)


def _whois(conn: IrcConnection, p: Person) -> str:
    nick = shown(p.name)
    out = [
        trailing_line(
            conn.server,
            "311",
            conn.nick,
            nick,
            p.ident or "~u",
            host(p.addr),
            "*",
            clean(p.realname or p.name),
        )
    ]
    if p.rooms:
        out.append(numeric(conn, "319", nick, " ".join(p.rooms)))
    out.append(numeric(conn, "312", nick, conn.server, "imkit"))
    if "o" in p.modes:
        out.append(numeric(conn, "313", nick, "is an IRC operator"))
    if p.away:
        out.append(numeric(conn, "301", nick, clean(p.away)))
    if p.account:
        out.append(numeric(conn, "330", nick, shown(p.account), "is logged in as"))
    if p.idle is not None:  # (a user of another node of a cluster: not known here)
        idle, signon = str(int(p.idle)), str(int(p.signon))
        out.append(numeric(conn, "317", nick, idle, signon, "seconds idle, signon time"))
    return "".join(out)


def _user_modes(conn: IrcConnection, event: UserModesSet) -> str:
    verb, _ = conn.asked(event.id)
    conn.modes = event.modes
    changes = (f"+{event.add}" if event.add else "") + (f"-{event.remove}" if event.remove else "")
    out = line(conn.source, "MODE", conn.nick, changes) if changes else ""
    if verb == "OPER":
        out = numeric(conn, "381", "You are now an IRC operator") + out
    return out


def _is_away(conn: IrcConnection, event: IsAway) -> str:
    return numeric(conn, "301", shown(event.name), clean(event.message))


def _counts(conn: IrcConnection, event: Counts) -> str:
    verb, _ = conn.asked(event.id)
    if verb == "welcome":
        if not conn.registered:
            return ""
        conn.welcomed = True
        deferred, conn.deferred = "".join(conn.deferred), []
        return lusers(conn, event) + motd(conn) + deferred
    return lusers(conn, event)


def _away(conn: IrcConnection, event: AwayOk) -> str:
    if event.away:
        return numeric(conn, "306", "You have been marked as being away")
    return numeric(conn, "305", "You are no longer marked as being away")


def _login(conn: IrcConnection, event: LoginOk) -> str:
    conn.account = event.name
    conn.name = event.name
    mask = f"{shown(event.name)}!{conn.ident or '~u'}@{conn.host}"
    return numeric(
        conn, "900", mask, shown(event.name), f"You are now logged in as {event.name}"
    ) + (numeric(conn, "903", "SASL authentication successful"))


def _kept(conn: IrcConnection, event: KeptMessage) -> str:
    return render(event.message, conn.form | {"server-time"}, conn.lobby) or ""


def _bye(conn: IrcConnection, event: Bye) -> str:
    conn.gone()  # its last line: its nick is left now (WHOWAS)
    text = clean(event.message)
    if event.reason == "kicked":
        kill = line(conn.server, "KILL", conn.nick, f"{conn.server} ({text})")
        return kill + trailing_line(None, "ERROR", f"Closing Link: {conn.host} (Killed: {text})")
    if event.reason == "idle":
        text = "Ping timeout"
    return trailing_line(None, "ERROR", f"Closing Link: {conn.host} ({text})")


def _nothing(conn: IrcConnection, event: Event) -> str:
    return ""


def _history(conn: IrcConnection, event: HistoryPage) -> str:
    verb, context = conn.asked(event.id)
    if verb != "CHATHISTORY":
        return ""  # a replay for a text client: IRC clients ask with CHATHISTORY
    target, sub, msgid, limit = context
    messages = list(event.messages)
    if msgid and sub != "BEFORE":
        messages = [m for m in messages if m.msgid is not None and m.msgid > msgid]
        messages = messages[: int(limit)] if sub == "AFTER" else messages[-int(limit) :]
    form = conn.form | {"server-time", "message-tags"}
    if "batch" not in conn.caps:
        return "".join(render(m, form, conn.lobby) or "" for m in messages)
    conn.batches += 1
    ref = f"h{conn.batches}"
    out = [line(conn.server, "BATCH", f"+{ref}", "chathistory", target)]
    out += [chat_line(m, form, extra={"batch": ref}) for m in messages]
    out.append(line(conn.server, "BATCH", f"-{ref}"))
    return "".join(out)


_REPLIES: dict[type[Event], Callable[[IrcConnection, Any], str | None]] = {
    RenameOk: _renamed,
    Error: _error,
    Joined: _joined,
    UserList: _names,
    RoomOk: _room_ok,
    TopicInfo: _topic,
    ModesInfo: _modes,
    RoomList: _rooms,
    Invited: _invited,
    People: _people,
    Counts: _counts,
    AwayOk: _away,
    UserModesSet: _user_modes,
    IsAway: _is_away,
    LoginOk: _login,
    KeptMessage: _kept,
    Bye: _bye,
    HistoryPage: _history,
    Welcome: _nothing,
    Pong: _nothing,
    Ok: _nothing,
}
