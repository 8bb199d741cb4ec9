"""One IRC client's protocol state on the server side (:class:`IrcConnection`), what
:class:`~imkit.protocol.ServerConnection` is to the chat port: bytes in, the hub's
commands out; the hub's events in, IRC lines out. Pure: no socket, no clock, no task.

Registration (PASS, NICK, USER, CAP, AUTHENTICATE) is this state's until it yields a
:class:`~imkit.protocol.queries.Register` command, which the transport answers
(imkit.transport.irc). Each command it hands the hub gets a request id of its own, and
what it was asked (``_asked``) decides how the reply is shown: the same ``no_such_user``
error is a 401 for a PRIVMSG and a 441 for a KICK.

**One broadcast, one rendering per form.** A message to a channel reaches every member
as the same bytes, except that capabilities change them (server-time adds a tag,
extended-join a field). Those capabilities make the connection's *form*
(:data:`imkit.irc.render.FORM_CAPS`); :meth:`frame_bytes` renders a
:class:`~imkit.protocol.Frame`'s event once per form into ``frame.forms`` and every
other recipient with that form takes the same bytes. What depends on the recipient is
only whether it gets the line at all (its own message without echo-message).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from imkit.irc import numerics, people, replies, requests
from imkit.irc.labels import LabelEnd, LabelStart, labeled
from imkit.irc.message import MAX_CLIENT_TAGS, MAX_LINE, MAX_TAGS, BadMessage, parse
from imkit.irc.names import prefix, shown
from imkit.irc.redaction import CAPABILITY as REDACTION
from imkit.irc.render import FORM_CAPS, render
from imkit.irc.requests import PRE_REGISTRATION
from imkit.irc.whowas import Was, Whowas
from imkit.protocol import (
    INVALID_UTF8,
    LINE_TOO_LONG,
    ChatMessage,
    Command,
    Error,
    Event,
    Frame,
    Mode,
    NameChange,
    RenameOk,
)
from imkit.protocol.edits import MessageDeleted
from imkit.protocol.framing import LineFramer
from imkit.protocol.queries import AccountChanged, Answer, Described, Echo
from imkit.protocol.records import record

# Every IRC command this server knows: its handler (imkit.irc.requests, imkit.irc.people).
HANDLERS = requests.HANDLERS | people.HANDLERS
# How many requests' contexts are kept for their replies (a reply comes long before).
_ASKED_KEPT = 512
_REDACTION_FORM = frozenset((REDACTION,))


@record
class Lines(Event):
    """IRC lines the wire made itself (CR LF included), queued through the hub."""

    text: str

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {}


def _held(event: Event, name: str) -> bool:
    """Whether a broadcast that comes during a labeled line is part of its response:
    not another user's message (on a cluster node the replies to a labeled line come
    after a Redis round trip, during which the others go on talking)."""
    return type(event) is not ChatMessage or event.sender == name


class IrcConnection:
    """One IRC client's state on the server side; see the module docstring."""

    mode = Mode.IRC

    def __init__(
        self,
        *,
        server_name: str,
        lobby: str,
        host: str,
        version: str = "imkit",
        created: str = "",
        motd: tuple[str, ...] | None = None,
        max_line: int = 4096,
        clock: Callable[[], float] = time.time,
        operators: dict[str, str] | None = None,
        whowas: Whowas | None = None,
    ) -> None:
        self.clock = clock
        self.whowas = whowas if whowas is not None else Whowas()  # the node's, shared
        self.operators = operators or {}  # OPER's names and passwords (--irc-operator)
        self.modes = ""  # its user modes, as the hub last said
        self.server = server_name
        self.lobby = lobby
        self.host = host  # its own host, as the others see it
        self.version = version
        self.created = created
        self.motd = motd
        self.max_line = max_line
        self.lines_received = 0
        self.pinged = False  # sent a PING for being quiet; any line it sends answers it
        self._framer = LineFramer(MAX_TAGS + MAX_LINE)
        # Registration: what it said so far; then its name in the chat.
        self._name = ""  # its imkit name once registered ("" before): see name
        self._gone = False  # its nick was remembered as left (gone)
        self.requested_nick: str | None = None
        self.ident: str | None = None
        self.realname: str | None = None
        self.password: str | None = None
        self.registered = False
        self.negotiating = False  # CAP LS or REQ before registration: wait for CAP END
        self.cap_version = 0
        self.caps: set[str] = set()
        self.form: frozenset[str] = frozenset()
        self.sasl: str | None = None  # the mechanism being used (AUTHENTICATE)
        self.sasl_buffer = ""
        self.channels: dict[str, str] = {}  # room key -> name, what it is in
        self.failed_joins: set[str] = set()
        self.batches = 0  # BATCH references given so far
        self.away: str | None = None  # its AWAY message
        self.welcomed = False  # the welcome burst was sent (001 to the MOTD)
        self.deferred: list[str] = []  # what came before it, for after it (rooms at login)
        self.held: list[str] | None = (
            None  # a labeled line's replies, until its end  # room keys whose JOIN was refused
        )
        self.account: str | None = None
        self._next_id = 0
        self._asked: dict[int, tuple[str, tuple[str, ...]]] = {}

    # ------------------------------------------------------------------ state

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, new: str) -> None:
        """Its name is ``new`` now: the one it leaves is remembered for WHOWAS."""
        if self._name and new != self._name:
            self._remember()
        self._name = new

    def gone(self) -> None:
        """The connection ends (QUIT, closed, kicked): its nick is remembered, once
        (told by its last line, a Bye, and by the server when the socket is closed)."""
        if self._name and self.registered and not self._gone:
            self._gone = True
            self._remember()

    def _remember(self) -> None:
        ident = self.ident or "~u"  # as WHOIS shows it
        self.whowas.remember(Was(self._name, ident, self.host, self.realname or "", self.clock()))

    @property
    def nick(self) -> str:
        """Its nick as IRC numerics address it (``*`` before registration)."""
        if self.name:
            return shown(self.name)
        return self.requested_nick or "*"

    @property
    def source(self) -> str:
        return prefix(self.name or self.nick, self.host)

    @property
    def buffered(self) -> int:
        return self._framer.buffered

    def set_caps(self, caps: set[str]) -> None:
        self.caps = caps
        self.form = frozenset(c for c in FORM_CAPS if c in caps)

    def ask(self, verb: str, *context: str) -> int:
        """A request id for a command ``verb`` about ``context``, remembered for its
        reply."""
        self._next_id += 1
        asked = self._asked
        asked[self._next_id] = (verb, context)
        if len(asked) > _ASKED_KEPT:
            del asked[next(iter(asked))]
        return self._next_id

    def asked(self, rid: object) -> tuple[str, tuple[str, ...]]:
        if isinstance(rid, int):
            return self._asked.get(rid, ("", ()))
        return ("", ())

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> list[Command]:
        commands: list[Command] = []
        for raw in self._framer.feed(data):
            self.lines_received += 1
            self.pinged = False
            if raw is None:
                commands.append(self._too_long())
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                commands.append(self.error(INVALID_UTF8, "Invalid UTF-8; line discarded"))
                continue
            body = text.split(" ", 1)[1] if text.startswith("@") and " " in text else text
            if len(text) - len(body) > MAX_CLIENT_TAGS or len(body.encode()) > MAX_LINE - 2:
                commands.append(self._too_long())
                continue
            try:
                message = parse(text)
            except BadMessage:
                continue
            label = message.tags.get("label") if "labeled-response" in self.caps else None
            if label:  # its replies are held and sent labeled (imkit.irc.labels)
                commands.append(Answer(event=LabelStart(label)))
                commands.extend(self._handle(message))
                commands.append(Answer(event=LabelEnd(label)))
            else:
                commands.extend(self._handle(message))
        return commands

    def _handle(self, message: Any) -> list[Command]:
        verb = message.command
        handler: Callable[..., list[Command]] | None = HANDLERS.get(verb)
        if not self.registered and verb not in PRE_REGISTRATION:
            if handler is None and verb.isdigit():
                return []
            return [self.numeric("451", "You have not registered")]
        if handler is None:
            return [self.numeric("421", verb, "Unknown command")]
        return handler(self, message)

    def _too_long(self) -> Command:
        return self.error(LINE_TOO_LONG, "Input line was too long")

    def error(self, code: str, message: str) -> Command:
        """An error about a line that did not parse, answered in order."""
        return Answer(event=Error(self.ask("line"), code, message))

    # ------------------------------------------------------------- answers

    def answer(self, *lines: str) -> Answer:
        """Lines this wire says itself, sent in order with the hub's replies."""
        return Answer(event=Lines("".join(lines)))

    def numeric(self, code: str, *params: str) -> Answer:
        return self.answer(numerics.numeric(self, code, *params))

    # ------------------------------------------------------------------ output

    def encode(self, event: Event) -> bytes:
        """The bytes of ``event`` for this client (b"" when IRC shows nothing)."""
        kind = type(event)
        if kind is Lines:
            assert isinstance(event, Lines)
            return self._out(event.text)
        if kind is LabelStart or kind is LabelEnd:
            return self._label(event)
        if kind is Echo:  # its own private message (echo-message)
            assert isinstance(event, Echo)
            if "echo-message" not in self.caps:
                return b""
            return self._out(render(event.message, self.form, self.lobby) or "")
        if kind is ChatMessage and event.to == self.name:  # type: ignore[attr-defined]
            return (render(event, self.form, self.lobby) or "").encode()  # never held
        text = replies.reply(self, event)
        if text is None:
            if not self._receives(event):
                return b""
            text = render(event, self.form_for(event), self.lobby)
        return self._out(text) if text else b""

    def _out(self, text: str) -> bytes:
        if self.held is not None:  # a labeled line's reply: held until its end
            self.held.append(text)
            return b""
        return text.encode()

    def _label(self, event: Event) -> bytes:
        if isinstance(event, LabelStart):
            self.held = []
            return b""
        assert isinstance(event, LabelEnd)
        held, self.held = self.held or [], None
        self.batches += 1
        return labeled(self.server, event.label, held, f"l{self.batches}").encode()

    def frame_bytes(self, frame: Frame) -> bytes:
        """A broadcast's bytes for this client: rendered once per form and shared by
        every recipient of that form (the module docstring)."""
        if not self._receives(frame.event):
            return b""
        forms = frame.forms
        if forms is None:
            forms = frame.forms = {}
        form = self.form_for(frame.event)
        data = forms.get(form)
        if data is None:
            text = render(frame.event, form, self.lobby)
            data = forms[form] = text.encode() if text else b""
        if self.held is not None and data and _held(frame.event, self.name):
            self.held.append(data.decode())  # its own echo, during a labeled line
            return b""
        return data

    def form_for(self, event: Event) -> frozenset[str]:
        """The form ``event`` is rendered in: the connection's, and for a deletion
        whether it has draft/message-redaction (REDACT, else a NOTICE)."""
        if type(event) is MessageDeleted and REDACTION in self.caps:
            return self.form | _REDACTION_FORM
        return self.form

    def _receives(self, event: Event) -> bool:
        """Whether this client gets a broadcast at all; and its own renames noted."""
        kind = type(event)
        if kind is ChatMessage:
            assert isinstance(event, ChatMessage)
            return event.sender != self.name or "echo-message" in self.caps
        if kind is Described:  # away-notify, setname: for those that asked
            assert isinstance(event, Described)
            wanted = "setname" if event.realname is not None else "away-notify"
            return wanted in self.caps
        if kind is AccountChanged:
            return "account-notify" in self.caps
        if kind is NameChange:
            assert isinstance(event, NameChange)
            if event.old == self.name:
                self.name = event.new
        return True

    def renamed(self, event: RenameOk) -> str | None:
        """A rename's reply: the NICK line, unless a broadcast told it already."""
        if event.name == self.name:
            return None
        old, self.name = self.source, event.name
        from imkit.irc.message import line

        return line(old, "NICK", shown(event.name))
