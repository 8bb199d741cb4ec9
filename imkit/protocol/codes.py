"""The protocol's vocabulary that everything else refers to: its version, the wire modes,
request ids and the stable error codes (docs/protocol.md lists each code with its text
line)."""

from __future__ import annotations

from enum import Enum
from typing import TypeAlias

PROTOCOL_VERSION = 1
# The seed's port: servers listen on it and clients connect to it unless told otherwise.
DEFAULT_PORT = 8888

RequestId: TypeAlias = str | int | float | None


class Mode(Enum):
    """How a connection speaks. Until its first line it is served as text."""

    UNDECIDED = "undecided"
    TEXT = "text"
    JSON = "json"
    IRC = "irc"  # the IRC port (--irc): imkit.irc.wire.IrcConnection


# Stable error codes of the JSON protocol (docs/protocol.md lists each with its text line).
NO_SUCH_USER = "no_such_user"
NAME_TAKEN = "name_taken"
INVALID_NAME = "invalid_name"
INVALID_MESSAGE = "invalid_message"
LINE_TOO_LONG = "line_too_long"
INVALID_UTF8 = "invalid_utf8"
BAD_REQUEST = "bad_request"
UNAUTHORIZED = "unauthorized"
# The store cannot write (disk full, file removed, read-only): public messages are refused.
UNAVAILABLE = "unavailable"
# An administrator muted the user (imkit mute): it reads, but may not speak or rename.
MUTED = "muted"
# Accounts (docs/accounts.md): a name registered to an account, taken by someone not
# logged in to it; a rename by a user logged in (it keeps its account's name); a wrong
# name or password; too many of those from one address; a request before the login that
# --accounts-only requires; a recipient whose waiting messages are at the limit.
NAME_RESERVED = "name_reserved"
LOGGED_IN = "logged_in"
LOGIN_FAILED = "login_failed"
TOO_MANY_ATTEMPTS = "too_many_attempts"
LOGIN_REQUIRED = "login_required"
MAILBOX_FULL = "mailbox_full"
# A login or passwd still being checked when its session ended (replaced by a login to
# the account elsewhere, kicked, banned): its reply, just before the bye.
SESSION_ENDED = "session_ended"

# History requests: how many messages one may ask for, and how many when it does not say.
HISTORY_MAX = 100
HISTORY_DEFAULT = 50

# Rooms (docs/rooms.md): a room that does not exist (or is secret, to a non-member); a
# request about a room its user is not in; a name that cannot be a room's; past
# --max-rooms or --max-rooms-per-user; refused by the room's ban, its invite-only
# setting, its key or its member limit; an operator's request by a non-operator.
# (A moderated room refuses a user without a voice with MUTED.)
NO_SUCH_ROOM = "no_such_room"
NOT_IN_ROOM = "not_in_room"
BAD_ROOM_NAME = "bad_room_name"
TOO_MANY_ROOMS = "too_many_rooms"
BANNED_FROM_ROOM = "banned_from_room"
INVITE_ONLY = "invite_only"
BAD_KEY = "bad_key"
ROOM_FULL = "room_full"
NOT_ROOM_OPERATOR = "not_room_operator"
ALREADY_IN_ROOM = "already_in_room"  # an invite of a user who is in the room already

# Deleting and editing a message (docs/integrations.md, "Delete and edit"): no message
# with that msgid that this user may see (its room's members only; never a private
# one); a message this user may not change (not its own, a guest's, not its room's
# operator).
NO_SUCH_MESSAGE = "no_such_message"
NOT_ALLOWED = "not_allowed"
