"""Line framing, and the limits on lines: bounded, whatever a peer sends."""

from __future__ import annotations

from imkit.rules.names import MAX_NAME_LENGTH

# A chat line, not a file transfer: 4 KiB holds several screens of text and keeps the
# per-connection framing buffer small. The operator can raise it with --max-line.
DEFAULT_MAX_LINE = 4096

# --max-line limits the *message text* (its UTF-8 bytes) in both modes, so that what
# netcat can send, `imkit send` can send too. A line may be longer by its envelope, up
# to a fixed allowance (docs/protocol.md, "Common rules"):
#
# * text mode: "to|NAME|" before the text; a name has at most 32 characters of at most
#   4 bytes each (an address, the name of a user who has not renamed, is shorter);
TEXT_LINE_ALLOWANCE = len("to||") + 4 * MAX_NAME_LENGTH  # 132 bytes
# * JSON mode: 1 KiB for the rest of the object (type, to, id), and room for the text
#   with every character escaped: \" and \\ take 2 bytes for 1, \uXXXX 6 bytes for a
#   2- or 3-byte character and a surrogate pair 12 for a 4-byte one: at most 3 times the
#   text. Only control characters escaped as \u00XX (6 bytes for 1) can exceed it.
JSON_LINE_ALLOWANCE = 1024
JSON_ESCAPE_FACTOR = 3


def text_line_limit(max_line: int) -> int:
    """The longest text-mode line (``to|NAME|TEXT``) when texts have ``max_line`` bytes."""
    return max_line + TEXT_LINE_ALLOWANCE


def json_line_limit(max_line: int) -> int:
    """The longest JSON line when texts have ``max_line`` bytes (13,312 for 4,096)."""
    return JSON_ESCAPE_FACTOR * max_line + JSON_LINE_ALLOWANCE


class LineFramer:
    """Splits a byte stream into lines of at most ``max_line`` bytes.

    Lines end in ``\\n``; one trailing ``\\r`` is dropped. A longer line is reported once
    (as None) as soon as it is known to be too long, and the rest of it, up to the next
    newline, is discarded rather than read as new lines. The buffer never holds more than
    ``max_line + 1`` bytes (when :attr:`max_line` is lowered, the old limit + 1 until the
    next feed).
    """

    __slots__ = ("_max", "_partial", "_discarding")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self._max = max_line
        self._partial = b""
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return []
            data = data[newline + 1 :]
            self._discarding = False
        if self._partial:
            data = self._partial + data
        parts = data.split(b"\n")
        rest = parts.pop()
        limit = self._max
        lines: list[bytes | None] = []
        for part in parts:
            if part[-1:] == b"\r":
                part = part[:-1]
            lines.append(part if len(part) <= limit else None)
        # One byte of slack for a "\r" that will be dropped when the newline comes.
        if len(rest) > limit + 1:
            lines.append(None)
            self._discarding = True
            rest = b""
        self._partial = rest
        return lines

    @property
    def max_line(self) -> int:
        return self._max

    @max_line.setter
    def max_line(self, max_line: int) -> None:
        # Takes effect from the next feed; a longer partial line is then reported.
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self._max = max_line

    @property
    def buffered(self) -> int:
        return len(self._partial)
