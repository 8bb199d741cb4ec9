"""WHOWAS (RFC 1459 4.5.3, docs/irc.md): a node's bounded memory of the nicks its IRC
users left, by a nick change or by leaving the chat, newest first; and the replies to a
WHOWAS from it. Pure: the IRC port keeps one :class:`Whowas` for all its connections
(imkit.server.irc_port), each connection tells it what it left
(:meth:`imkit.irc.wire.IrcConnection.gone`, its ``name`` setter)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from imkit.irc.message import trailing_line
from imkit.irc.names import shown, unescaped
from imkit.rules.names import name_key

# How many past nicks a node remembers, all users together (the oldest is forgotten
# first): enough for the conversations of a day on a small server, and a bound on the
# memory whatever the users do (a rename loop fills it, and pushes out only older ones).
WHOWAS_MAX = 1000


@dataclass(frozen=True, slots=True)
class Was:
    """One nick as its user had it when it left it."""

    name: str  # the imkit name (shown escaped)
    ident: str  # the USER name
    host: str
    realname: str
    when: float  # when it was left (seconds since the epoch)


class Whowas:
    """The nicks left on this node, at most ``limit``, oldest forgotten first."""

    def __init__(self, limit: int = WHOWAS_MAX) -> None:
        self._entries: deque[tuple[str, Was]] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, was: Was) -> None:
        self._entries.append((name_key(was.name), was))

    def lookup(self, nick: str, count: int = 0) -> list[Was]:
        """The entries of ``nick`` (an IRC nick: escapes read back; compared as names
        are), newest first; at most ``count`` when it is positive (RFC 1459: a
        non-positive count is a full search)."""
        key = name_key(unescaped(nick))
        found = [was for k, was in reversed(self._entries) if k == key]
        return found[:count] if count > 0 else found


def whowas_lines(server: str, me: str, nick: str, entries: list[Was]) -> str:
    """The reply to ``WHOWAS nick`` for the client ``me``: ``314`` and ``312`` for each
    entry (its server and when it was left), or ``406``; then ``369``."""
    out: list[str] = []
    for was in entries:
        nick_was = shown(was.name)
        user = (nick_was, was.ident, was.host, "*", was.realname)
        out.append(trailing_line(server, "314", me, *user))
        when = datetime.fromtimestamp(was.when, UTC).strftime("%a %b %d %H:%M:%S %Y UTC")
        out.append(trailing_line(server, "312", me, nick_was, server, when))
    if not entries:
        out.append(trailing_line(server, "406", me, nick, "There was no such nickname"))
    out.append(trailing_line(server, "369", me, nick, "End of WHOWAS"))
    return "".join(out)


def whowas_count(text: str | None) -> int:
    """WHOWAS's optional count (0: all, as a non-positive or unreadable one is)."""
    try:
        return int(text) if text is not None else 0
    except ValueError:
        return 0
