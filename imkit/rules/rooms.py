"""Rooms' rules (docs/rooms.md): which names are rooms', what a room's settings are, who
may join, speak and change them. Pure: the hub of one server keeps a :class:`RoomState`
per room and asks it; a cluster's scripts (imkit/cluster/lua/room_*.lua) make the same
decisions in Redis, from the fields :meth:`RoomState.fields` and :func:`mask_fields` give
them. The error codes are the protocol's (docs/protocol.md); they are strings here, so
that the rules need nothing above them.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from imkit.rules.bans import IPNetwork, address_of, parse_target
from imkit.rules.names import name_key

ROOM_NAME_MAX = 50  # characters after the '#'
DEFAULT_LOBBY = "#lobby"
DEFAULT_MAX_ROOMS = 1000
DEFAULT_MAX_ROOMS_PER_USER = 50
TOPIC_MAX = 300  # characters
# A room's bans (and, each apart, its ban exceptions and invite exceptions) and pending
# invites at most, so that no operator can grow a room without bound (IRC servers have
# the same kind of limit; ergo's is 100 bans).
MAX_ROOM_BANS = 100
MAX_INVITES = 100
# Who may make a room by joining it (--room-creation).
CREATION_POLICIES = ("anyone", "accounts", "admin")

# The settings that are on or off (IRC's channel modes, docs/rooms.md), and those that
# take an argument: o, v (a name), the lists of masks b, e, I (on and off), k (a key),
# l (a limit). e is a ban exception (a mask a ban does not keep out), I an invite
# exception (a mask that may join an invite-only room without an invite).
SWITCHES = "imnst"
LISTS = "beI"
FLAGS = "ov" + LISTS + "kl" + SWITCHES
# What each list is called (a JSON reply's field, the text-mode words, the errors).
LIST_NAMES = {"b": "bans", "e": "exceptions", "I": "invite_exceptions"}
LIST_WORDS = {"b": "ban", "e": "ban exception", "I": "invite exception"}
NEW_ROOM_FLAGS = frozenset("nt")

# The error codes (imkit.protocol.codes has the same words).
BANNED_FROM_ROOM = "banned_from_room"
INVITE_ONLY = "invite_only"
BAD_KEY = "bad_key"
ROOM_FULL = "room_full"
NOT_ROOM_OPERATOR = "not_room_operator"
NOT_IN_ROOM = "not_in_room"
MUTED = "muted"


def room_problem(name: str) -> str | None:
    """Why ``name`` cannot be a room's name, or None when it can."""
    if not name.startswith("#"):
        return "a room's name begins with '#'"
    rest = name[1:]
    if not rest:
        return "a room's name has at least one character after '#'"
    if len(rest) > ROOM_NAME_MAX:
        return f"a room's name has at most {ROOM_NAME_MAX} characters after '#'"
    for char in rest:
        if char in "-_.":
            continue
        category = unicodedata.category(char)
        if category[0] not in "LM" and category != "Nd":
            return "a room's name has only letters, digits, '-', '_' and '.' after '#'"
    if unicodedata.category(rest[0])[0] == "M":
        return "a room's name cannot begin with a combining mark"
    if not name_key(rest):
        return "a room's name cannot be made only of invisible characters"
    return None


def room_key(name: str) -> str:
    """What two spellings of one room share (``#Builds``, ``#builds``): the key of its
    name after the ``#``, as user names are compared."""
    return "#" + name_key(name[1:])


@dataclass(frozen=True, slots=True)
class Mask:
    """What a room ban (or exception) matches: a user name, names by a pattern with
    ``*`` and ``?``, a logged-in account, or an address or network (docs/rooms.md,
    "Operators and settings")."""

    text: str  # as the operator wrote it (normalised for networks)
    kind: str  # "name", "glob", "account" or "net"
    key: str = ""  # name and account: the name key; glob: the pattern's key
    network: IPNetwork | None = None

    def matches(self, name: str, account: str | None, addr: str) -> bool:
        if self.kind == "name":
            return name_key(name) == self.key
        if self.kind == "glob":
            return glob_matches(self.key, name_key(name))
        if self.kind == "account":
            return account is not None and name_key(account) == self.key
        ip = address_of(addr)
        net = self.network
        return ip is not None and net is not None and ip.version == net.version and ip in net


