"""The hub's events that many users receive (a message, a join, a rename...) as IRC
lines: the same for every IRC recipient whose capabilities are the same, so that
:meth:`IrcConnection.frame_bytes` renders each once per distinct *form* (the
capabilities that change the line) however many users receive it. Nothing here depends
on who receives the line."""

from __future__ import annotations

from dataclasses import replace

from imkit.irc.message import MAX_LINE, clean, line, split_text, tag_prefix, trailing_line
from imkit.irc.names import irc_mask, prefix, shown
from imkit.irc.redaction import render_amended
from imkit.protocol import (
    Bye,
    ChatMessage,
    Event,
    ModesChanged,
    NameChange,
    Presence,
    RoomJoin,
    RoomKicked,
    RoomPart,
    ServerNotice,
    TopicInfo,
)
from imkit.protocol.edits import MessageDeleted, MessageEdited
from imkit.protocol.queries import AccountChanged, Described, WallopsMessage
from imkit.rules.rooms import LISTS
from imkit.rules.times import iso_time

# The capabilities that change a broadcast line: a form is the subset of them a
# connection has, in this order. (draft/message-redaction changes only a deletion's
# line: IrcConnection.form_for adds it for those alone, so that it does not double
# the renderings of every message.)
FORM_CAPS = (
    "server-time",
    "message-tags",
    "account-tag",
    "extended-join",
)


def message_tags(
    event: ChatMessage, form: frozenset[str], extra: dict[str, str | None] | None = None
) -> str:
    tags: dict[str, str | None] = dict(extra or {})
    if "server-time" in form:
        tags["time"] = iso_time(event.time)
    if "message-tags" in form and event.msgid is not None:
        tags["msgid"] = event.msgid
    if "account-tag" in form and event.account is not None:
        tags["account"] = shown(event.account)
    if "message-tags" in form and event.bot:  # IRCv3 bot mode: a webhook posted it
        tags["bot"] = None
    return tag_prefix(tags)


def chat_line(
    event: ChatMessage, form: frozenset[str], extra: dict[str, str | None] | None = None
) -> str:
    """The message as one PRIVMSG (NOTICE) line; or several, when its text is longer
    than an IRC client could send in one line (a text-mode or JSON user's lines may be
    longer): split by :func:`split_text` into lines of at most 512 bytes with their
    source, each piece with the message's tags but the first alone with its msgid (a
    msgid names one line; history and replies refer to the message by it, where it
    begins). A text that fits a client's line goes whole, as ergo sends it, even when
    its source makes the line longer than 512 bytes: IRC clients read such lines, and
    a client that sent a full line gets it back as one line (irctest's buffering
    tests count the lines)."""
    target = event.room if event.to is None else shown(event.to)
    source = prefix(event.sender, event.addr)
    verb = "NOTICE" if event.notice else "PRIVMSG"
    text = clean(event.text)
    as_sent = line(None, verb, target or "*", text)  # as a client could send it, at least
    if len(as_sent.encode()) <= MAX_LINE:
        return trailing_line(
            source, verb, target or "*", text, tags=message_tags(event, form, extra)
        )
    head = trailing_line(source, verb, target or "*", "")[:-2]  # up to its text's ':'
    pieces = split_text(head, text)
    tags = message_tags(event, form, extra)
    out = [trailing_line(source, verb, target or "*", pieces[0], tags=tags)]
    if len(pieces) > 1:
        rest = message_tags(replace(event, msgid=None), form, extra)
        out += [trailing_line(source, verb, target or "*", p, tags=rest) for p in pieces[1:]]
    return "".join(out)


def join_line(name: str, addr: str, room: str, account: str | None, form: frozenset[str]) -> str:
    if "extended-join" in form:
        return line(prefix(name, addr), "JOIN", room, shown(account) if account else "*", name)
    return line(prefix(name, addr), "JOIN", room)


def mode_args(event: ModesChanged) -> list[str]:
    """A change's arguments, the names of +o and +v as IRC shows them."""
    args, named, sign = list(event.args), [], True
    for char in event.changes:  # the letters that took an argument, in order
        if char in "+-":
            sign = char == "+"
        elif char in "ov" + LISTS or (sign and char in "kl"):
            named.append(char)
    shown_args = []
    for index, arg in enumerate(args):
        kind = named[index] if index < len(named) else ""
        shown_args.append(
            shown(arg) if kind in ("o", "v") else irc_mask(arg) if kind in LISTS else arg
        )
    return shown_args


def _source(name: str) -> str:
    return shown(name)


def render(event: Event, form: frozenset[str], lobby: str) -> str | None:
    """The line(s) of a broadcast ``event`` in ``form``; None when IRC shows nothing
    (``lobby``: the lobby's name, the channel of presence)."""
    kind = type(event)
    if kind is ChatMessage:
        assert isinstance(event, ChatMessage)
        return chat_line(event, form)
    if kind is Presence:
        assert isinstance(event, Presence)
        if event.online:  # told to the lobby: the user came to the chat, so to #lobby
            return join_line(event.name, event.addr, lobby, None, form)
        reason = f"Quit: {event.reason}" if event.reason else "Client Quit"
        return trailing_line(prefix(event.name, event.addr), "QUIT", clean(reason))
    if kind is NameChange:
        assert isinstance(event, NameChange)
        return line(prefix(event.old, event.addr), "NICK", shown(event.new))
    if kind is RoomJoin:
        assert isinstance(event, RoomJoin)
        return join_line(event.name, event.addr, event.room, event.account, form)
    if kind is RoomPart:
        assert isinstance(event, RoomPart)
        source = prefix(event.name, event.addr)
        if event.reason:
            return trailing_line(source, "PART", event.room, clean(event.reason))
        return line(source, "PART", event.room)
    if kind is RoomKicked:
        assert isinstance(event, RoomKicked)
        reason = clean(event.reason or event.by)
        return trailing_line(_source(event.by), "KICK", event.room, shown(event.name), reason)
    if kind is TopicInfo:
        assert isinstance(event, TopicInfo)
        if not event.changed:
            return None
        return trailing_line(
            _source(event.by or "*"), "TOPIC", event.room, clean(event.topic or "")
        )
    if kind is ModesChanged:
        assert isinstance(event, ModesChanged)
        return line(_source(event.by), "MODE", event.room, event.changes, *mode_args(event))
    if kind is WallopsMessage:
        assert isinstance(event, WallopsMessage)
        return trailing_line(prefix(event.name, event.addr), "WALLOPS", clean(event.text))
    if kind is Described:
        assert isinstance(event, Described)
        source = prefix(event.name, event.addr)
        if event.realname is not None:
            return trailing_line(source, "SETNAME", clean(event.realname))
        if event.away:
            return trailing_line(source, "AWAY", clean(event.away))
        return line(source, "AWAY")
    if kind is AccountChanged:  # account-notify
        assert isinstance(event, AccountChanged)
        account = shown(event.account) if event.account else "*"
        return line(prefix(event.name, event.addr), "ACCOUNT", account)
    if kind is ServerNotice:
        assert isinstance(event, ServerNotice)
        return trailing_line(None, "NOTICE", "*", clean(event.message))
    if kind is Bye:
        assert isinstance(event, Bye)
        return trailing_line(None, "ERROR", clean(event.message))
    if kind is MessageDeleted or kind is MessageEdited:
        assert isinstance(event, MessageDeleted | MessageEdited)
        return render_amended(event, form)
    return None
