"""One client's protocol state on the server side: bytes in, commands out; events out."""

from __future__ import annotations

from imkit.protocol.codes import BAD_REQUEST, INVALID_UTF8, LINE_TOO_LONG, Mode
from imkit.protocol.commands import Authenticate, Command, Invalid, PrivateMessage, PublicMessage
from imkit.protocol.edits import EditMessage
from imkit.protocol.events import Event, encode
from imkit.protocol.framing import DEFAULT_MAX_LINE, LineFramer, json_line_limit, text_line_limit
from imkit.protocol.parsing import (
    invalid,
    load_json,
    looks_like_hello,
    parse_json_request,
    parse_text,
)


class ServerConnection:
    """One client's protocol state on the server side.

    Feed it what the socket delivered with :meth:`receive_data`; it returns the commands
    of every complete line. Encode what the client should receive with :meth:`encode`.

    ``max_line`` limits the UTF-8 bytes of a message's text; a line may be longer by its
    envelope (:func:`text_line_limit`, :func:`json_line_limit`), and the framer's buffer
    is bounded by the line limit of the connection's mode (JSON's until it is decided).
    With ``json`` the mode is JSON from the start (a WebSocket client).
    """

    __slots__ = ("mode", "lines_received", "_max_line", "_framer")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, json: bool = False) -> None:
        self.mode = Mode.UNDECIDED
        # Every line counts as activity for the idle timer, empty lines included.
        self.lines_received = 0
        self._max_line = max_line
        # The first line may be a hello: until the mode is known, allow a JSON line.
        self._framer = LineFramer(json_line_limit(max_line))
        if json:  # a WebSocket client: JSON from the first message (imkit.web)
            self._decide(Mode.JSON)

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held; at most the mode's line limit + 1."""
        return self._framer.buffered

    def receive_data(self, data: bytes) -> list[Command]:
        commands: list[Command] = []
        max_line = self._max_line
        for line in self._framer.feed(data):
            self.lines_received += 1
            if line is None:
                commands.append(self._line_too_long())
                continue
            if not line:
                continue
            if len(line) > max_line:
                # Rare, and only then is the text measured apart from its envelope.
                commands.append(self._receive_long_line(line))
                continue
            try:
                text = line.decode()
            except UnicodeDecodeError:
                commands.append(invalid(INVALID_UTF8, "the line is not valid UTF-8; discarded"))
                continue
            commands.append(self._parse(text))
        return commands

    def _line_too_long(self) -> Invalid:
        # A line beyond its mode's limit. Text mode names --max-line, the limit its users
        # know (a longer line is only ever a private message's envelope).
        limit = self._framer.max_line if self.mode is Mode.JSON else self._max_line
        return invalid(LINE_TOO_LONG, f"line too long (the limit is {limit} bytes); discarded")

    def _receive_long_line(self, line: bytes) -> Command:
        """A line longer than --max-line: a message whose text is within it, or an error.

        In JSON mode any request may be longer (up to the JSON line limit); in text mode
        only ``to|NAME|TEXT``, by its envelope. Like a line the framer refused, a line
        refused here as too long does not decide the mode.
        """
        mode = self.mode
        is_json = mode is Mode.JSON or (mode is Mode.UNDECIDED and line.startswith(b"{"))
        # Text mode checks the line limit here too, for lines framed while undecided.
        is_private = line.startswith((b"to|", b"edit|")) and len(line) <= text_line_limit(
            self._max_line
        )
        if not (is_json or is_private):
            return self._line_too_long()
        try:
            text = line.decode()
        except UnicodeDecodeError:
            return invalid(INVALID_UTF8, "the line is not valid UTF-8; discarded")
        if mode is Mode.JSON:
            return self._within_max_line(self._parse(text))
        if is_json:  # undecided: a hello decides JSON mode; any other line is text
            hello = looks_like_hello(text)
            if hello is None:
                return self._line_too_long()
            self._decide(Mode.JSON)
            return parse_json_request(hello)
        command = parse_text(text)
        if not isinstance(command, PrivateMessage | EditMessage):  # no second "|"
            return self._line_too_long()
        if len(command.text.encode()) > self._max_line:
            return self._line_too_long()  # text mode has one answer for every long line
        if mode is Mode.UNDECIDED:
            self._decide(Mode.TEXT)
        return command

    def _within_max_line(self, command: Command) -> Command:
        """``command``, or a line_too_long error (with its id) when it is a message whose
        text passes --max-line."""
        if isinstance(command, PublicMessage | PrivateMessage | EditMessage):
            if len(command.text.encode()) > self._max_line:
                message = f"line too long: the message text is longer than {self._max_line} bytes"
                return invalid(LINE_TOO_LONG, message, command.id)
        return command

    def _decide(self, mode: Mode) -> None:
        self.mode = mode
        limit = json_line_limit if mode is Mode.JSON else text_line_limit
        self._framer.max_line = limit(self._max_line)

    def _parse(self, text: str) -> Command:
        mode = self.mode
        if mode is Mode.TEXT:
            return parse_text(text)
        if mode is Mode.JSON:
            try:
                obj = load_json(text)
            except ValueError as problem:
                return invalid(BAD_REQUEST, f"malformed JSON: {problem}")
            return parse_json_request(obj)
        hello = looks_like_hello(text)
        if hello is not None:
            self._decide(Mode.JSON)
            return parse_json_request(hello)
        self._decide(Mode.TEXT)
        if text.startswith("pass|"):
            return Authenticate(password=text[5:])
        return parse_text(text)

    def encode(self, event: Event) -> bytes:
        return encode(event, self.mode)