def parse_mask(text: str) -> Mask | str:
    """The mask ``text`` names, or why it cannot be one."""
    text = text.strip()
    if not text:
        return "a ban needs a name, account:NAME, an address or a network"
    if text.startswith("account:"):
        name = text[len("account:") :]
        if not name_key(name):
            return f"{text!r} names no account"
        return Mask(text, "account", name_key(name))
    network = parse_target(text)
    if network is not None:
        return Mask(str(network), "net", network=network)
    if any(char in text for char in "|: \t"):
        return f"{text!r} is not a name, account:NAME, an address or a network"
    if "*" in text or "?" in text:
        return Mask(text, "glob", glob_key(text))
    return Mask(text, "name", name_key(text))


def glob_key(pattern: str) -> str:
    """A name pattern's key: each run between wildcards keyed as names are (so that
    ``BA*`` matches ``bar``), the wildcards kept."""
    parts = re.split(r"([*?])", pattern)
    return "".join(part if part in ("*", "?") else name_key(part) for part in parts)


# A letter of a key: a character and the combining diacritical marks after it.
_LETTER = re.compile(r".[\u0300-\u036f]*", re.DOTALL)


def glob_matches(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` whole, where ``*`` is any run of letters
    and ``?`` one letter (IRC's wildcards; nothing else is special). A letter is a
    character with the combining marks U+0300-U+036F after it: keys are decomposed, so
    that ``zo?`` matches ``Zoë``. The cluster's scripts match the same way
    (prelude.lua's ``glob``), step by step as here."""
    p, t = _LETTER.findall(pattern), _LETTER.findall(text)
    i = j = 0
    star, mark = -1, 0
    while j < len(t):
        if i < len(p) and (p[i] == "?" or (p[i] != "*" and p[i] == t[j])):
            i, j = i + 1, j + 1
        elif i < len(p) and p[i] == "*":
            star, mark, i = i, j, i + 1
        elif star >= 0:  # back to the last '*', which takes one letter more
            i, mark = star + 1, mark + 1
            j = mark
        else:
            return False
    while i < len(p) and p[i] == "*":
        i += 1
    return i == len(p)


def bits_of(network_or_ip: IPNetwork | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address (or a network's prefix) as a string of 0s and 1s, so that a script
    can match a network by comparing the start of an address's bits with it."""
    if isinstance(network_or_ip, ipaddress.IPv4Network | ipaddress.IPv6Network):
        size = network_or_ip.max_prefixlen
        number = int(network_or_ip.network_address)
        return format(number, f"0{size}b")[: network_or_ip.prefixlen]
    return format(int(network_or_ip), f"0{network_or_ip.max_prefixlen}b")


def mask_fields(mask: Mask, by: str) -> dict[str, Any]:
    """A ban (or exception) as a cluster's scripts keep and match it (imkit/cluster/lua)."""
    fields: dict[str, Any] = {"mask": mask.text, "kind": mask.kind, "by": by}
    if mask.kind == "net":
        assert mask.network is not None
        fields["v"] = mask.network.version
        fields["bits"] = bits_of(mask.network)
    else:
        fields["key"] = mask.key
    return fields


def address_fields(addr: str) -> str:
    """The IP version and bits of ``addr`` (``4:0101...``), for a script's ban check
    ('' when it has none)."""
    ip = address_of(addr)
    return "" if ip is None else f"{ip.version}:{bits_of(ip)}"


class Change(Protocol):
    """One change of settings (imkit.protocol.ModeChange)."""

    @property
    def flag(self) -> str: ...
    @property
    def on(self) -> bool: ...
    @property
    def arg(self) -> str | None: ...


def modes_text(
    flags: Iterable[str], key: str | None, limit: int | None, *, show_key: bool
) -> tuple[str, list[str]]:
    """``+ntkl`` and its arguments (the key as ``*`` unless ``show_key``)."""
    letters = "".join(sorted(set(flags) & set(SWITCHES)))
    args: list[str] = []
    if key is not None:
        letters += "k"
        args.append(key if show_key else "*")
    if limit is not None:
        letters += "l"
        args.append(str(limit))
    return "+" + letters, args


@dataclass(slots=True)
class Place:
    """A member's standing in a room."""

    operator: bool = False
    voice: bool = False


@dataclass(slots=True)
class RoomState:
    """One room's settings and members, as one server keeps them (a cluster keeps the
    same in Redis). Members are by an id the caller chooses (the hub: the member's)."""

    name: str
    registered: bool = False
    topic: str | None = None
    topic_by: str | None = None
    topic_time: float | None = None
    created: float | None = None  # when it was made (seconds since the epoch)
    flags: set[str] = field(default_factory=lambda: set(NEW_ROOM_FLAGS))
    key: str | None = None
    limit: int | None = None
    bans: dict[str, tuple[Mask, str]] = field(default_factory=dict)  # mask text -> (mask, by)
    exceptions: dict[str, tuple[Mask, str]] = field(default_factory=dict)  # +e, as bans
    invite_exceptions: dict[str, tuple[Mask, str]] = field(default_factory=dict)  # +I
    invited: dict[str, None] = field(default_factory=dict)  # name keys, oldest first
    operators: set[str] = field(default_factory=set)  # account keys (registered rooms)
    members: dict[int, Place] = field(default_factory=dict)  # in order of joining

    def admission(
        self,
        name: str,
        account: str | None,
        addr: str,
        key: str | None,
        *,
        remembered: bool = False,
    ) -> str | None:
        """Why a user may not join (an error code), or None. ``remembered``: an account
        put back in its room at login passes the key, the invite and the limit. A ban
        keeps out whom it matches unless a ban exception (+e) matches too; an invite
        exception (+I) lets in whom it matches past +i as an invite does."""

        def matched(masks: dict[str, tuple[Mask, str]]) -> bool:
            return any(mask.matches(name, account, addr) for mask, _ in masks.values())

        if matched(self.bans) and not matched(self.exceptions):
            return BANNED_FROM_ROOM
        if remembered or (account is not None and name_key(account) in self.operators):
            return None
        if (
            "i" in self.flags
            and name_key(name) not in self.invited
            and not matched(self.invite_exceptions)
        ):
            return INVITE_ONLY
        if self.key is not None and key != self.key:
            return BAD_KEY
        if self.limit is not None and len(self.members) >= self.limit:
            return ROOM_FULL
        return None

    def invite(self, key: str) -> None:
        """Let the name ``key`` in past +i; the oldest invite goes past MAX_INVITES."""
        self.invited.pop(key, None)
        self.invited[key] = None
        while len(self.invited) > MAX_INVITES:
            del self.invited[next(iter(self.invited))]

    def masks(self, flag: str) -> dict[str, tuple[Mask, str]]:
        """The list of masks ``flag`` (one of :data:`LISTS`) names."""
        if flag == "b":
            return self.bans
        return self.exceptions if flag == "e" else self.invite_exceptions

    def bans_problem(self, changes: Iterable[Change]) -> str | None:
        """Why ``changes`` would give the room too many bans, ban exceptions or invite
        exceptions (each at most MAX_ROOM_BANS; None: they would not)."""
        changes = list(changes)
        for flag in LISTS:
            masks = self.masks(flag)
            added = {c.arg for c in changes if c.flag == flag and c.on and c.arg not in masks}
            if len(masks) + len(added) > MAX_ROOM_BANS:
                return too_many_masks(flag)
        return None

    def add(self, member: int, account: str | None, *, creator: bool) -> Place:
        op = creator or (account is not None and name_key(account) in self.operators)
        place = self.members[member] = Place(operator=op)
        return place

    def speaking(self, member: int) -> str | None:
        """Why ``member`` may not send a message to the room, or None."""
        place = self.members.get(member)
        if place is None:
            return NOT_IN_ROOM if "n" in self.flags else None
        if "m" in self.flags and not (place.operator or place.voice):
            return MUTED
        return None

    def is_operator(self, member: int) -> bool:
        place = self.members.get(member)
        return place is not None and place.operator

    def may_set_topic(self, member: int) -> str | None:
        if member not in self.members:
            return NOT_IN_ROOM
        if "t" in self.flags and not self.is_operator(member):
            return NOT_ROOM_OPERATOR
        return None

    def apply(self, change: Change, by: str) -> bool:
        """Make ``change`` (checked already: :func:`change_problem`), other than ``o``
        and ``v``, which are about members; True when it changed something."""
        flag, on, arg = change.flag, change.on, change.arg
        if flag in SWITCHES:
            if (flag in self.flags) == on:
                return False
            (self.flags.add if on else self.flags.discard)(flag)
            return True
        if flag == "k":
            new = arg if on else None
            changed, self.key = self.key != new, new
            return changed
        if flag == "l":
            limit = int(arg or 0) if on else None
            changed, self.limit = self.limit != limit, limit
            return changed
        if flag in LISTS:
            masks = self.masks(flag)
            mask = parse_mask(arg or "")
            assert isinstance(mask, Mask)
            if on:
                if mask.text in masks:
                    return False
                masks[mask.text] = (mask, by)
                return True
            return masks.pop(mask.text, None) is not None
        raise ValueError(f"not a room setting: {flag!r}")  # pragma: no cover - parsed

    def modes(self, *, show_key: bool) -> tuple[str, list[str]]:
        return modes_text(self.flags, self.key, self.limit, show_key=show_key)

    def fields(self) -> dict[str, Any]:
        """A registered room's settings, as kept (the SQLite file, Redis)."""
        return {
            "name": self.name,
            "topic": self.topic,
            "topic_by": self.topic_by,
            "topic_time": self.topic_time,
            "created": self.created,
            "flags": "".join(sorted(self.flags)),
            "key": self.key,
            "limit": self.limit,
            "bans": [mask_fields(mask, by) for mask, by in self.bans.values()],
            "exceptions": [mask_fields(mask, by) for mask, by in self.exceptions.values()],
            "invite_exceptions": [
                mask_fields(mask, by) for mask, by in self.invite_exceptions.values()
            ],
            "operators": sorted(self.operators),
        }

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> RoomState:
        state = cls(str(fields["name"]), registered=True)
        state.topic = fields.get("topic")
        state.topic_by = fields.get("topic_by")
        state.topic_time = fields.get("topic_time")
        state.created = fields.get("created")
        state.flags = set(str(fields.get("flags", "nt"))) & set(SWITCHES)
        state.key = fields.get("key")
        state.limit = fields.get("limit")
        for flag in LISTS:  # a room kept before +e and +I has no such lists
            for ban in fields.get(LIST_NAMES[flag], ()):
                mask = parse_mask(str(ban["mask"]))
                if isinstance(mask, Mask):
                    state.masks(flag)[mask.text] = (mask, str(ban.get("by", "")))
        state.operators = {str(key) for key in fields.get("operators", ())}
        return state


def change_problem(flag: str, on: bool, arg: str | None) -> str | None:
    """Why one change of settings is malformed (None: it is well formed)."""
    if flag not in FLAGS:
        return f"unknown room setting {flag!r} (one of {FLAGS})"
    if flag in "ov" and not arg:
        return f"+{flag} and -{flag} need a name"
    if flag in LISTS:
        mask = parse_mask(arg or "")
        return mask if isinstance(mask, str) else None
    if flag == "k" and on:
        return key_problem(arg)
    if flag == "l" and on:
        return limit_problem(arg)
    return None


def told_arg(flag: str, on: bool) -> bool:
    """Whether a change's argument is told with it (+k's key and +l's limit; a list's
    mask on and off; o and v name their member apart)."""
    return flag in LISTS or (on and flag in "kl")


def too_many_masks(flag: str) -> str:
    """The error when the list ``flag`` is full."""
    return f"a room has at most {MAX_ROOM_BANS} {LIST_WORDS[flag]}s: lift one first"


def limit_problem(arg: str | None) -> str | None:
    if arg is None or not arg.isascii() or not arg.isdigit() or not 1 <= int(arg) <= 1_000_000:
        return "a member limit is a whole number from 1 to 1000000"
    return None


def key_problem(arg: str | None) -> str | None:
    if not arg or len(arg) > 50 or any(char in arg for char in " |,:") or not arg.isprintable():
        return "a key is 1 to 50 printable characters without spaces, '|', ',' or ':'"
    return None
