"""Names between imkit and IRC (docs/irc.md, "Names"): which nicks an IRC client may
take, how an imkit name that IRC cannot carry is shown to IRC users (escaped, never
changed or merged with another), and the host shown for an address. Pure."""

from __future__ import annotations

import re

from imkit.rules.names import name_problem

# What an IRC nick cannot hold anywhere (a message's source is NICK!USER@HOST, targets
# are comma-separated, masks use * and ?, '.' marks a server name), and '\', which
# starts an escape here; ':' and '#' etc. cannot start one, nor can a digit or '-'.
_NEVER = frozenset(" ,*?!@.:\\\x00\r\n")
_NOT_FIRST = frozenset("#&$:+%~-0123456789")
ESCAPE = "\\"


def nick_problem(nick: str) -> str | None:
    """Why an IRC client cannot take ``nick`` (its 432), or None."""
    if not nick:
        return "a nick cannot be empty"
    if nick[0] in _NOT_FIRST:
        return f"a nick cannot begin with {nick[0]!r}"
    for char in nick:
        if char in _NEVER:
            return f"a nick cannot contain {char!r}"
    return name_problem(nick)


def shown(name: str) -> str:
    """``name`` as IRC users see it: itself when IRC can carry it, else each character
    it cannot carry written ``\\hh`` (its code, two hex digits: they are all ASCII), so
    that ``127.0.0.1:5000`` is ``\\3127\\2e0\\2e0\\2e1\\3a5000``. Unique: no nick an
    IRC client may take holds a backslash, and :func:`unescaped` reverses it."""
    if name and name[0] not in _NOT_FIRST and not any(char in _NEVER for char in name):
        return name
    out = []
    for index, char in enumerate(name):
        if char in _NEVER or (index == 0 and char in _NOT_FIRST):
            out.append(f"{ESCAPE}{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def unescaped(nick: str) -> str:
    """The imkit name an IRC client means by ``nick`` (the reverse of :func:`shown`)."""
    if ESCAPE not in nick:
        return nick
    out, index = [], 0
    while index < len(nick):
        char = nick[index]
        if char == ESCAPE and index + 3 <= len(nick):
            try:
                out.append(chr(int(nick[index + 1 : index + 3], 16)))
                index += 3
                continue
            except ValueError:
                pass
        out.append(char)
        index += 1
    return "".join(out)


def ban_mask(mask: str) -> str:
    """An IRC ban (or exception) mask as imkit's room masks read it (docs/rooms.md):
    ``nick!*@*`` is the name (a pattern when it has ``*`` or ``?``), ``*!*@HOST`` the
    address or network, ``account:NAME`` as it is; any other mask is kept whole (imkit
    matches no user part and no host pattern: the mask then matches no one)."""
    nick, bang, rest = mask.partition("!")
    if not bang:
        return unescaped(mask)
    user, _, where = rest.partition("@")
    if user in ("*", "") and where in ("*", ""):
        return unescaped(nick)
    if nick == "*" and user in ("*", "~*", "") and where not in ("*", ""):
        return where
    return mask


def irc_mask(mask: str) -> str:
    """A room mask as IRC shows it: a name as ``name!*@*`` (a pattern's wildcards as
    they are), an address as ``*!*@ADDR``."""
    if "!" in mask or mask.startswith("account:"):
        return mask
    if any(char.isdigit() for char in mask[:1]) or ":" in mask or "/" in mask:
        return f"*!*@{mask}"
    parts = re.split(r"([*?])", mask)
    return "".join(part if part in ("*", "?", "") else shown(part) for part in parts) + "!*@*"


def host(addr: str) -> str:
    """The host shown for an address as imkit shows it (``IP:PORT``, ``[IPv6]:PORT``,
    or a pseudonym with --hide-addresses): the IP without the port, the pseudonym as
    it is. IPv6 hosts begin with ``0`` when they would begin with ``:``."""
    if addr.startswith("["):
        inside = addr[1:].partition("]")[0]
        return "0" + inside if inside.startswith(":") else inside
    head, sep, tail = addr.rpartition(":")
    if sep and tail.isdigit() and head:
        return head
    return addr.replace(" ", "_") or "unknown"


def prefix(name: str, addr: str) -> str:
    """A message's source for the user ``name`` at ``addr``: ``NICK!~u@HOST``. imkit
    keeps no IRC user names for its users, so the user part is the same for all."""
    return f"{shown(name)}!~u@{host(addr)}"
