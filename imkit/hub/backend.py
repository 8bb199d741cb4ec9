"""What differs between one server and a cluster node, behind two interfaces.

The chat's rules are written once, in :class:`~imkit.hub.core.Hub`. Who decides what
the users share (which name is whose, who is online, the order of public messages, the
accounts) is its :class:`Backend`; what the admin socket asks of the whole chat (who,
kick, stats, bans, mutes, accounts, rooms) is the backend's :class:`Directory`. Each has two
implementations:

* one server: :class:`~imkit.hub.local.LocalBackend` and
  :class:`~imkit.hub.directory.LocalDirectory`, which decide at once, in memory and
  in the store;
* a cluster node: ``imkit.cluster.backend.RedisBackend`` and
  ``imkit.cluster.admin_answers.RedisDirectory``, which ask Redis.

Only :func:`imkit.server.node.Server` chooses between them (from ``--cluster``), so
nothing else asks whether it runs in a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from imkit.protocol import (
    ChatMessage,
    Event,
    Invite,
    JoinRoom,
    ListRooms,
    PartRoom,
    PrivateMessage,
    PublicMessage,
    RequestId,
    RoomKick,
    RoomMessage,
    RoomMode,
    Topic,
    Who,
)
from imkit.protocol.edits import DeleteMessage, EditMessage
from imkit.protocol.queries import Whois
from imkit.rules.accounts import Account
from imkit.rules.bans import Ban
from imkit.rules.hooks import PostOutcome
from imkit.rules.rooms import Change, Mask

if TYPE_CHECKING:
    from imkit.hub.core import Hub
    from imkit.hub.members import Member

# The admin socket's error codes for accounts (imkit account).
ACCOUNT_EXISTS = "account_exists"
NO_SUCH_ACCOUNT = "no_such_account"
# ... and for rooms (imkit rooms, imkit room; the protocol's no_such_room, not_in_room,
# bad_room_name and not_room_operator too).
ROOM_EXISTS = "room_exists"  # room add: it is registered already
NOT_REGISTERED = "not_registered"  # room op: only a registered room has accounts as operators
NO_SUCH_BAN = "no_such_ban"  # unban --room: the room has no such ban
# Who the users are told made an admin's change to a room (RoomKicked, ModesChanged...).
ADMINISTRATOR = "the administrator"

Reply = dict[str, Any]  # an admin reply (its "type": "ok", "users", "error" ...)


class Backend(Protocol):
    """The authority for the chat's shared decisions, as the hub calls it. Each
    operation answers the user itself (through the hub) when its answer is known."""

    # What a welcome says this server offers (protocol.md, "welcome").
    features: tuple[str, ...]
    # Called with every member before its command is handled (None: nothing to do).
    on_command: Callable[[Member], None] | None
    # Called with every public message (the lobby's, a room's) a member of this node
    # published, once, on this node only: when it was delivered (one node) or when Redis
    # took it (a cluster). Outgoing webhooks (server/outgoing_hooks.py); must not block.
    on_published: Callable[[ChatMessage], None] | None

    def attach(self, hub: Hub) -> None:
        """Serve ``hub`` (called once, when the hub is made)."""

    @property
    def directory(self) -> Directory:
        """What the admin socket asks of the whole chat (made by :meth:`attach`)."""

    # membership
    def join(self, member: Member, account: Account | None) -> None: ...
    def leave(self, member: Member) -> None: ...
    def leave_when_answered(self, member: Member, answered: Callable[[], None]) -> None: ...
    def local_members(self) -> list[Member]: ...

    # the hub's command table's entries for the shared decisions
    def public(self, member: Member, command: PublicMessage) -> None: ...
    def private(self, member: Member, command: PrivateMessage) -> None: ...
    def who(self, member: Member, command: Who) -> None: ...
    def people(self, member: Member, command: Whois) -> None:
        """Who the users asked are (IRC's WHOIS, WHO, ISON, USERHOST), over the whole
        chat: a :class:`~imkit.protocol.queries.People` reply."""

    def in_order(self, member: Member, event: Event) -> None:
        """Send ``member`` a reply made at once (an IRC PONG, a wire's numerics, AWAY's)
        after the replies to its earlier requests: at once on one server; on a cluster
        node once Redis has answered everything asked before."""

    def describe(self, member: Member) -> None:
        """What ``member`` says of itself changed (away, real name, IRC user modes): kept
        where :meth:`people` reads it."""

    def rename(self, member: Member, rid: RequestId, new: str, *, hello: bool) -> None: ...

    # rooms (docs/rooms.md): the hub has answered the lobby's requests; ``key`` is the
    # room's key (imkit.rules.rooms.room_key)
    def lobby(self, member: Member, rid: RequestId, *, inside: bool) -> bool:
        """``member`` joins the lobby again (``inside``) or leaves it; False when it
        could not (it has been told why)."""

    def room_join(self, member: Member, command: JoinRoom, key: str) -> None: ...
    def room_part(self, member: Member, command: PartRoom, key: str) -> None: ...
    def room_message(self, member: Member, command: RoomMessage, key: str) -> None: ...
    def room_list(self, member: Member, command: ListRooms) -> None: ...
    def room_who(self, member: Member, command: Who, key: str) -> None: ...
    def room_topic(self, member: Member, command: Topic, key: str) -> None: ...
    def room_kick(self, member: Member, command: RoomKick, key: str) -> None: ...
    def room_invite(self, member: Member, command: Invite, key: str) -> None: ...
    def room_mode(self, member: Member, command: RoomMode, key: str) -> None: ...
    def hook_publish(
        self,
        room: str,
        name: str,
        username: str | None,
        text: str,
        done: Callable[[PostOutcome], None],
    ) -> None:
        """A webhook's message to the room ``room`` (its key) as ``name``, or as
        ``username`` when free; ``done`` once stored (docs/integrations.md)."""

    # deleting (text None) and editing a message (imkit.hub.edits)
    def amend(self, member: Member, command: DeleteMessage | EditMessage) -> None: ...
    def deleted(self, messages: list[tuple[int, str | None]]) -> None:
        """An administrator deleted ``messages`` (msgid numbers, rooms' names, None: the
        lobby's) from the store: the users who may have them are told."""

    # accounts
    def lookup_account(self, name: str, answer: Callable[[Account | None | str], None]) -> None:
        """The account called ``name`` (None: there is none; a str: why it cannot be
        read)."""

    def login(self, member: Member, account: Account, rid: RequestId, *, hello: bool) -> None: ...
    def change_password(
        self, member: Member, account: Account, password_hash: str, rid: RequestId
    ) -> None: ...


class Directory(Protocol):
    """What the admin socket (imkit.operator) asks of the whole chat: this server's
    users and store, or the cluster's in Redis. The replies' words are the admin's."""

    # How many accounts this server holds itself, for ``imkit stats`` (None: they are
    # elsewhere, counted in the cluster section).
    def accounts_held(self) -> int | None: ...

    async def who(self) -> Reply: ...
    async def kick(self, name: str, reason: str | None, by: str) -> Reply: ...
    async def stats_extra(self) -> Reply:
        """What ``stats`` adds after the node's own counters."""

    # moderation
    async def ban(self, ban: Ban) -> int | str:
        """Keep ``ban`` and put it in force: how many users it removes, or why not."""

    async def unban(self, target: str) -> str | None: ...
    async def address_of_user(self, name: str) -> str | None: ...
    async def mute(
        self, name: str, until: float | None, reason: str | None, found: Account | None
    ) -> Reply:
        """Mute (``until`` 0.0: unmute) the user ``name`` (``found``: its account):
        ``{"name": shown name}``, maybe with ``pending`` and ``silent_s``, or an
        error reply."""

    # accounts
    async def account_add(self, account: Account) -> str | None | Reply:
        """Keep ``account``: the guest renamed for it (or None), or an error reply."""

    async def account_update(self, key: str, changes: dict[str, Any]) -> str | None: ...
    async def account_remove(self, name: str) -> Reply: ...
    async def accounts(self) -> list[tuple[Account, int]] | Reply: ...

    # rooms (docs/rooms.md, "What the administrator can do"). ``name`` is a room's name
    # (checked: imkit.rules.rooms.room_problem), never the lobby's; its key is
    # imkit.rules.rooms.room_key(name). The users are told of each change as by
    # ADMINISTRATOR; ``by`` (the admin socket's peer) is for the log. Each answers an
    # "ok" reply, or an error reply (no_such_room, unavailable, ...).
    def rooms_held(self) -> int | None:
        """How many rooms this server holds itself (registered ones without members
        too), for ``imkit stats`` and ``imkit_rooms`` (None: a cluster node, whose
        rooms are Redis': it counts those with members here)."""

    async def rooms(self) -> Reply:
        """Every room, secret ones too, by key: ``{"type": "rooms", "rooms": [{"room",
        "members" (a count), "topic", "modes", "args" (the key shown), "registered",
        "secret", "operators" (accounts), "bans" (masks)}]}`` (the lobby is not one)."""

    async def room_add(
        self, name: str, topic: str | None, changes: Sequence[Change], by: str
    ) -> Reply:
        """Register the room ``name`` (kept in the store) with ``topic`` and
        ``changes`` (switches: +i, +m, +s); a room that exists unregistered becomes
        registered with its members. ``room_exists`` when it is registered already."""

    async def room_remove(self, name: str, by: str) -> Reply:
        """End the room ``name``: unregistered (forgotten by the store) if it was, every
        member told (a RoomKicked of itself by ADMINISTRATOR) and taken out, and
        forgotten by the accounts that would be put back in it at login."""

    async def room_op(self, name: str, account: Account, on: bool, by: str) -> Reply:
        """``account`` becomes (``on``) or stops being an operator of the registered
        room ``name``; its users in the room now gain or lose operator status (the
        room is told: a ModesChanged +o/-o)."""

    async def room_set(
        self, name: str, topic: str | None, changes: Sequence[Change], by: str
    ) -> Reply:
        """Change the room's topic (None: unchanged; "": cleared) and settings
        (``changes``: i m n s t k l; checked already, imkit.rules.rooms.change_problem);
        the room is told of what changed, kept first when it is registered."""

    async def room_who(self, name: str) -> Reply:
        """``{"type": "users", "room": name, "users": [imkit who's rows + "operator",
        "voice"]}``: the room's members, in order of joining."""

    async def room_kick(self, name: str, user: str, reason: str | None, by: str) -> Reply:
        """Take the user ``user`` out of the room ``name`` (it stays online):
        no_such_user, not_in_room."""

    async def room_ban(self, name: str, mask: Mask, on: bool, by: str) -> Reply:
        """Ban ``mask`` from the room ``name`` (``on``), or lift that ban (no_such_ban);
        members it matches stay until kicked (``"matching"``: their names)."""
