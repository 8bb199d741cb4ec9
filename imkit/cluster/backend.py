"""The hub of a cluster node: the same chat, with Redis as the authority.

:class:`RedisBackend` is the :class:`~imkit.hub.backend.Backend` of a cluster node: the
hub's shared decisions (who has which
name, who is online, the order of public messages) are made by Redis through the
node's :class:`~imkit.cluster.link.ClusterLink`, and whose deliveries come back from
Redis' event streams. It stays synchronous like its parent: a command that needs
Redis is queued on the link with a callback, and the events read from Redis are
applied one by one, each atomically, in the order every node sees them.

What changes against one node:

* a user is *joining* from its connection until its own "user is online" event comes
  back: its commands are accepted (they run after its join in Redis), but it receives
  nothing before that line, exactly as on one node;
* public messages, presence lines and renames are delivered when they come back from
  ``P:log`` -- the sender's own copy too -- so every user of every node sees one order;
* private messages go through the recipient's node stream, even to a user of this node,
  so that each sender's messages keep their order;
* while Redis cannot be reached, what needs it is refused (``unavailable``) and new
  connections are turned away; connected users stay;
* rooms (:mod:`imkit.cluster.rooms`) are Redis' too: each room request is a script,
  each room has its own event stream, and a node reads only its users' rooms' streams;
* accounts and the private messages waiting for them live in Redis (``P:accounts``,
  ``P:mail:KEY``), so that an account added on one node works on every node at once. A
  login is one script (another session of the account is replaced, the user takes the
  account's name, its waiting messages are moved to this node's stream); the user is
  answered when its ``li`` event comes back, after its rename and before those messages.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from imkit.cluster import FULL
from imkit.cluster.admin_answers import RedisDirectory
from imkit.cluster.connection import is_full
from imkit.cluster.edits import amend_in_redis
from imkit.cluster.events import ClusterEvents
from imkit.cluster.link import ClusterLink
from imkit.cluster.people import about, describe, people
from imkit.cluster.rooms import RedisRooms
from imkit.cluster.terms import (
    REJOINING,
    UNAVAILABLE_BYE,
    UNAVAILABLE_MESSAGE,
    Leaving,
    Login,
    _ignore,
    ascii_keys,
    default_candidates,
    mailbox_full_message,
    numbered_names,
    parse_users,
    unavailable_message,
)
from imkit.hub.core import Hub
from imkit.hub.credentials import LOGIN_FAILED_MESSAGE
from imkit.hub.members import (
    ACCOUNT_REMOVED_BYE,
    Member,
    logged_in_message,
    reserved_message,
)
from imkit.protocol import (
    INVALID_NAME,
    LOGGED_IN,
    LOGIN_FAILED,
    MAILBOX_FULL,
    NAME_RESERVED,
    NAME_TAKEN,
    NO_SUCH_USER,
    UNAVAILABLE,
    Bye,
    ChatMessage,
    Error,
    Event,
    Mode,
    Ok,
    PasswdOk,
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
from imkit.protocol.queries import Echo, Whois
from imkit.rules.accounts import MAILBOX_MAX, Account, conversation_key
from imkit.rules.hooks import HOOK_ADDR, NO_ROOM, NOT_TAKEN, POSTED, PostOutcome
from imkit.rules.names import name_key, name_problem

log = logging.getLogger("imkit.cluster")


def _about_json(member: Member) -> str:
    fields = about(member)
    return "" if fields is None else json.dumps(fields)


class RedisBackend(RedisRooms):
    """The shared decisions of a cluster node, made by Redis; see the module docstring."""

    features: tuple[str, ...] = ("history", "accounts", "rooms", "search", "edit", "cluster")
    hub: Hub
    events: ClusterEvents
    directory: RedisDirectory

    def __init__(self, link: ClusterLink) -> None:
        self.link = link
        self.local: dict[int, Member] = {}  # connected here, by id
        self.undecided: set[int] = set()  # whose mode Redis has not been told
        self.logins: dict[int, Login] = {}  # in Redis, by token
        self.next_login = 1
        self.leaving: dict[int, Leaving] = {}  # by id: reading ended
        self.on_command: Callable[[Member], None] | None = self._mode_decided
        self._init_rooms()

    def attach(self, hub: Hub) -> None:
        self.hub = hub
        self.events = self.link.events = ClusterEvents(self, hub)
        self.directory = RedisDirectory(self)

    @property
    def node(self) -> str:
        return self.link.node

    # ------------------------------------------------------------------ membership

    def join(self, member: Member, account: Account | None) -> None:
        """Ask Redis for a default name; online when its own online event comes back.
        (A user that logs in before it is online, --accounts-only, joins in its login
        script: :meth:`login`.)"""
        assert account is None, "a cluster node joins a logged-in user in login()"
        if not self._take_in(member):
            return
        shown = member.shown_addr
        since = str(member.connected_wall)

        def joined(reply: Any) -> None:
            if isinstance(reply, BaseException) or reply[0] != "ok":
                if member.online:
                    self.hub.stats.refused_unavailable += 1
                    self.hub.remove(member, self._unavailable_bye(reply))

        hidden = self.hub.hide_addresses
        self.link.script(
            "join",
            self.node,
            member.id,
            shown,
            member.mode.value,
            since,
            # Only the operator's `imkit who` (on any node) shows the real address.
            member.addr if hidden else "",
            numbered_names(shown) if hidden else "",
            _about_json(member),
            *default_candidates(shown),
            done=joined,
        )

    def _unavailable_bye(self, reply: Any = None) -> Bye:
        if is_full(reply) or self.link.problem is not None:
            problem = FULL if is_full(reply) else self.link.problem
            return Bye("unavailable", unavailable_message(problem))
        return UNAVAILABLE_BYE

    def _take_in(self, member: Member) -> bool:
        """A new connection joins (False: refused, Redis cannot be used)."""
        if self.link.problem is not None:
            self.hub.stats.refused_unavailable += 1
            member.outbox.close(member.wire.encode(self._unavailable_bye()))
            return False
        member.online = True  # its commands are taken; it receives from its online line
        member.default_name = member.shown_addr
        self.local[member.id] = member
        if member.mode is Mode.UNDECIDED:
            self.undecided.add(member.id)
        return True

    def leave(self, member: Member) -> None:
        if not member.online:
            return
        leaving = self.leaving.pop(member.id, None)
        member.online = False
        self.hub._members.pop(member.id, None)
        self.local.pop(member.id, None)
        self.undecided.discard(member.id)
        if self.logins:
            for token in [t for t, login in self.logins.items() if login.member is member]:
                del self.logins[token]
        self.hub._forget_name(member)
        self.leave_rooms_here(member)
        if leaving is not None:  # its leave is in Redis already
            leaving.answered()
            return
        link = self.link
        if link.problem is None:
            # Announced by Redis; when it cannot be reached, the next registration drops
            # this user, which announces it then.
            link.script("leave", self.node, member.id, done=_ignore)

    def leave_when_answered(self, member: Member, answered: Callable[[], None]) -> None:
        """What ``member`` asked for comes back through Redis, in order: the leave script
        runs after its every script (its join, who, publish ...), whose replies come
        first, and its offline event comes after every event they made (its online
        line, its echo, a message to itself), which are applied first. So it stays
        online here, receiving them, until both are back (issue 26, item 7); the
        others see it leave at once."""
        if not member.online or self.link.problem is not None or member.id in self.leaving:
            self.leave(member)
            answered()
            return
        self.leaving[member.id] = Leaving(answered)
        self.link.script("leave", self.node, member.id, done=partial(self.left, member))

    def left(self, member: Member, reply: Any = None) -> None:
        """One of what a leaving ``member`` waits for is back (a failed reply: nothing
        more will come); offline, and answered, once both are."""
        leaving = self.leaving.get(member.id)
        if leaving is None:
            return
        leaving.waiting = 0 if isinstance(reply, BaseException) else leaving.waiting - 1
        if leaving.waiting <= 0:
            self.leave(member)

    def local_members(self) -> list[Member]:
        return [member for member in self.local.values() if member.online]

    # -------------------------------------------------------------------- commands

    def _refuse_unavailable(self, member: Member, rid: RequestId) -> bool:
        if self.link.problem is None:
            return False
        self.hub.stats.refused_unavailable += 1
        message = unavailable_message(self.link.problem)
        self.hub.send(member, Error(rid, UNAVAILABLE, message))
        return True

    def _failed(self, member: Member, rid: RequestId, reply: Any, what: str) -> bool:
        """Tell ``member`` when ``reply`` is a failure; True when it was one."""
        if is_full(reply):
            # Redis refused the script before it wrote anything: surely not sent.
            not_done = what.replace(" may not have been ", " was not ")
            message = f"{unavailable_message(FULL)}; {not_done}"
        elif isinstance(reply, BaseException):
            message = f"{UNAVAILABLE_MESSAGE}; {what}"
        elif reply[0] == "gone":
            message = REJOINING
        else:
            return False
        if member.online:
            self.hub.send(member, Error(rid, UNAVAILABLE, message))
        return True

    def public(self, member: Member, command: PublicMessage) -> None:
        if self._refuse_unavailable(member, command.id):
            return
        self.hub.stats.public_received += 1
        rid = command.id

        def published(reply: Any) -> None:
            if self._failed(member, rid, reply, "the message may not have been sent"):
                return
            link.pacer.note(int(reply[2]))  # how far the slowest reader is behind
            if member.online and member.wire.mode is Mode.JSON:
                self.hub.send(member, Ok(rid, reply[1]))
            self.published(member, command.text, command.notice, reply[1], reply[3], None)

        link, store = self.link, self.hub.store
        cutoff = store.cutoff() // 1000 if store.retain_days > 0 else 0
        notice = "1" if command.notice else ""
        link.script("publish", self.node, member.id, command.text, cutoff, notice, done=published)

    def hook_publish(
        self,
        room: str,
        name: str,
        username: str | None,
        text: str,
        done: Callable[[PostOutcome], None],
    ) -> None:
        """A webhook's message to a room (:meth:`LocalPublishing.hook_publish` on one
        server): one hook_publish.lua call, which stores it and writes it to the room's
        stream; every node tells its members in the room when it reads it there."""
        link, store = self.link, self.hub.store
        if link.problem is not None:
            self.hub.stats.refused_unavailable += 1
            done(PostOutcome(NOT_TAKEN, unavailable_message(link.problem)))
            return

        def published(reply: Any) -> None:
            if is_full(reply):  # refused before it wrote anything
                done(PostOutcome(NOT_TAKEN, f"{unavailable_message(FULL)}; not posted"))
            elif isinstance(reply, BaseException):
                done(PostOutcome(NOT_TAKEN, f"{UNAVAILABLE_MESSAGE}; it may not have been posted"))
            elif reply[0] == "none":
                done(PostOutcome(NO_ROOM, f"the hook's room {room} no longer exists"))
            else:
                self.hub.stats.public_received += 1
                self.hub.stats.room_messages += 1
                done(PostOutcome(POSTED, str(reply[1]), str(reply[2])))

        cutoff = store.cutoff() // 1000 if store.retain_days > 0 else 0
        asked, asked_key = (username, name_key(username)) if username else ("", "")
        args = (room, name, asked, asked_key, text, cutoff, HOOK_ADDR)
        link.script("hook_publish", *args, done=published)

    def amend(self, member: Member, command: DeleteMessage | EditMessage) -> None:
        """Delete or edit a message: one amend.lua call."""
        amend_in_redis(self, member, command)

    def deleted(self, messages: list[tuple[int, str | None]]) -> None:
        pass  # forget.lua's events tell every node's users

    def private(self, member: Member, command: PrivateMessage) -> None:
        if self._refuse_unavailable(member, command.id):
            return
        rid, to = command.id, command.to

        def sent(reply: Any) -> None:
            if self._failed(member, rid, reply, "the message may not have been sent"):
                return
            if not member.online:
                return
            status = reply[0]
            if status == "none":
                message = f"no user named {to!r} is online"
                self.hub.send(member, Error(rid, NO_SUCH_USER, message, to))
            elif status == "full":
                self.hub.send(member, Error(rid, MAILBOX_FULL, mailbox_full_message(reply[1]), to))
            elif status == "queued":  # kept for an account that is offline: ok means kept
                self.hub.stats.private_received += 1
                self.hub.stats.queued += 1
                self.hub.send(member, Ok(rid, reply[1], queued=reply[2]))
            else:
                self.hub.stats.private_received += 1
                if member.wire.mode is Mode.JSON:
                    self.hub.send(member, Ok(rid, reply[1]))
                elif member.wire.mode is Mode.IRC:  # its echo (echo-message), or nothing
                    echo = ChatMessage(member.name, member.shown_addr, to, command.text,
                                       self.hub.wall_clock(), reply[1], member.account,
                                       notice=command.notice)  # fmt: skip
                    self.hub.send(member, Echo(echo))

        link, store = self.link, self.hub.store
        key = name_key(to)
        # Between two accounts the script keeps it as their conversation too: the
        # recipient's account key is the key of its name (a logged-in user's name is
        # its account's), so the pair is known here whether it is online or not.
        mine = name_key(member.account) if member.account is not None else ""
        pair = conversation_key(mine, key) if mine else ""
        link.script(
            "private",
            self.node,
            member.id,
            key,
            command.text,
            int(link.node_timeout * 1000),
            pair,
            mine,
            store.mail_cutoff(),
            store.cutoff() // 1000 if store.retain_days > 0 else 0,
            MAILBOX_MAX,
            "1" if command.notice else "",
            done=sent,
        )

    def who(self, member: Member, command: Who) -> None:
        rid = command.id
        if self._refuse_unavailable(member, rid):
            return

        def listed(reply: Any) -> None:
            if self._failed(member, rid, reply, "try again"):
                return
            if member.online:
                users = tuple(
                    UserInfo(u["name"], u["addr"], u.get("account")) for u in parse_users(reply)
                )
                self.hub.reply(member, UserList(rid, users))

        self.link.script("who", "1", done=listed)

    def people(self, member: Member, command: Whois) -> None:
        people(self, member, command)

    def in_order(self, member: Member, event: Event) -> None:
        """After the replies to what was asked of Redis before (ClusterLink.after); while
        a login of ``member`` waits for its ``li`` event, after that login's answer."""
        for pending in self.logins.values():
            if pending.member is member:
                pending.then.append(event)
                return

        def send() -> None:
            if member.online:
                self.hub.send(member, event)

        self.link.after(send)

    def describe(self, member: Member) -> None:
        describe(self, member)

    def rename(self, member: Member, rid: RequestId, new: str, *, hello: bool) -> None:
        problem = name_problem(new)
        if problem is not None:
            self.hub.send(member, Error(rid, INVALID_NAME, f"invalid name {new!r}: {problem}", new))
            return
        if member.account is not None and new != member.name:  # (the script checks too)
            self.hub.send(member, Error(rid, LOGGED_IN, logged_in_message(member.account), new))
            return
        if self._refuse_unavailable(member, rid):
            return

        def renamed(reply: Any) -> None:
            if self._failed(member, rid, reply, "the name was not changed"):
                return
            if not member.online:
                return
            status = reply[0]
            if status == "taken":
                self.hub.send(member, Error(rid, NAME_TAKEN, f"the name {new!r} is taken", new))
            elif status == "reserved":
                self.hub.send(member, Error(rid, NAME_RESERVED, reserved_message(reply[1]), new))
            elif status == "logged_in":
                self.hub.send(member, Error(rid, LOGGED_IN, logged_in_message(reply[1]), new))
            elif hello:
                self.hub.send(
                    member,
                    Welcome(
                        rid, new, member.addr, self.hub.server_name, features=self.hub.features
                    ),
                )
            else:
                self.hub.send(member, RenameOk(rid, new))

        self.link.script("rename", self.node, member.id, new, name_key(new), done=renamed)

    # ------------------------------------------------------------------ accounts

    def lookup_account(self, name: str, answer: Callable[[Account | None | str], None]) -> None:
        """The account called ``name``, read from ``P:accounts`` (a str: why it cannot be)."""
        link = self.link
        if link.problem is not None:
            answer(unavailable_message(link.problem))
            return

        def found(reply: Any) -> None:
            if isinstance(reply, BaseException):
                answer(unavailable_message(FULL if is_full(reply) else None))
                return
            if reply is None:
                answer(None)
                return
            try:
                account = Account.from_fields(json.loads(reply))
            except (ValueError, KeyError, TypeError) as error:
                log.error(
                    "cluster: the account %r in Redis cannot be read: %s",
                    name,
                    error,
                    extra={"event": "account_unreadable", "account": name},
                )
                answer(f"the account {name!r} cannot be read")
                return
            answer(account)

        link.call(("HGET", link.accounts_key, name_key(name)), found)

    def login(self, member: Member, account: Account, rid: RequestId, *, hello: bool) -> None:
        """``member`` knows ``account``'s password: Redis makes it the account's user (the
        login script); it is answered when that comes back (:meth:`_logged_in`), and its
        waiting messages follow. Until then its account is already set here, so that
        its next lines (a private message) run as the account's, as they will in Redis."""
        joining = not member.online
        if joining:
            if not self._take_in(member):
                return
        elif self._refuse_unavailable(member, rid):
            return
        token = self.next_login
        self.next_login += 1
        self.logins[token] = Login(member, rid, hello, member.account)
        member.account = account.name
        join = ""
        if joining:
            join = json.dumps(
                {
                    "addr": member.shown_addr,
                    "mode": member.mode.value,
                    "since": str(member.connected_wall),
                    "real": member.addr if self.hub.hide_addresses else "",
                    "about": about(member),
                }
            )

        def done(reply: Any) -> None:
            if not isinstance(reply, BaseException) and reply[0] == "ok":
                return  # answered when its li event comes back
            pending = self.logins.pop(token, None)
            if pending is None or not member.online:
                return
            member.account = pending.previous
            removed = not isinstance(reply, BaseException) and reply[0] == "none"
            if joining:
                if not removed:
                    self.hub.stats.refused_unavailable += 1
                self.hub.remove(
                    member, ACCOUNT_REMOVED_BYE if removed else self._unavailable_bye(reply)
                )
            elif removed:  # the account was removed since its password was checked
                self.hub.send(member, Error(rid, LOGIN_FAILED, LOGIN_FAILED_MESSAGE))
            else:
                self._failed(member, rid, reply, "you are not logged in")
            if not joining:  # (one that was joining is gone)
                self.answered(pending)

        self.link.script(
            "login",
            self.node,
            member.id,
            account.key,
            account.name,
            token,
            self.hub.store.mail_cutoff(),
            ascii_keys(),
            join,
            done=done,
        )

    def answered(self, pending: Login) -> None:
        """A login is answered (its ``li`` event: LoginOk; or failed): what waited for it
        (:meth:`in_order`) follows."""
        for event in pending.then:
            if pending.member.online:
                self.hub.send(pending.member, event)

    def change_password(
        self, member: Member, account: Account, password_hash: str, rid: RequestId
    ) -> None:
        if self._refuse_unavailable(member, rid):
            return

        def saved(reply: Any) -> None:
            if self._failed(member, rid, reply, "the password was not changed"):
                return
            if not member.online:
                return
            if reply[0] == "ok":
                self.hub.send(member, PasswdOk(rid))
            else:
                message = "the password was not changed: the account no longer exists"
                self.hub.send(member, Error(rid, UNAVAILABLE, message))

        changes = json.dumps({"hash": password_hash})
        self.link.script("account_update", account.key, changes, done=saved)

    def _mode_decided(self, member: Member) -> None:
        """Before each command (the hub's on_command): once ``member``'s first line has
        decided its mode, `imkit who` on every node shows it."""
        if member.id in self.undecided and member.mode is not Mode.UNDECIDED:
            self.undecided.discard(member.id)
            self.link.script("mode", self.node, member.id, member.mode.value, done=_ignore)
