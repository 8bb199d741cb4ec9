"""Who a client is to the hub (:class:`Member`) and the lines a user is told when it is
removed or refused a name: the hub's vocabulary, apart from the hub's decisions
(imkit.hub.core)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imkit.hub.outbox import Outbox
from imkit.protocol import Bye, Mode, RequestId, ServerConnection
from imkit.rules.bans import Ban, refusal

if TYPE_CHECKING:
    from imkit.hub.rooms import Room


@dataclass(eq=False, slots=True)
class Member:
    """One connected client as the hub sees it."""

    id: int
    addr: str  # where it connects from, for the operator (and the user itself)
    name: str
    wire: ServerConnection
    outbox: Outbox
    connected_at: float  # monotonic seconds
    last_active: float  # monotonic seconds of the last line received
    connected_wall: float = 0.0  # time.time() at connect, for people
    online: bool = False
    default_name: str = ""  # the name it got at join: ADDR, or ADDR#2, ADDR#3 ...
    # imkit mute: it reads but may not speak or rename until then (wall clock; inf:
    # until it disconnects), None when not muted.
    muted_until: float | None = None
    mute_reason: str | None = None
    # What everyone else is shown in place of its address: ``addr`` itself, or with
    # --hide-addresses its pseudonym (imkit.rules.pseudonyms). Every event for other users
    # carries this one, never ``addr``.
    shown_addr: str = ""
    # The account it is logged in to (its name, which is then also the member's name).
    account: str | None = None
    # A login or passwd whose password is being checked (imkit.hub.credentials): its request id
    # and what did not happen, for the one reply it gets if the session ends first.
    in_flight: tuple[RequestId, str] | None = None
    # Its rooms (docs/rooms.md), by room key, in the order it joined them; and whether
    # it is in the lobby (it is when it arrives; part|#lobby leaves it).
    rooms: dict[str, Room] = field(default_factory=dict)
    in_lobby: bool = True

    @property
    def mode(self) -> Mode:
        return self.wire.mode


IDLE_BYE = Bye("idle", "you are forced offline")
REPLACED_BYE = Bye("replaced", "you logged in to your account from somewhere else")
ACCOUNT_REMOVED_BYE = Bye("account_removed", "your account was removed by an administrator")
# A cluster's Redis restarted empty: every account is gone, but no administrator did it.
DATA_LOST_BYE = Bye(
    "data_lost",
    "the chat's server lost its data, your account with it; it must be added again",
)
SHUTDOWN_BYE = Bye("shutdown", "the server is shutting down")


def kick_bye(reason: str | None) -> Bye:
    message = "you were removed by an administrator"
    return Bye("kicked", f"{message}: {reason}" if reason else message)


def slow_bye(limit: int) -> Bye:
    return Bye(
        "slow_consumer",
        f"disconnected as a slow consumer: more than {limit} bytes were waiting for you",
    )


def reserved_message(name: str) -> str:
    return (
        f"the name {name} belongs to an account; log in to use it"
        f" (text: login|{name}|PASSWORD; JSON: a login request)"
    )


def logged_in_message(name: str) -> str:
    return f"you are logged in as {name} and keep your account's name"


def ban_bye(ban: Ban) -> Bye:
    """What a user a ban removes is told (and a banned address refused)."""
    return Bye("banned", refusal("you are banned", ban.reason, ban.until))
