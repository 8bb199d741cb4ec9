"""One server on its own: :class:`LocalBackend`, the :class:`~imkit.hub.backend.Backend`
that makes the chat's shared decisions at once, in the hub's memory and its store.

Names, presence and the order of public messages are the hub's own dicts and its one
event loop; accounts and the messages kept for them are the store's, which holds them
in memory. A cluster node's backend (``imkit.cluster.backend.RedisBackend``) asks Redis
for the same decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from imkit.hub.directory import LocalDirectory
from imkit.hub.edits import amend_here, tell_amended
from imkit.hub.local_rooms import LocalRooms
from imkit.hub.members import Member, logged_in_message, reserved_message
from imkit.hub.queries import local_people
from imkit.hub.rooms import tell_irc
from imkit.protocol import (
    INVALID_NAME,
    LOGGED_IN,
    MAILBOX_FULL,
    NAME_RESERVED,
    NAME_TAKEN,
    NO_SUCH_USER,
    UNAVAILABLE,
    ChatMessage,
    Error,
    Event,
    KeptMessage,
    LoginOk,
    Mode,
    Ok,
    PasswdOk,
    Presence,
    PrivateMessage,
    PublicMessage,
    RenameOk,
    RequestId,
    UserInfo,
    UserList,
    Welcome,
    Who,
)
from imkit.protocol.edits import DeleteMessage, EditMessage
from imkit.protocol.queries import AccountChanged, Echo, IsAway, Whois
from imkit.rules.accounts import MAILBOX_MAX, Account, conversation_key
from imkit.rules.msgid import format_msgid
from imkit.rules.names import name_key, name_problem
from imkit.rules.rooms import room_key

if TYPE_CHECKING:
    from imkit.hub.core import Hub


def _ignore_outcome(problem: str | None) -> None:
    pass  # the last login time: nothing depends on it being stored


class LocalBackend(LocalRooms):
    """The shared decisions of a server on its own; see the module docstring (its
    rooms: :class:`~imkit.hub.local_rooms.LocalRooms`)."""

    features: tuple[str, ...] = ("history", "accounts", "rooms", "search", "edit")
    on_command: Callable[[Member], None] | None = None
    hub: Hub
    directory: LocalDirectory

    def attach(self, hub: Hub) -> None:
        self.hub = hub
        self.directory = LocalDirectory(hub)
        self._init_rooms()

    # ------------------------------------------------------------------ membership

    def join(self, member: Member, account: Account | None) -> None:
        """Bring ``member`` online under its default name (or, logged in already, its
        account's name) and announce it to everyone, itself included."""
        hub = self.hub
        assert not member.online
        member.name = member.default_name = hub.default_name(member.shown_addr)
        if account is not None:
            member.name, member.account = account.name, account.name
        member.online = True
        hub._members[member.id] = member
        hub._by_name[name_key(member.name)] = member
        online = Presence(member.name, member.shown_addr, online=True)
        if not member.in_lobby:  # an IRC user: in no channel until it joins one
            pass
        elif hub.on_unannounced is None:
            hub.broadcast(online)
        else:  # with the other joins of this round, before anything else is sent
            if not hub._unannounced:
                hub.on_unannounced()
            hub._unannounced.append((member, online))
        hub.replay_to(member)

    def leave(self, member: Member) -> None:
        """``member`` disconnected: forget it and tell everyone else. Idempotent."""
        if not member.online:
            return
        hub = self.hub
        member.online = False
        del hub._members[member.id]
        hub._forget_name(member)
        offline = Presence(member.name, member.shown_addr, False, member.quit_reason)
        rooms = list(member.rooms.values())
        self.leave_rooms(member)  # first: its own offline line is not for it
        # An IRC user not in the lobby: nobody there saw it come, its rooms are told.
        hub.tell(offline, rooms, member.in_lobby)

    def leave_when_answered(self, member: Member, answered: Callable[[], None]) -> None:
        """On one node the replies to what ``member`` sent are in its outbox already."""
        self.leave(member)
        answered()

    def local_members(self) -> list[Member]:
        return list(self.hub._members.values())

    # -------------------------------------------------------------------- commands

    def public(self, member: Member, command: PublicMessage) -> None:
        """Deliver at once, store after (LocalRooms._publish, shared with rooms)."""
        self._publish(member, command.id, command.text, command.notice, self.hub.lobby, None)

    def amend(self, member: Member, command: DeleteMessage | EditMessage) -> None:
        """Delete or edit a message: :func:`~imkit.hub.edits.amend_here`."""
        amend_here(self.hub, member, command, self._is_operator)

    def deleted(self, messages: list[tuple[int, str | None]]) -> None:
        hub, now = self.hub, self.hub.wall_clock()
        for number, room in messages:
            key = None if room is None else room_key(room)
            tell_amended(hub, key, room or hub.lobby, None, format_msgid(number), None, now)

    def _is_operator(self, member: Member, key: str) -> bool:
        state = self.states.get(key)
        return state is not None and state.is_operator(member.id)

    def private(self, member: Member, command: PrivateMessage) -> None:
        hub = self.hub
        target = hub.find(command.to)
        if target is None:
            account = hub.store.accounts.get(name_key(command.to))
            if account is None:
                message = f"no user named {command.to!r} is online"
                hub.send(member, Error(command.id, NO_SUCH_USER, message, command.to))
            else:
                self._keep_for(member, command, account)
            return
        stats = hub.stats
        stats.private_received += 1
        now = hub.wall_clock()
        msgid = hub.store.new_msgid(now)
        event = ChatMessage(
            member.name,
            member.shown_addr,
            target.name,
            command.text,
            now,
            msgid,
            member.account,
            notice=command.notice,
        )
        if member.account is not None and target.account is not None:
            # Between two accounts: kept as their conversation; ok means stored.
            pair = conversation_key(name_key(member.account), name_key(target.account))
            hub.store.append(event, partial(self._stored, member, command.id, msgid), pair)
        elif member.wire.mode is Mode.JSON:
            hub.send(member, Ok(command.id, msgid))  # not stored: accepted is all
        if hub.send(target, event):
            stats.messages_delivered += 1
        if member.wire.mode is Mode.IRC:  # its echo (echo-message), or nothing
            hub.send(member, Echo(event))
        if target.away is not None:
            hub.send(member, IsAway(target.name, target.away))
        if hub.unflushed_since is None:
            hub.unflushed_since = member.last_active

    def _keep_for(self, member: Member, command: PrivateMessage, account: Account) -> None:
        """A private message to an account that is offline: kept until it logs in."""
        hub = self.hub
        store = hub.store
        if store.waiting(account.key) >= MAILBOX_MAX:
            message = (
                f"{account.name} is offline and already has {MAILBOX_MAX} messages waiting;"
                " this one was not kept"
            )
            hub.send(member, Error(command.id, MAILBOX_FULL, message, account.name))
            return
        now = hub.wall_clock()
        msgid = store.new_msgid(now)
        event = ChatMessage(
            member.name, member.shown_addr, account.name, command.text, now, msgid, member.account
        )
        sender = member.account

        def kept(problem: str | None) -> None:
            if problem is None and sender is not None:  # only what was kept
                store.append(event, None, conversation_key(name_key(sender), account.key))
            if not member.online:
                return
            if problem is None:
                hub.stats.queued += 1
                hub.send(member, Ok(command.id, msgid, queued=account.name))
            else:
                message = f"the message was not kept: {problem}"
                hub.send(member, Error(command.id, UNAVAILABLE, message))

        hub.stats.private_received += 1
        store.add_mail(account.key, event, kept)

    def who(self, member: Member, command: Who) -> None:
        hub = self.hub
        users = tuple(
            UserInfo(m.name, m.shown_addr, m.account) for m in hub._members.values() if m.in_lobby
        )
        hub.reply(member, UserList(command.id, users))

    def people(self, member: Member, command: Whois) -> None:
        local_people(self.hub, member, command)

    def in_order(self, member: Member, event: Event) -> None:
        self.hub.send(member, event)  # every earlier reply is queued already

    def describe(self, member: Member) -> None:
        pass  # the member itself is what local_people reads

    def rename(self, member: Member, rid: RequestId, new: str, *, hello: bool) -> None:
        """``rename``, or a hello with a name: the reply once the name is ``member``'s."""
        if not self._rename(member, rid, new):
            return
        hub = self.hub
        if hello:
            hub.send(
                member,
                Welcome(rid, member.name, member.addr, hub.server_name, features=hub.features),
            )
        else:
            hub.send(member, RenameOk(rid, member.name))

    def _rename(self, member: Member, rid: RequestId, new: str) -> bool:
        hub = self.hub
        problem = name_problem(new)
        if problem is not None:
            hub.send(member, Error(rid, INVALID_NAME, f"invalid name {new!r}: {problem}", new))
            return False
        if member.account is not None and new != member.name:
            hub.send(member, Error(rid, LOGGED_IN, logged_in_message(member.account), new))
            return False
        key = name_key(new)
        account = hub.store.accounts.get(key)
        if account is not None and member.account != account.name:
            hub.send(member, Error(rid, NAME_RESERVED, reserved_message(account.name), new))
            return False
        holder = hub._by_name.get(key)
        if holder is not None and holder is not member:
            hub.send(member, Error(rid, NAME_TAKEN, f"the name {new!r} is taken", new))
            return False
        hub._take_name(member, new)
        return True

    # ------------------------------------------------------------------ accounts

    def lookup_account(self, name: str, answer: Callable[[Account | None | str], None]) -> None:
        answer(self.hub.store.accounts.get(name_key(name)))

    def login(self, member: Member, account: Account, rid: RequestId, *, hello: bool) -> None:
        """``member`` proved that it knows ``account``'s password: it becomes that user
        (joining now under --accounts-only), and gets what waited for it.

        A session already logged in to the account is replaced (bye ``replaced``).
        """
        hub = self.hub
        holder = hub._by_name.get(account.key)
        if holder is not None and holder is not member:
            hub._release_name(holder)
        hub.stats.logins += 1
        if not member.online:
            hub.join(member, account)
        else:
            before, member.account = member.account, account.name
            hub._take_name(member, account.name)
            if before != account.name:  # account-notify, under its new name
                changed = AccountChanged(member.name, member.shown_addr, account.name)
                tell_irc(hub, changed, member.rooms.values(), lobby=member.in_lobby)
        if hello:
            reply: Event = Welcome(
                rid,
                member.name,
                member.addr,
                hub.server_name,
                account.name,
                features=hub.features,
            )
        else:
            reply = LoginOk(rid, member.name)
        hub.send(member, reply)
        hub.store.update_account(account.key, {"last_login": hub.wall_clock()}, _ignore_outcome)
        # Owed to it, however many and long (paced to its reading, never a reason to
        # drop it); each leaves the mailbox only once written to its socket, so that
        # what a dropped connection never got waits for the next login.
        store, key = hub.store, account.key
        waiting = store.mail_for(key)
        for message in waiting:
            hub.reply(member, KeptMessage(message), partial(store.mail_delivered, key, message))
        hub.stats.messages_delivered += len(waiting)
        self.rejoin_rooms(member, key)

    def change_password(
        self, member: Member, account: Account, password_hash: str, rid: RequestId
    ) -> None:
        """Keep ``member``'s new password; it is told once it is stored."""

        def saved(problem: str | None) -> None:
            if not member.online:
                return
            if problem is None:
                self.hub.send(member, PasswdOk(rid))
            else:
                message = f"the password was not changed: {problem}"
                self.hub.send(member, Error(rid, UNAVAILABLE, message))

        self.hub.store.update_account(account.key, {"hash": password_hash}, saved)
