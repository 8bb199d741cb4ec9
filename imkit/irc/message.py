"""IRC messages as bytes on the wire and back (RFC 1459 section 2.3, with IRCv3 message
tags): :func:`parse` one received line into a :class:`Message`, :func:`line` one line to
send. Pure: no state, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 1459: 512 bytes a line, CR LF included; IRCv3 message tags add up to 8191 bytes
# (the leading @ and the space after them included) in front of that.
MAX_LINE = 512
MAX_TAGS = 8191
MAX_CLIENT_TAGS = 4096  # of which a client may send 4094 bytes, the @ and space besides
# Tag values escape these (IRCv3 message-tags, "Escaping values").
_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


@dataclass(slots=True)
class Message:
    """One IRC message: its tags, its source (None from a client), its command (upper
    case) and its parameters (the trailing one included, without its ``:``)."""

    command: str
    params: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None


class BadMessage(ValueError):
    """A line that is not an IRC message at all (empty, only tags, only a source)."""


def unescape_tag(value: str) -> str:
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append(_UNESCAPES.get(following, following))
    return "".join(out)


def escape_tag(value: str) -> str:
    return "".join(_ESCAPES.get(char, char) for char in value)


def parse(text: str) -> Message:
    """One line (without its CR LF) as a :class:`Message`; :class:`BadMessage` when
    it has no command."""
    tags: dict[str, str] = {}
    rest = text
    if rest.startswith("@"):
        head, _, rest = rest.partition(" ")
        for item in head[1:].split(";"):
            if not item:
                continue
            key, _, value = item.partition("=")
            tags[key] = unescape_tag(value)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        head, _, rest = rest.partition(" ")
        source = head[1:]
        rest = rest.lstrip(" ")
    params: list[str] = []
    while rest:
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        word, _, rest = rest.partition(" ")
        params.append(word)
        rest = rest.lstrip(" ")
    if not params or not params[0]:
        raise BadMessage("no command")
    command = params.pop(0).upper()
    return Message(command, params, tags, source)


def tag_prefix(tags: dict[str, str | None]) -> str:
    """``@a=b;c `` for ``tags`` (a None value: the tag without ``=``), or ""."""
    if not tags:
        return ""
    items = [key if value is None else f"{key}={escape_tag(value)}" for key, value in tags.items()]
    return "@" + ";".join(items) + " "


def line(source: str | None, command: str, *params: str, tags: str = "") -> str:
    """One line to send, CR LF included. The last parameter is made trailing (``:``)
    when it needs to be (empty, a space in it, or a leading ``:``); the others must be
    single words, as the callers make them. ``tags``: a :func:`tag_prefix`."""
    parts = [] if source is None else [":" + source]
    parts.append(command)
    if params:
        *middle, last = params
        parts.extend(middle)
        if not last or " " in last or last.startswith(":"):
            last = ":" + last
        parts.append(last)
    return tags + " ".join(parts) + "\r\n"


def trailing_line(source: str | None, command: str, *params: str, tags: str = "") -> str:
    """As :func:`line`, the last parameter always trailing (a message's text, a
    reason: some clients expect the ``:`` there whatever the text)."""
    parts = [] if source is None else [":" + source]
    parts.append(command)
    *middle, last = params
    parts.extend(middle)
    parts.append(":" + last)
    return tags + " ".join(parts) + "\r\n"


def split_text(head: str, text: str, limit: int = MAX_LINE) -> list[str]:
    """``text`` in pieces that each fit a line ``head + piece + CR LF`` of at most
    ``limit`` bytes (``head``: the line before its text, ``:SOURCE PRIVMSG TARGET :``;
    tags are not counted, they have a budget of their own). A piece ends at a space
    where there is one in the second half of its room (the space stays at the end of
    the piece, so that the pieces joined are ``text``), else at the last whole UTF-8
    character that fits: a character is never cut. One piece when ``text`` fits; at
    least one character a piece, however long ``head`` is."""
    room = max(limit - len(head.encode()) - 2, 4)  # 4: one character of any size
    data = text.encode()
    if len(data) <= room:
        return [text]
    pieces: list[str] = []
    start = 0
    while len(data) - start > room:
        end = start + room
        while data[end] & 0xC0 == 0x80:  # a continuation byte: inside a character
            end -= 1
        space = data.rfind(b" ", start + room // 2, end)
        if space != -1:
            end = space + 1
        pieces.append(data[start:end].decode())
        start = end
    pieces.append(data[start:].decode())
    return pieces


def clean(text: str) -> str:
    """``text`` without CR, LF and NUL, which would end or break an IRC line (a text
    from a text-mode or JSON user may hold them)."""
    if "\r" in text or "\n" in text or "\x00" in text:
        return text.replace("\r", " ").replace("\n", " ").replace("\x00", "")
    return text
