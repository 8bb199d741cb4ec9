"""Who is online, and how a message reaches them.

The hub owns the online users: their names (unique without regard to case), their order
of arrival, the routing of public and private messages, renames, and every way a user is
removed (disconnect, idle, kick, slow consumer, shutdown). It is synchronous and never
touches a socket: a user is reached only through its :class:`Outbox`, a bounded queue of
bytes that the transport drains. Because nothing here awaits, every operation is atomic:
two renames cannot race, and a user is either fully online or fully gone.

Fan-out policy (:meth:`Hub.broadcast`): an event is encoded once per wire mode and the
same bytes are queued for every recipient, in order of arrival. Queuing never
blocks. A recipient whose outbox would grow past its byte limit is a *slow consumer*: its
queue is discarded, it is told why, disconnected, and counted; everyone else has already
received the event, so one stalled reader delays nobody.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from imkit import __version__
from imkit.hub.backend import Backend, Directory
from imkit.hub.edits import edit_commands
from imkit.hub.history import history
from imkit.hub.local import LocalBackend
from imkit.hub.members import (
    ACCOUNT_REMOVED_BYE,
    IDLE_BYE,
    REPLACED_BYE,
    SHUTDOWN_BYE,
    Member,
    ban_bye,
    kick_bye,
    slow_bye,
)
from imkit.hub.outbox import Outbox
from imkit.hub.queries import query_commands
from imkit.hub.room_commands import room_commands
from imkit.hub.rooms import Room, fan_out, lobby_and_rooms, lobby_members
from imkit.hub.stats import Stats
from imkit.protocol import (
    MUTED,
    SESSION_ENDED,
    Authenticate,
    Bye,
    Command,
    Error,
    Event,
    Frame,
    Hello,
    History,
    HistoryPage,
    Invalid,
    Mode,
    NameChange,
    Ping,
    Pong,
    Presence,
    PrivateMessage,
    PublicMessage,
    Rename,
    RequestId,
    RoomMessage,
    ServerConnection,
    Topic,
    Welcome,
)
from imkit.rules.accounts import Account
from imkit.rules.bans import Ban, Bans, address_of, refusal
from imkit.rules.names import name_key
from imkit.rules.pseudonyms import pseudonym
from imkit.rules.rooms import (
    DEFAULT_LOBBY,
    DEFAULT_MAX_ROOMS,
    DEFAULT_MAX_ROOMS_PER_USER,
    room_key,
)
from imkit.store import MemoryStore, Store

log = logging.getLogger("imkit.hub")

SERVER_NAME = f"imkit/{__version__}"


def _ignore_command(member: Member, command: Authenticate) -> None:
    pass  # a password offered to a server that asks for none: ignored, never echoed


def _memory_store() -> Store:
    return MemoryStore(clock=time.time)


def _speaks(command: Command) -> bool:
    """What a muted user may not do: send a message, rename, set a room's topic."""
    if isinstance(command, PublicMessage | PrivateMessage | Rename | RoomMessage):
        return True
    if isinstance(command, Hello):
        return command.name is not None
    return isinstance(command, Topic) and command.topic is not None


