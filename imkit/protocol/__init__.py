"""The imkit wire protocol, without I/O: bytes in, commands out; events in, bytes out.

One port speaks two line protocols (see docs/protocol.md):

* **text mode**, the IM-System seed's format byte for byte, so netcat, telnet and the
  seed's Go client work unchanged;
* **JSON Lines mode**, chosen by a first line that is a JSON object with
  ``"type": "hello"``, for programs.

:class:`ServerConnection` holds one client's framing buffer and mode; it turns received
bytes into :class:`Command` objects (bad input becomes an :class:`Invalid` command that
the hub answers with an error) and turns :class:`Event` objects into bytes for that
client's mode. Nothing here touches a socket, a clock or a task.

The package, one module a responsibility (arrows point down the list)::

    codes.py       the version, the wire modes, request ids, the stable error codes
    framing.py     line framing and the limits on lines
    commands.py    what a client asks for
    events.py      what the server tells a client, and its bytes in either mode
    parsing.py     lines into commands (text mode and JSON Lines)
    connection.py  one client's state on the server side (ServerConnection)
    client.py      the client's side of JSON Lines (ClientConnection)
    room_requests.py  room lines and requests into commands (for parsing.py)
    room_events.py    what the server tells a client about rooms

Everything other modules use is imported here, so ``from imkit.protocol import X``
works for all of it.
"""

from __future__ import annotations

from imkit.protocol.client import (
    CLIENT_MAX_LINE,
    ClientConnection,
    Notice,
    decode_event,
    encode_request,
)
from imkit.protocol.codes import (
    BAD_KEY,
    BAD_REQUEST,
    BAD_ROOM_NAME,
    BANNED_FROM_ROOM,
    DEFAULT_PORT,
    HISTORY_DEFAULT,
    HISTORY_MAX,
    INVALID_MESSAGE,
    INVALID_NAME,
    INVALID_UTF8,
    INVITE_ONLY,
    LINE_TOO_LONG,
    LOGGED_IN,
    LOGIN_FAILED,
    LOGIN_REQUIRED,
    MAILBOX_FULL,
    MUTED,
    NAME_RESERVED,
    NAME_TAKEN,
    NO_SUCH_ROOM,
    NO_SUCH_USER,
    NOT_IN_ROOM,
    NOT_ROOM_OPERATOR,
    PROTOCOL_VERSION,
    ROOM_FULL,
    SESSION_ENDED,
    TOO_MANY_ATTEMPTS,
    TOO_MANY_ROOMS,
    UNAUTHORIZED,
    UNAVAILABLE,
    Mode,
    RequestId,
)
from imkit.protocol.commands import (
    Authenticate,
    Command,
    Hello,
    History,
    Invalid,
    Invite,
    JoinRoom,
    ListRooms,
    Login,
    ModeChange,
    PartRoom,
    Passwd,
    Ping,
    PrivateMessage,
    PublicMessage,
    Rename,
    RoomKick,
    RoomMessage,
    RoomMode,
    Topic,
    Who,
)
from imkit.protocol.connection import (
    ServerConnection,
)
from imkit.protocol.events import (
    Bye,
    ChatMessage,
    Error,
    Event,
    Frame,
    HistoryPage,
    KeptMessage,
    LoginOk,
    NameChange,
    Ok,
    PasswdOk,
    Pong,
    Presence,
    RenameOk,
    ServerNotice,
    UserInfo,
    UserList,
    Welcome,
    encode,
    encode_json,
    encode_text,
    one_line,
)
from imkit.protocol.framing import (
    DEFAULT_MAX_LINE,
    JSON_LINE_ALLOWANCE,
    TEXT_LINE_ALLOWANCE,
    LineFramer,
    json_line_limit,
    text_line_limit,
)
from imkit.protocol.parsing import (
    parse_json_request,
    parse_text,
)
from imkit.protocol.room_events import (
    Invited,
    Joined,
    ModesChanged,
    ModesInfo,
    RoomInfo,
    RoomJoin,
    RoomKicked,
    RoomList,
    RoomOk,
    RoomPart,
    TopicInfo,
)
from imkit.rules.times import iso_time, parse_iso_time

__all__ = [
    "BAD_KEY",
    "BAD_ROOM_NAME",
    "BANNED_FROM_ROOM",
    "INVITE_ONLY",
    "NO_SUCH_ROOM",
    "NOT_IN_ROOM",
    "NOT_ROOM_OPERATOR",
    "ROOM_FULL",
    "TOO_MANY_ROOMS",
    "Invite",
    "JoinRoom",
    "ListRooms",
    "ModeChange",
    "PartRoom",
    "RoomKick",
    "RoomMessage",
    "RoomMode",
    "Topic",
    "Invited",
    "Joined",
    "ModesChanged",
    "ModesInfo",
    "RoomInfo",
    "RoomJoin",
    "RoomKicked",
    "RoomList",
    "RoomOk",
    "RoomPart",
    "TopicInfo",
    "Authenticate",
    "BAD_REQUEST",
    "DEFAULT_PORT",
    "Bye",
    "CLIENT_MAX_LINE",
    "ChatMessage",
    "ClientConnection",
    "Command",
    "DEFAULT_MAX_LINE",
    "Error",
    "Event",
    "Frame",
    "HISTORY_DEFAULT",
    "HISTORY_MAX",
    "Hello",
    "History",
    "HistoryPage",
    "KeptMessage",
    "LoginOk",
    "Login",
    "Passwd",
    "PasswdOk",
    "INVALID_MESSAGE",
    "INVALID_NAME",
    "INVALID_UTF8",
    "Invalid",
    "JSON_LINE_ALLOWANCE",
    "LINE_TOO_LONG",
    "LineFramer",
    "Mode",
    "NAME_TAKEN",
    "NO_SUCH_USER",
    "NameChange",
    "Notice",
    "ServerNotice",
    "Ok",
    "PROTOCOL_VERSION",
    "Ping",
    "Pong",
    "Presence",
    "PrivateMessage",
    "PublicMessage",
    "Rename",
    "RenameOk",
    "RequestId",
    "ServerConnection",
    "TEXT_LINE_ALLOWANCE",
    "UNAUTHORIZED",
    "MUTED",
    "NAME_RESERVED",
    "LOGGED_IN",
    "LOGIN_FAILED",
    "LOGIN_REQUIRED",
    "MAILBOX_FULL",
    "SESSION_ENDED",
    "TOO_MANY_ATTEMPTS",
    "UNAVAILABLE",
    "UserInfo",
    "UserList",
    "Welcome",
    "Who",
    "decode_event",
    "encode",
    "encode_json",
    "encode_request",
    "encode_text",
    "iso_time",
    "json_line_limit",
    "one_line",
    "parse_iso_time",
    "parse_json_request",
    "parse_text",
    "text_line_limit",
]
