"""The hub of a cluster node: the same chat, with Redis as the authority.

:class:`ClusterHub` is a :class:`~imkit.hub.Hub` whose shared decisions (who has which
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
* accounts and the private messages waiting for them live in Redis (``P:accounts``,
  ``P:mail:KEY``), so that an account added on one node works on every node at once. A
  login is one script (another session of the account is replaced, the user takes the
  account's name, its waiting messages are moved to this node's stream); the user is
  answered when its ``li`` event comes back, after its rename and before those messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any, ClassVar

from imkit.cluster import FULL, UNREACHABLE
from imkit.cluster.connection import is_full
from imkit.cluster.link import ClusterLink
from imkit.hub.core import Hub
from imkit.hub.credentials import LOGIN_FAILED_MESSAGE
from imkit.hub.members import (
    ACCOUNT_REMOVED_BYE,
    DATA_LOST_BYE,
    REPLACED_BYE,
    Member,
    kick_bye,
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
    Command,
    Error,
    Event,
    Frame,
    KeptMessage,
    LoginOk,
    Mode,
    NameChange,
    Ok,
    PasswdOk,
    Presence,
    PrivateMessage,
    PublicMessage,
    RenameOk,
    RequestId,
    ServerNotice,
    UserInfo,
    UserList,
    Welcome,
)
from imkit.rules.accounts import MAILBOX_MAX, Account, conversation_key
from imkit.rules.bans import Ban
from imkit.rules.names import name_key, name_problem

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
    the keys of its characters end to end (tests/test_hidden_addresses.py checks it), so
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


@dataclass(slots=True)
class _Login:
    """A login sent to Redis, answered when its ``li`` event comes back."""

    member: Member
    rid: RequestId
    hello: bool
    previous: str | None  # the account it was logged in to before (restored on failure)


@dataclass(slots=True)
class _Leaving:
    """A user whose reading side ended, still online here until what it asked for has
    come back (:meth:`ClusterHub.leave_when_answered`)."""

    answered: Callable[[], None]
    waiting: int = 2  # its leave script's reply and its offline event


@dataclass(eq=False)
class ClusterHub(Hub):
    """A hub whose chat spans every node on one Redis; see the module docstring."""

    link: ClusterLink | None = None
    cluster_wide = True
    features: ClassVar[tuple[str, ...]] = ("history", "accounts", "cluster")
    _local: dict[int, Member] = field(default_factory=dict)  # connected here, by id
    _undecided: set[int] = field(default_factory=set)  # whose mode Redis has not been told
    _logins: dict[int, _Login] = field(default_factory=dict)  # in Redis, by token
    _next_login: int = 1
    # Account key -> the newest kept message written to its client this round, until
    # MAIL_DONE takes it and those before it out of the mailbox (_mail_written).
    _mail_written_upto: dict[str, str] = field(default_factory=dict)
    _leaving: dict[int, _Leaving] = field(default_factory=dict)  # by id: reading ended

    def __post_init__(self) -> None:
        assert self.link is not None
        self.link.events = self

    @property
    def _link(self) -> ClusterLink:
        link = self.link
        assert link is not None
        return link

    @property
    def node(self) -> str:
        return self._link.node

    # ------------------------------------------------------------------ membership

    def join(self, member: Member, account: Account | None = None) -> None:
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
                    self.stats.refused_unavailable += 1
                    self.remove(member, self._unavailable_bye(reply))

        hidden = self.hide_addresses
        self._link.script(
            "join",
            self.node,
            member.id,
            shown,
            member.mode.value,
            since,
            # Only the operator's `imkit who` (on any node) shows the real address.
            member.addr if hidden else "",
            numbered_names(shown) if hidden else "",
            *default_candidates(shown),
            done=joined,
        )

    def _unavailable_bye(self, reply: Any = None) -> Bye:
        if is_full(reply) or self._link.problem is not None:
            problem = FULL if is_full(reply) else self._link.problem
            return Bye("unavailable", unavailable_message(problem))
        return UNAVAILABLE_BYE

    def _take_in(self, member: Member) -> bool:
        """A new connection joins (False: refused, Redis cannot be used)."""
        if self._link.problem is not None:
            self.stats.refused_unavailable += 1
            member.outbox.close(member.wire.encode(self._unavailable_bye()))
            return False
        member.online = True  # its commands are taken; it receives from its online line
        member.default_name = member.shown_addr
        self._local[member.id] = member
        if member.mode is Mode.UNDECIDED:
            self._undecided.add(member.id)
        return True

    def leave(self, member: Member) -> None:
        if not member.online:
            return
        leaving = self._leaving.pop(member.id, None)
        member.online = False
        self._members.pop(member.id, None)
        self._local.pop(member.id, None)
        self._undecided.discard(member.id)
        if self._logins:
            for token in [t for t, login in self._logins.items() if login.member is member]:
                del self._logins[token]
        self._forget_name(member)
        if leaving is not None:  # its leave is in Redis already
            leaving.answered()
            return
        link = self._link
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
        if not member.online or self._link.problem is not None or member.id in self._leaving:
            super().leave_when_answered(member, answered)
            return
        self._leaving[member.id] = _Leaving(answered)
        self._link.script("leave", self.node, member.id, done=partial(self._left, member))

    def _left(self, member: Member, reply: Any = None) -> None:
        """One of what a leaving ``member`` waits for is back (a failed reply: nothing
        more will come); offline, and answered, once both are."""
        leaving = self._leaving.get(member.id)
        if leaving is None:
            return
        leaving.waiting = 0 if isinstance(reply, BaseException) else leaving.waiting - 1
        if leaving.waiting <= 0:
            self.leave(member)

    def local_members(self) -> list[Member]:
        return [member for member in self._local.values() if member.online]

    def current_members(self) -> list[dict[str, Any]]:
        """This node's users, for registering them again (in order of arrival)."""
        result = []
        for member in self._local.values():
            if not member.online or member.id in self._leaving:  # released already
                continue
            result.append(
                {
                    "mid": str(member.id),
                    "name": member.name,
                    "key": name_key(member.name),
                    "addr": member.shown_addr,
                    "real": member.addr if self.hide_addresses else "",
                    "mode": member.mode.value,
                    "since": str(member.connected_wall),
                    "defaults": default_candidates(member.shown_addr),
                    "account": member.account or "",
                }
            )
        return result

    # -------------------------------------------------------------------- commands

    def handle(self, member: Member, command: Command) -> None:
        if member.id in self._undecided and member.mode is not Mode.UNDECIDED:
            # Its first line decided its mode: `imkit who` on every node shows it.
            self._undecided.discard(member.id)
            self._link.script("mode", self.node, member.id, member.mode.value, done=_ignore)
        super().handle(member, command)

    def _refuse_unavailable(self, member: Member, rid: RequestId) -> bool:
        if self._link.problem is None:
            return False
        self.stats.refused_unavailable += 1
        message = unavailable_message(self._link.problem)
        self.send(member, Error(rid, UNAVAILABLE, message))
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
            self.send(member, Error(rid, UNAVAILABLE, message))
        return True

    def _public(self, member: Member, command: PublicMessage) -> None:
        if self._refuse_unavailable(member, command.id):
            return
        self.stats.public_received += 1
        rid = command.id

        def published(reply: Any) -> None:
            if self._failed(member, rid, reply, "the message may not have been sent"):
                return
            link.pacer.note(int(reply[2]))  # how far the slowest reader is behind
            if member.online and member.wire.mode is Mode.JSON:
                self.send(member, Ok(rid, reply[1]))

        link, store = self._link, self.store
        cutoff = store.cutoff() // 1000 if store.retain_days > 0 else 0
        link.script("publish", self.node, member.id, command.text, cutoff, done=published)

    def _private(self, member: Member, command: PrivateMessage) -> None:
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
                self.send(member, Error(rid, NO_SUCH_USER, message, to))
            elif status == "full":
                self.send(member, Error(rid, MAILBOX_FULL, mailbox_full_message(reply[1]), to))
            elif status == "queued":  # kept for an account that is offline: ok means kept
                self.stats.private_received += 1
                self.stats.queued += 1
                self.send(member, Ok(rid, reply[1], queued=reply[2]))
            else:
                self.stats.private_received += 1
                if member.wire.mode is Mode.JSON:
                    self.send(member, Ok(rid, reply[1]))

        link, store = self._link, self.store
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
            done=sent,
        )

    def _who(self, member: Member, rid: RequestId) -> None:
        if self._refuse_unavailable(member, rid):
            return

        def listed(reply: Any) -> None:
            if self._failed(member, rid, reply, "try again"):
                return
            if member.online:
                users = tuple(
                    UserInfo(u["name"], u["addr"], u.get("account")) for u in parse_users(reply)
                )
                self.reply(member, UserList(rid, users))

        self._link.script("who", done=listed)

    def _rename_request(self, member: Member, rid: RequestId, new: str, *, hello: bool) -> None:
        problem = name_problem(new)
        if problem is not None:
            self.send(member, Error(rid, INVALID_NAME, f"invalid name {new!r}: {problem}", new))
            return
        if member.account is not None and new != member.name:  # (the script checks too)
            self.send(member, Error(rid, LOGGED_IN, logged_in_message(member.account), new))
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
                self.send(member, Error(rid, NAME_TAKEN, f"the name {new!r} is taken", new))
            elif status == "reserved":
                self.send(member, Error(rid, NAME_RESERVED, reserved_message(reply[1]), new))
            elif status == "logged_in":
                self.send(member, Error(rid, LOGGED_IN, logged_in_message(reply[1]), new))
            elif hello:
                self.send(
                    member, Welcome(rid, new, member.addr, self.server_name, features=self.features)
                )
            else:
                self.send(member, RenameOk(rid, new))

        self._link.script("rename", self.node, member.id, new, name_key(new), done=renamed)

    # ------------------------------------------------------------------ accounts

    def lookup_account(self, name: str, answer: Callable[[Account | None | str], None]) -> None:
        """The account called ``name``, read from ``P:accounts`` (a str: why it cannot be)."""
        link = self._link
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
        token = self._next_login
        self._next_login += 1
        self._logins[token] = _Login(member, rid, hello, member.account)
        member.account = account.name
        join = ""
        if joining:
            join = json.dumps(
                {
                    "addr": member.shown_addr,
                    "mode": member.mode.value,
                    "since": str(member.connected_wall),
                    "real": member.addr if self.hide_addresses else "",
                }
            )

        def done(reply: Any) -> None:
            if not isinstance(reply, BaseException) and reply[0] == "ok":
                return  # answered when its li event comes back
            pending = self._logins.pop(token, None)
            if pending is None or not member.online:
                return
            member.account = pending.previous
            removed = not isinstance(reply, BaseException) and reply[0] == "none"
            if joining:
                if not removed:
                    self.stats.refused_unavailable += 1
                self.remove(
                    member, ACCOUNT_REMOVED_BYE if removed else self._unavailable_bye(reply)
                )
            elif removed:  # the account was removed since its password was checked
                self.send(member, Error(rid, LOGIN_FAILED, LOGIN_FAILED_MESSAGE))
            else:
                self._failed(member, rid, reply, "you are not logged in")

        self._link.script(
            "login",
            self.node,
            member.id,
            account.key,
            account.name,
            token,
            self.store.mail_cutoff(),
            ascii_keys(),
            join,
            done=done,
        )

    def _logged_in(self, member: Member, event: dict[str, Any]) -> None:
        """The login script ran: ``member`` is the account's user, its name taken (its
        rn or on event came just before); its waiting messages come next."""
        member.account = event["account"]
        self.stats.logins += 1
        pending = self._logins.pop(int(event.get("token") or 0), None)
        if pending is None or pending.member is not member:
            return
        reply: Event
        if pending.hello:
            reply = Welcome(
                pending.rid,
                member.name,
                member.addr,
                self.server_name,
                member.account,
                features=self.features,
            )
        else:
            reply = LoginOk(pending.rid, member.name)
        self.send(member, reply)

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
                self.send(member, PasswdOk(rid))
            else:
                message = "the password was not changed: the account no longer exists"
                self.send(member, Error(rid, UNAVAILABLE, message))

        changes = json.dumps({"hash": password_hash})
        self._link.script("account_update", account.key, changes, done=saved)

    # ------------------------------------------------------------ events from Redis

    def apply(self, event: dict[str, Any], own_stream: bool) -> None:
        """One event read from Redis, in the cluster's order."""
        kind = event["t"]
        local = self._local.get(int(event["mid"])) if event.get("node") == self.node else None
        if kind == "m":
            message = ChatMessage(
                event["name"],
                event["addr"],
                None,
                event["text"],
                event["ms"] / 1000,
                event["msgid"],
                event.get("account"),
            )
            self.stats.messages_delivered += self.broadcast(message)
            self.store.remember(message)
            if local is not None and self.unflushed_since is None:
                self.unflushed_since = local.last_active
        elif kind == "on":
            if local is not None and local.online:
                self._online(local, event["name"], back=bool(event.get("back")))
            self.broadcast(Presence(event["name"], event["addr"], online=True))
            if local is not None and local.online and not event.get("back"):
                self.replay_to(local)
        elif kind == "off":
            leaving = local if local is not None and local.id in self._leaving else None
            if leaving is not None:  # its own offline line is not for it, as on one node
                self._members.pop(leaving.id, None)
            self.broadcast(Presence(event["name"], event["addr"], online=False))
            if leaving is not None:
                self._left(leaving)
        elif kind == "rn":
            change = NameChange(event["old"], event["new"], event["addr"])
            if local is not None and local.online:
                self._forget_name(local)
                local.name = event["new"]
                self._by_name[name_key(local.name)] = local
                reason = event.get("reason")
                if reason is not None:
                    # Not asked for (an account took its name): only the user is told
                    # why; everyone else sees a rename.
                    self._broadcast_but(local, change)
                    self.send(local, NameChange(change.old, change.new, change.addr, reason))
                    return
            self.broadcast(change)
        elif kind == "ban":
            self.apply_ban(Ban.from_fields(event["ban"]))
        elif kind == "unban":
            self.bans.remove(event["target"])
        elif kind == "forget":
            self.store.forget([int(n) for n in event["ids"]])
        elif own_stream:
            self._apply_own(kind, event)

    def _apply_own(self, kind: str, event: dict[str, Any]) -> None:
        member = self._local.get(int(event["mid"]))
        if member is None or not member.online:
            return  # it left in the meantime
        if kind == "p":
            message = ChatMessage(
                event["name"],
                event["addr"],
                event["to"],
                event["text"],
                event["ms"] / 1000,
                event["msgid"],
                event.get("account"),
            )
            if event.get("kept"):
                # One that waited for the user to log in is shown as such (with its time),
                # owed like a reply, and leaves the mailbox once written (MAIL_DONE).
                written = partial(self._mail_written, name_key(message.to or ""), message.msgid)
                self.reply(member, KeptMessage(message), written)
                self.stats.messages_delivered += 1
            elif self.send(member, message):
                self.stats.messages_delivered += 1
            if self.unflushed_since is None:
                self.unflushed_since = member.last_active
        elif kind == "li":
            self._logged_in(member, event)
        elif kind == "mute":
            self._muted(member, event)
        elif kind == "k":
            self._kicked(member, event)

    def _mail_written(self, key: str, msgid: str | None) -> None:
        """A kept message was written to the account ``key``'s client: it leaves the
        mailbox, with those before it; one script for all written in one round."""
        if msgid is None:
            return
        pending = self._mail_written_upto
        if key not in pending:
            asyncio.get_running_loop().call_soon(self._forget_mail, key)
        pending[key] = max(msgid, pending.get(key, msgid))

    def _forget_mail(self, key: str) -> None:
        last = self._mail_written_upto.pop(key)

        def done(reply: Any) -> None:
            if isinstance(reply, BaseException):  # they come again at the next login
                log.warning(
                    "delivered messages could not be removed from the mailbox: %s",
                    reply,
                    extra={"event": "mailbox_delete_failed", "reason": str(reply)},
                )

        self._link.script("mail_done", key, last, done=done)

    def _muted(self, member: Member, event: dict[str, Any]) -> None:
        """An administrator's mute (until: seconds, '' while connected, '0' unmute),
        from this node's stream or held for it while it was silent (then it may have
        been put in force already: applying it again changes nothing)."""
        until = event.get("until") or ""
        if until == "0":
            member.muted_until = member.mute_reason = None
        else:
            self.mute(member, float(until) if until else None, event.get("reason") or None)

    def _kicked(self, member: Member, event: dict[str, Any]) -> None:
        bye = event.get("bye")
        if bye == REPLACED_BYE.reason:
            self.stats.replaced += 1
            self.remove(member, REPLACED_BYE)
            log.info(
                "%s (%s): replaced by a login to its account from elsewhere",
                member.name,
                member.addr,
                extra={"event": "replaced", "user": member.name, "addr": member.addr},
            )
            return
        if bye in (ACCOUNT_REMOVED_BYE.reason, DATA_LOST_BYE.reason):
            self.remove(
                member, DATA_LOST_BYE if bye == DATA_LOST_BYE.reason else ACCOUNT_REMOVED_BYE
            )
            return
        self.stats.admin_kicks += 1
        reason = event.get("reason") or None
        self.remove(member, kick_bye(reason))
        log.info(
            "%s (%s) kicked by an administrator: %s",
            member.name,
            member.addr,
            reason,
            extra={
                "event": "kicked",
                "user": member.name,
                "addr": member.addr,
                "reason": reason,
            },
        )

    def _broadcast_but(self, member: Member, event: Event) -> None:
        """:meth:`broadcast` to everyone but ``member``."""
        frame = Frame(event)
        slow = []
        for other in self._members.values():
            if other is member:
                continue
            data = frame.json if other.mode is Mode.JSON else frame.text
            if data and not other.outbox.put(data):
                slow.append(other)
        if slow:
            self._overflow(slow)

    def _online(self, member: Member, name: str, *, back: bool) -> None:
        old = member.name
        self._forget_name(member)
        member.name = name
        if not back:
            member.default_name = name
        self._members[member.id] = member
        self._by_name[name_key(name)] = member
        if back and old != name:
            self.send(member, NameChange(old, name, member.shown_addr, reason="conflict"))

    def messages_missed(self) -> None:
        notice = ServerNotice("messages_missed", MISSED)
        for member in list(self._members.values()):
            self.send(member, notice)

    def registered_again(
        self,
        renamed: dict[str, str],
        dropped: dict[str, dict[str, Any]],
        muted: dict[str, dict[str, Any]],
    ) -> None:
        """Redis registered these users again (mid -> name); their online events follow.
        The ``dropped`` ones (mid -> the kick event) go: logged-in users whose account
        was removed (or lost with Redis' data), or logged in to from elsewhere, and users
        an administrator kicked, while this node was cut off. The ``muted`` ones (mid ->
        the mute event) had a mute held for them: it is put in force."""
        for mid, name in renamed.items():
            member = self._local.get(int(mid))
            if member is not None and member.name != name:
                log.warning(
                    "cluster: %s (%s) lost its name while this node was cut off: now %s",
                    member.name,
                    member.addr,
                    name,
                    extra={"event": "name_conflict", "user": member.name, "new": name},
                )
        for mid, event in dropped.items():
            member = self._local.get(int(mid))
            if member is not None and member.online:
                self._kicked(member, event)
        for mid, event in muted.items():
            member = self._local.get(int(mid))
            if member is not None and member.online:
                self._muted(member, event)


def parse_users(reply: list[str]) -> list[dict[str, Any]]:
    """WHO's reply: everyone online in the cluster, in order of arrival."""
    users = [json.loads(raw) for raw in reply]
    users.sort(key=lambda u: int(u.get("arrival", 0)))
    return users


def _ignore(reply: Any) -> None:
    pass
