"""The cluster's state changes, as Lua scripts that Redis runs atomically: the loader.

Every change to shared state is one script, so two nodes never see half of one: a name
is claimed and announced, or neither; a dead node's users are released and their
"user offline" events written by exactly one reaper. Each script takes the key prefix
(the cluster's name) as ``ARGV[1]``; imkit runs on one Redis (not Redis Cluster), so
the keys are not declared in ``KEYS`` (docs/cluster.md, "Keys").

Events that everyone must see in one order (public messages, presence, renames) are
appended to the stream ``P:log``; those for one node (private messages, kicks) to
``P:node:ID:log``. Both take their ids from one counter (``P:meta`` ``seq``, which
follows Redis' clock: see ``emit``), so a node that reads both streams merges them into
the order in which Redis ran the scripts.
Each entry also carries ``p``, the id of the entry before it in its stream: a reader
that finds another ``p`` than the last id it read knows that entries were trimmed past
it.

Accounts (docs/cluster.md, "Accounts") live in ``P:accounts``; the private messages
waiting for an account that is offline in ``P:mail:KEY``; the private conversation
between two accounts in the stream ``P:conv:PAIR``. Name keys (imkit.rules.names) are
computed in Python only: a script that must make a new name (a guest evicted from a
name that became an account's) builds its key from the keys of its characters, which
the node passes (:func:`imkit.cluster.terms.ascii_keys`; addresses are ASCII).

The Lua lives in ``imkit/cluster/lua/`` (package data), one file per script, each
headed by what it does and its ARGV: ``prelude.lua`` (shared by every script), one file
per operation (``register.lua``, ``publish.lua``, ``login.lua`` ...) and ``batch.lua``.
This module reads them once, at import, and assembles what is sent to Redis (``ALL``);
tests/cluster/test_lua_scripts.py loads each of those into a real redis-server, so that a
syntax error fails the tests rather than a node's start.
"""

from __future__ import annotations

import importlib.resources
import re

from imkit.rules.rooms import MAX_INVITES, MAX_ROOM_BANS

# How many entries each event stream keeps (approximately: MAXLEN ~). A node whose
# reader falls further behind than this misses messages and its users are told.
LOG_LENGTH = 10_000

# How long a kick or mute held for the users of a silent node is kept after that node's
# last beat: a node paused (a VM suspended) for up to a day still applies it when it
# comes back; one that never does leaves nothing behind for longer than that.
HELD_MS = 24 * 3600 * 1000

# The constants the Lua text names as ${NAME} (prelude.lua): defined here only.
CONSTANTS: dict[str, int] = {
    "LOG_LENGTH": LOG_LENGTH,
    "HELD_MS": HELD_MS,
    "MAX_ROOM_BANS": MAX_ROOM_BANS,
    "MAX_INVITES": MAX_INVITES,
}
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")

# The operations, by name; each is lua/NAME.lua.
OPERATION_NAMES = (
    "register",
    "beat",
    "join",
    "leave",
    "depart",
    "publish",
    "read_mark",
    "private",
    "rename",
    "kick",
    "ban",
    "unban",
    "mute",
    "forget",
    "amend",
    "mode",
    "who",
    "people",
    "describe",
    "nodes",
    "login",
    "mail_done",
    "account_add",
    "account_update",
    "account_remove",
    "accounts",
    "room_join",
    "room_part",
    "room_publish",
    "room_info",
    "room_list",
    "room_lobby",
    "room_topic",
    "room_kick",
    "room_invite",
    "room_mode",
    "room_admin",
    "hook_publish",
)
# Every file in lua/ (without .lua): tests/cluster/test_lua_scripts.py checks there is no other.
FILES = ("prelude", *OPERATION_NAMES, "batch")


def read(name: str) -> str:
    """The text of lua/NAME.lua, its ${CONSTANT}s replaced by their values."""

    def value(match: re.Match[str]) -> str:
        if match[1] not in CONSTANTS:
            raise ValueError(f"{name}.lua: no constant {match[1]} in imkit.cluster.scripts")
        return str(CONSTANTS[match[1]])

    text = (importlib.resources.files("imkit.cluster") / "lua" / f"{name}.lua").read_text("utf-8")
    return PLACEHOLDER.sub(value, text)


_PRELUDE = read("prelude")

# Each operation's body runs as a function of ARGV (the prefix, then its arguments), so
# that it can run alone (one EVALSHA) or with others in one BATCH.
OPERATIONS = {name: read(name) for name in OPERATION_NAMES}


def _alone(body: str) -> str:
    return f"{_PRELUDE}\nlocal function operation(ARGV)\n{body}\nend\nreturn operation(ARGV)\n"


# Every operation in one script (batch.lua says how it is called).
BATCH = (
    _PRELUDE
    + "\nlocal OPERATIONS = {}\n"
    + "".join(
        f"OPERATIONS['{name}'] = function(ARGV)\n{body}\nend\n" for name, body in OPERATIONS.items()
    )
    + read("batch")
)

# What is sent to Redis (SCRIPT LOAD, EVALSHA), by name: each operation alone, and BATCH.
ALL = {name: _alone(body) for name, body in OPERATIONS.items()} | {"batch": BATCH}