@dataclass(eq=False)
class Hub:
    """The online users and the routing between them. See the module docstring."""

    server_name: str = SERVER_NAME
    wall_clock: Callable[[], float] = time.time
    stats: Stats = field(default_factory=Stats)
    store: Store = field(default_factory=_memory_store)  # history and msgids
    bans: Bans = field(default_factory=Bans)  # in force; kept in the store
    replay: int = 0  # past messages a text client gets when it joins
    # --hide-addresses: users see each other's pseudonyms, never addresses.
    hide_addresses: bool = False
    # Rooms (docs/rooms.md): the lobby's name (--lobby), the limits, who may make a room
    # by joining it (--room-creation); and the rooms with members here, by key.
    lobby: str = DEFAULT_LOBBY
    max_rooms: int = DEFAULT_MAX_ROOMS
    max_rooms_per_user: int = DEFAULT_MAX_ROOMS_PER_USER
    room_creation: str = "anyone"
    rooms: dict[str, Room] = field(default_factory=dict)
    _members: dict[int, Member] = field(default_factory=dict)  # online, in order of arrival
    _by_name: dict[str, Member] = field(default_factory=dict)  # name_key(name) -> member
    # When the first chat message handled since the flusher's last round was taken up
    # (monotonic): the flusher's latency clock (imkit.metrics, delivery latency).
    unflushed_since: float | None = None
    _overflowed: list[Member] = field(default_factory=list)
    _settling: bool = False
    # Joins not yet announced, in order (see announce_joins), and what the server sets to
    # be told when the first one waits: it runs announce_joins at the start of its next
    # flush round. None (a hub on its own, as in tests): every join is announced at once.
    _unannounced: list[tuple[Member, Presence]] = field(default_factory=list)
    on_unannounced: Callable[[], None] | None = None
    _next_id: int = 1
    # Who makes the shared decisions (imkit.hub.backend): this server on its own, or a
    # cluster node's Redis.
    backend: Backend = field(default_factory=LocalBackend)
    # What a welcome says this server offers (protocol.md, "welcome"): history pages,
    # accounts (any server can have them: `imkit account add`), and on a cluster node
    # "cluster". The backend's.
    features: tuple[str, ...] = field(init=False, repr=False)
    # What the backend does with every command before the hub does (None: nothing).
    on_command: Callable[[Member], None] | None = field(init=False, repr=False)
    _commands: dict[type[Command], Callable[[Member, Any], None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.lobby_key = room_key(self.lobby)
        backend = self.backend
        backend.attach(self)
        self.features = backend.features
        self.on_command = backend.on_command
        self._commands = self._command_table()

    @property
    def directory(self) -> Directory:
        """What the admin socket asks of the whole chat (imkit.hub.backend)."""
        return self.backend.directory

    # ------------------------------------------------------------------ membership

    def new_member(self, addr: str, wire: ServerConnection, outbox: Outbox, now: float) -> Member:
        """A member for a new connection; not online until :meth:`join`."""
        shown = self.shown_address(addr)
        member = Member(self._next_id, addr, shown, wire, outbox, now, now, self.wall_clock())
        member.shown_addr = shown
        self._next_id += 1
        return member

    def shown_address(self, addr: str) -> str:
        """What other users see in place of ``addr``: itself, or its pseudonym."""
        if not self.hide_addresses:
            return addr
        return pseudonym(self.store.address_secret, addr)

    def join(self, member: Member, account: Account | None = None) -> None:
        """Bring ``member`` online under its default name (or, logged in already, its
        account's name) and announce it to everyone, itself included (the backend
        decides the name)."""
        self.backend.join(member, account)

    def announce_joins(self) -> None:
        """Announce the joins not yet announced: everyone online receives each online
        line once, in order, and a newcomer the lines from its own on, as if each had
        been broadcast when it came; but in one put per recipient for all of them.

        In a connection storm (1,000 clients a second) announcing each join at once costs
        a put for every user online, per join: at 10,000 users, 2 ms a join, which fell
        behind the storm until the kernel's accept queue overflowed (docs/performance.md).
        Every other output (:meth:`send`, :meth:`broadcast`, :meth:`remove`) announces
        the waiting joins first, so nobody sees anything out of order.
        """
        pending = self._unannounced
        if not pending:
            return
        self._unannounced = []
        if len(pending) == 1:
            self.broadcast(pending[0][1])
            return
        frames = [Frame(event) for _, event in pending]
        starts = {member.id: index for index, (member, _) in enumerate(pending)}
        joined: dict[tuple[bool, int], bytes] = {}  # (JSON?, first line) -> the lines

        def lines(json: bool, start: int) -> bytes:
            data = joined.get((json, start))
            if data is None:
                forms = (f.json if json else f.text for f in frames[start:])
                data = joined[json, start] = b"".join(forms)
            return data

        json_mode, irc_mode = Mode.JSON, Mode.IRC
        slow: list[Member] = []
        for member in self._members.values():
            if not member.in_lobby:
                continue
            start = starts.get(member.id, 0)
            if member.wire.mode is irc_mode:  # its forms: imkit.irc.wire
                data = b"".join(frame.for_wire(member.wire) for frame in frames[start:])
            else:
                data = lines(member.wire.mode is json_mode, start)
            if data and not member.outbox.put(data):
                slow.append(member)
        if slow:
            self._overflow(slow)

    def replay_to(self, member: Member) -> None:
        """--replay: the last messages to a text client, right after its own "user is
        online" line and before anything said after it."""
        if self.replay and member.wire.mode in (Mode.TEXT, Mode.UNDECIDED):
            self.reply(member, HistoryPage(None, self.store.recent(self.replay)))

    def default_name(self, addr: str) -> str:
        """``addr``, or ``addr#2``, ``addr#3`` ... while the address is someone's name.

        ``addr`` is the address as shown: with --hide-addresses a pseudonym, the same
        for every connection from one IP. Without it, the kernel may give a closed
        connection's address to a new one before the hub has seen the old one leave, so
        two users can share an address for a moment. Like an address (and a
        pseudonym), these names contain ``:``, so nobody can take one with a rename.
        """
        name, count = addr, 1
        while name_key(name) in self._by_name:
            count += 1
            name = f"{addr}#{count}"
        return name

    def leave(self, member: Member) -> None:
        """``member`` disconnected: forget it and tell everyone else. Idempotent."""
        self.backend.leave(member)

    def leave_when_answered(self, member: Member, answered: Callable[[], None]) -> None:
        """``member`` sent its last line (end of stream: it half-closed, or closed) but
        is still owed the replies to what it sent: take it offline once they are all
        in its outbox, then call ``answered``. On one node they are already there; a
        cluster node's come back through Redis (RedisBackend). Idempotent as leave()."""
        self.backend.leave_when_answered(member, answered)

    def _forget_name(self, member: Member) -> None:
        # Only ever our own entry: never someone else's who has the name now.
        key = name_key(member.name)
        if self._by_name.get(key) is member:
            del self._by_name[key]

    def remove(self, member: Member, bye: Bye, *, drain: bool = True) -> None:
        """Say ``bye`` to ``member``, close its outbox, and take it offline."""
        if self._unannounced:
            self.announce_joins()
        final = member.wire.encode(bye)
        if member.in_flight is not None:  # every request gets one reply: this one's first
            rid, undone = member.in_flight
            member.in_flight = None
            ended = Error(rid, SESSION_ENDED, f"{undone}: {bye.message}")
            final = member.wire.encode(ended) + final
        member.outbox.close(final, drain=drain)
        self.leave(member)

    def kick(self, name: str, reason: str | None = None) -> Member | None:
        """Remove the user called ``name`` (an administrator's decision)."""
        member = self.find(name)
        if member is None:
            return None
        self.stats.admin_kicks += 1
        self.remove(member, kick_bye(reason))
        return member

    def expire_idle(self, cutoff: float) -> list[Member]:
        """Remove every user whose last line came before ``cutoff`` (monotonic)."""
        idle = [m for m in self._members.values() if m.last_active < cutoff]
        for member in idle:
            if member.online:
                self.stats.idle_kicks += 1
                self.remove(member, IDLE_BYE)
        return idle

    def shutdown(self) -> None:
        """Say goodbye to everyone at once (no "user offline" lines: all are leaving)."""
        self._unannounced = []
        members = list(self._members.values())
        self._members.clear()
        self._by_name.clear()
        self.rooms.clear()
        for member in members:
            member.online = False
            member.outbox.close(member.wire.encode(SHUTDOWN_BYE))

    def find(self, name: str) -> Member | None:
        return self._by_name.get(name_key(name))

    @property
    def members(self) -> list[Member]:
        """The online users in order of arrival."""
        return list(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    # ------------------------------------------------------------------- commands

    def handle(self, member: Member, command: Command) -> None:
        """Carry out one command from ``member`` and queue its reply."""
        if self.on_command is not None:
            self.on_command(member)
        if not member.online:
            return  # removed while its earlier lines were being handled
        if member.muted_until is not None and self.refuse_muted(member, command):
            return
        try:
            handler = self._commands[type(command)]
        except KeyError:  # pragma: no cover - every Command subclass has an entry
            raise TypeError(f"unknown command {command!r}") from None
        handler(member, command)

    def _command_table(self) -> dict[type[Command], Callable[[Member, Any], None]]:
        """One entry a command: the backend's shared decisions, the rest the same."""
        backend = self.backend
        table = room_commands(self) | query_commands(self) | edit_commands(self)
        return table | {
            PrivateMessage: backend.private,
            Rename: self._rename_command,
            History: partial(history, self),
            Ping: self._ping,
            Hello: self._hello,
            Invalid: self._invalid,
            Authenticate: _ignore_command,
        }

    def _rename_command(self, member: Member, command: Rename) -> None:
        self.backend.rename(member, command.id, command.name, hello=False)

    def _ping(self, member: Member, command: Ping) -> None:
        self.send(member, Pong(command.id))

    def _hello(self, member: Member, command: Hello) -> None:
        if command.name is None:
            self.send(
                member,
                Welcome(
                    command.id,
                    member.name,
                    member.addr,
                    self.server_name,
                    features=self.features,
                ),
            )
        else:
            self.backend.rename(member, command.id, command.name, hello=True)

    def _invalid(self, member: Member, command: Invalid) -> None:
        self.send(member, Error(command.id, command.code, command.message))

    def refuse_muted(self, member: Member, command: Command) -> bool:
        """Refuse what a muted ``member`` may not do (speak, rename); False when the
        command is allowed, or the mute has ended (then it is lifted)."""
        until = member.muted_until
        if until is None or until <= self.wall_clock():
            member.muted_until = member.mute_reason = None
            return False
        if not _speaks(command):
            return False
        self.stats.refused_muted += 1
        end = None if until == float("inf") else until
        message = refusal("you are muted", member.mute_reason, end)
        self.send(member, Error(command.id, MUTED, message))
        return True

    # ---------------------------------------------------------------- moderation

    def local_members(self) -> list[Member]:
        """The users connected to this server (a cluster node: only its own)."""
        return self.backend.local_members()

    def apply_ban(self, ban: Ban) -> int:
        """Put ``ban`` in force here: the matching users are told and removed."""
        self.bans.add(ban)
        now = self.wall_clock()
        if not ban.active(now):
            return 0
        network = ban.network
        removed = 0
        for member in self.local_members():
            if network is None:  # an account: its user, wherever it connects from
                hit = member.account is not None and name_key(member.account) == name_key(
                    ban.target
                )
            else:
                ip = address_of(member.addr)
                hit = ip is not None and ip.version == network.version and ip in network
            if member.online and hit:
                self.stats.banned += 1
                removed += 1
                self.remove(member, ban_bye(ban))
                log.info(
                    "%s (%s) removed by a ban on %s",
                    member.name,
                    member.addr,
                    ban.target,
                    extra={
                        "event": "banned",
                        "user": member.name,
                        "addr": member.addr,
                        "target": ban.target,
                    },
                )
        return removed

    def mute(self, member: Member, until: float | None, reason: str | None) -> None:
        """Mute ``member`` until ``until`` (None: for as long as it is connected)."""
        member.muted_until = float("inf") if until is None else until
        member.mute_reason = reason

    # ------------------------------------------------------------------ accounts

    def lookup_account(self, name: str, answer: Callable[[Account | None | str], None]) -> None:
        """The account called ``name`` (None: there is none; a str: why it cannot be
        read). A cluster node asks Redis; one server knows at once."""
        self.backend.lookup_account(name, answer)

    def login(self, member: Member, account: Account, rid: RequestId, *, hello: bool) -> None:
        """``member`` proved that it knows ``account``'s password: it becomes that user
        (joining now under --accounts-only), and gets what waited for it.

        A session already logged in to the account is replaced (bye ``replaced``).
        """
        self.backend.login(member, account, rid, hello=hello)

    def _release_name(self, holder: Member) -> None:
        """Free ``holder``'s name for its account's user: a session of the account is
        replaced; a guest (an account made while it held the name) is renamed."""
        if holder.account is not None:
            self.stats.replaced += 1
            log.info(
                "%s (%s): replaced by a login to its account from elsewhere",
                holder.name,
                holder.addr,
                extra={"event": "replaced", "user": holder.name, "addr": holder.addr},
            )
            self.remove(holder, REPLACED_BYE)
        else:
            self._take_name(holder, self.default_name(holder.shown_addr), reason="reserved")

    def _take_name(self, member: Member, new: str, reason: str | None = None) -> None:
        """``member`` is called ``new`` now, and everyone is told; with a ``reason`` (it
        did not ask for it), only ``member`` is told why: the others see a rename."""
        old = member.name
        if new == old:
            return
        self._forget_name(member)
        member.name = new
        self._by_name[name_key(new)] = member
        renamed = NameChange(old, new, member.shown_addr)
        rooms, lobby = member.rooms.values(), member.in_lobby
        if reason is None:
            self.tell(renamed, rooms, lobby)
            return
        self.send(member, NameChange(old, new, member.shown_addr, reason))
        others = [m for m in lobby_and_rooms(self, rooms, lobby=lobby) if m is not member]
        fan_out(self, others, renamed)

    def change_password(
        self, member: Member, account: Account, password_hash: str, rid: RequestId
    ) -> None:
        """Keep ``member``'s new password; it is told once it is stored."""
        self.backend.change_password(member, account, password_hash, rid)

    def reserve(self, account: Account) -> str | None:
        """An account was made: a guest holding its name is renamed to its default name
        (and told why); returns that new name, or None."""
        holder = self._by_name.get(account.key)
        if holder is None or holder.account is not None:
            return None
        self._release_name(holder)
        return holder.name

    def log_out(self, account_name: str) -> int:
        """An account was removed: its user, if online, is told and removed."""
        member = self.find(account_name)
        if member is None or member.account is None:
            return 0
        self.remove(member, ACCOUNT_REMOVED_BYE)
        return 1

    # -------------------------------------------------------------------- delivery

    def send(self, member: Member, event: Event) -> bool:
        """Queue ``event`` for one member; False if that made it a slow consumer."""
        if self._unannounced:
            self.announce_joins()
        data = member.wire.encode(event)
        if not data or member.outbox.put(data):
            return True
        self._overflow([member])
        return False

    def reply(
        self, member: Member, event: Event, written: Callable[[], None] | None = None
    ) -> None:
        """Queue ``event``, a reply ``member`` asked for that may be long (a page of
        history, the list of who is online, its kept messages): owed to it whatever its
        size, and written at the pace it reads (:meth:`Outbox.put_reply`); ``written``
        is called once it has been written to the socket."""
        if self._unannounced:
            self.announce_joins()
        member.outbox.put_reply(member.wire.encode(event), written)

    def tell(self, event: Event, rooms: Collection[Room], lobby: bool = True) -> None:
        """Queue ``event``, a user's presence or rename, for the lobby (``lobby``: the
        user is in it) and the members here of ``rooms`` (the user's), each once."""
        if not rooms and lobby:
            self.broadcast(event)
            return
        if self._unannounced:
            self.announce_joins()  # before lobby_and_rooms: it may remove slow consumers
        fan_out(self, lobby_and_rooms(self, rooms, lobby=lobby), event)

    def broadcast(self, event: Event) -> int:
        """Queue ``event`` for every online user in the lobby; returns how many
        received it. Never blocks; see the module docstring."""
        if self._unannounced:
            self.announce_joins()  # before lobby_members: it may remove slow consumers
        return fan_out(self, lobby_members(self), event)

    def _overflow(self, members: list[Member]) -> None:
        # Removing a slow consumer broadcasts "user offline", which can overflow others:
        # work through them in a loop rather than by recursion.
        self._overflowed.extend(members)
        if self._settling:
            return
        self._settling = True
        try:
            while self._overflowed:
                member = self._overflowed.pop(0)
                if member.online:
                    self.stats.slow_consumers += 1
                    limit = member.outbox.limit
                    self.remove(member, slow_bye(limit), drain=False)
                    log.warning(
                        "%s (%s): disconnected as a slow consumer: more than %d bytes waited",
                        member.name,
                        member.addr,
                        limit,
                        extra={
                            "event": "slow_consumer",
                            "user": member.name,
                            "addr": member.addr,
                            "limit": limit,
                        },
                    )
        finally:
            self._settling = False
