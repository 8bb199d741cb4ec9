"""What a cluster node's backend and the scripts agree on: the default names a new
connection tries, the keys the scripts need to make names themselves, and the words a
user is told while the node cannot use Redis.

The node's part of the chat is :class:`imkit.cluster.backend.RedisBackend` (the
shared decisions, made by Redis) and :class:`imkit.cluster.events.ClusterEvents` (what
Redis' event streams bring back); the hub itself is the one every server has
(:class:`imkit.hub.core.Hub`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from imkit.cluster import UNREACHABLE
from imkit.hub.members import (
    Member,
)
from imkit.protocol import (
    Bye,
    ChatMessage,
    Event,
    RequestId,
)
from imkit.rules.accounts import MAILBOX_MAX
from imkit.rules.names import name_key

log = logging.getLogger("imkit.cluster")

# Default names tried for a new connection: ADDR, ADDR#2 ... ADDR#DEFAULT_NAMES. Two
# connections share an address only across machines behind one NAT port, or for a
# moment when the kernel reuses a port: a handful is plenty.
DEFAULT_NAMES = 16

UNAVAILABLE_MESSAGE = f"the chat is unavailable: {UNREACHABLE}"
UNAVAILABLE_BYE = Bye("unavailable", UNAVAILABLE_MESSAGE)


def unavailable_message(problem: str | None) -> str:
    """What a user is told while the node cannot use Redis: ``problem`` says why
    (ClusterLink.problem: unreachable, or full)."""
    return f"the chat is unavailable: {problem or UNREACHABLE}"


MISSED = "some messages may have been missed while the chat's server was cut off"
REJOINING = "the chat is unavailable: this server is rejoining the cluster; try again"


def default_candidates(addr: str) -> list[str]:
    """Name, key pairs (flat) of ``addr``'s default names, in the order they are tried.

    ``addr`` is the address as shown: with --hide-addresses a pseudonym, which every
    connection from one IP shares, so that one IP may need more than
    :data:`DEFAULT_NAMES` of them; the join script then goes on by itself
    (:func:`numbered_names`).
    """
    flat: list[str] = []
    for n in range(1, DEFAULT_NAMES + 1):
        name = addr if n == 1 else f"{addr}#{n}"
        flat += [name, name_key(name)]
    return flat


def numbered_names(shown: str) -> str:
    """For the join script, past :data:`DEFAULT_NAMES`: how to make ``SHOWN#N`` and its
    key for any N (JSON: the name, the key of ``SHOWN#``, the keys of the ten digits).

    Only for pseudonyms (--hide-addresses), which are ASCII: the key of an ASCII name is
    the keys of its characters end to end (tests/unit/test_hidden_addresses.py checks it), so
    the key of ``SHOWN#17`` is the key of ``SHOWN#`` and those of ``1`` and ``7``.
    """
    digits = [name_key(str(d)) for d in range(10)]
    return json.dumps({"name": shown, "key": name_key(shown + "#"), "digits": digits})


@cache
def ascii_keys() -> str:
    """For the scripts that give a guest a default name of their own choosing (an
    account was made or logged in to under the guest's name): the key of every
    printable ASCII character (JSON). Addresses and pseudonyms are ASCII, and the key of
    an ASCII name is the keys of its characters end to end (see :func:`numbered_names`),
    so a script can make the key of ``ADDR#N`` for any N."""
    return json.dumps({chr(c): name_key(chr(c)) for c in range(0x20, 0x7F)})


def mailbox_full_message(account: str) -> str:
    return (
        f"{account} is offline and already has {MAILBOX_MAX} messages waiting;"
        " this one was not kept"
    )


def parse_users(reply: list[str]) -> list[dict[str, Any]]:
    """WHO's reply: everyone online in the cluster, in order of arrival."""
    users = [json.loads(raw) for raw in reply]
    users.sort(key=lambda u: int(u.get("arrival", 0)))
    return users


def event_message(
    event: dict[str, Any], *, to: str | None = None, room: str | None = None, lobby: bool = False
) -> ChatMessage:
    """The message an ``m`` (lobby, room) or ``p`` (private) event of a stream carries."""
    return ChatMessage(
        event["name"],
        event["addr"],
        to,
        event["text"],
        event["ms"] / 1000,
        event["msgid"],
        event.get("account"),
        room,
        lobby=lobby,
        notice=bool(event.get("notice")),
        bot=bool(event.get("bot")),
    )


def _ignore(reply: Any) -> None:
    pass


@dataclass(slots=True)
class Login:
    """A login sent to Redis, answered when its ``li`` event comes back."""

    member: Member
    rid: RequestId
    hello: bool
    previous: str | None  # the account it was logged in to before (restored on failure)
    # Replies made at once meanwhile (an IRC client's welcome after its SASL login):
    # sent after the login's answer (RedisBackend.in_order).
    then: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class Leaving:
    """A user whose reading side ended, still online here until what it asked for has
    come back (:meth:`RedisBackend.leave_when_answered`)."""

    answered: Callable[[], None]
    waiting: int = 2  # its leave script's reply and its offline event
