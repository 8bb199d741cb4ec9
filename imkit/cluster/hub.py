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
  connections are turned away; connected users stay.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from imkit.accounts import Account
from imkit.cluster import UNREACHABLE
from imkit.cluster.link import ClusterLink
from imkit.hub import Hub, Member, kick_bye
from imkit.moderation import Ban
from imkit.names import name_key, name_problem
from imkit.protocol import (
    INVALID_NAME,
    NAME_TAKEN,
    NO_SUCH_USER,
    UNAVAILABLE,
    Bye,
    ChatMessage,
    Command,
    Error,
    Mode,
    NameChange,
    Ok,
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

log = logging.getLogger("imkit.cluster")

# Default names tried for a new connection: ADDR, ADDR#2 ... ADDR#DEFAULT_NAMES. Two
# connections share an address only across machines behind one NAT port, or for a
# moment when the kernel reuses a port: a handful is plenty.
DEFAULT_NAMES = 16

UNAVAILABLE_MESSAGE = f"the chat is unavailable: {UNREACHABLE}"
UNAVAILABLE_BYE = Bye("unavailable", UNAVAILABLE_MESSAGE)
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


@dataclass(eq=False)
class ClusterHub(Hub):
    """A hub whose chat spans every node on one Redis; see the module docstring."""

    link: ClusterLink | None = None
    cluster_wide = True
    _local: dict[int, Member] = field(default_factory=dict)  # connected here, by id
    _undecided: set[int] = field(default_factory=set)  # whose mode Redis has not been told

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
        """Ask Redis for a default name; online when its own online event comes back."""
        assert account is None, "a cluster node logs in through Redis"
        link = self._link
        if link.problem is not None:
            self.stats.refused_unavailable += 1
            member.outbox.close(member.wire.encode(UNAVAILABLE_BYE))
            return
        member.online = True  # its commands are taken; it receives from its online line
        shown = member.shown_addr
        member.default_name = shown
        self._local[member.id] = member
        if member.mode is Mode.UNDECIDED:
            self._undecided.add(member.id)
        since = str(member.connected_wall)

        def joined(reply: Any) -> None:
            if isinstance(reply, BaseException) or reply[0] != "ok":
                if member.online:
                    self.stats.refused_unavailable += 1
                    self.remove(member, UNAVAILABLE_BYE)

        hidden = self.hide_addresses
        link.script(
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

    def leave(self, member: Member) -> None:
        if not member.online:
            return
        member.online = False
        self._members.pop(member.id, None)
        self._local.pop(member.id, None)
        self._undecided.discard(member.id)
        self._forget_name(member)
        link = self._link
        if link.problem is None:
            # Announced by Redis; when it cannot be reached, the next registration drops
            # this user, which announces it then.
            link.script("leave", self.node, member.id, done=_ignore)

    def local_members(self) -> list[Member]:
        return [member for member in self._local.values() if member.online]

    def current_members(self) -> list[dict[str, Any]]:
        """This node's users, for registering them again (in order of arrival)."""
        result = []
        for member in self._local.values():
            if not member.online:
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
        self.send(member, Error(rid, UNAVAILABLE, UNAVAILABLE_MESSAGE))
        return True

    def _failed(self, member: Member, rid: RequestId, reply: Any, what: str) -> bool:
        """Tell ``member`` when ``reply`` is a failure; True when it was one."""
        if isinstance(reply, BaseException):
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
            if member.online and member.wire.mode is Mode.JSON:
                self.send(member, Ok(rid, reply[1]))

        store = self.store
        cutoff = store.cutoff() // 1000 if store.retain_days > 0 else 0
        self._link.script("publish", self.node, member.id, command.text, cutoff, done=published)

    def _private(self, member: Member, command: PrivateMessage) -> None:
        if self._refuse_unavailable(member, command.id):
            return
        rid, to = command.id, command.to

        def sent(reply: Any) -> None:
            if self._failed(member, rid, reply, "the message may not have been sent"):
                return
            if not member.online:
                return
            if reply[0] == "none":
                message = f"no user named {to!r} is online"
                self.send(member, Error(rid, NO_SUCH_USER, message, to))
                return
            self.stats.private_received += 1
            if member.wire.mode is Mode.JSON:
                self.send(member, Ok(rid, reply[1]))

        timeout_ms = int(self._link.node_timeout * 1000)
        self._link.script(
            "private", self.node, member.id, name_key(to), command.text, timeout_ms, done=sent
        )

    def _who(self, member: Member, rid: RequestId) -> None:
        if self._refuse_unavailable(member, rid):
            return

        def listed(reply: Any) -> None:
            if self._failed(member, rid, reply, "try again"):
                return
            if member.online:
                users = tuple(UserInfo(u["name"], u["addr"]) for u in parse_users(reply))
                self.send(member, UserList(rid, users))

        self._link.script("who", done=listed)

    def _rename_request(self, member: Member, rid: RequestId, new: str, *, hello: bool) -> None:
        problem = name_problem(new)
        if problem is not None:
            self.send(member, Error(rid, INVALID_NAME, f"invalid name {new!r}: {problem}", new))
            return
        if self._refuse_unavailable(member, rid):
            return

        def renamed(reply: Any) -> None:
            if self._failed(member, rid, reply, "the name was not changed"):
                return
            if not member.online:
                return
            if reply[0] == "taken":
                self.send(member, Error(rid, NAME_TAKEN, f"the name {new!r} is taken", new))
            elif hello:
                self.send(member, Welcome(rid, new, member.addr, self.server_name))
            else:
                self.send(member, RenameOk(rid, new))

        self._link.script("rename", self.node, member.id, new, name_key(new), done=renamed)

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
            self.broadcast(Presence(event["name"], event["addr"], online=False))
        elif kind == "rn":
            if local is not None and local.online:
                self._forget_name(local)
                local.name = event["new"]
                self._by_name[name_key(local.name)] = local
            self.broadcast(NameChange(event["old"], event["new"], event["addr"]))
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
            )
            if self.send(member, message):
                self.stats.messages_delivered += 1
            if self.unflushed_since is None:
                self.unflushed_since = member.last_active
        elif kind == "mute":
            until = event.get("until") or ""
            if until == "0":
                member.muted_until = member.mute_reason = None
            else:
                self.mute(member, float(until) if until else None, event.get("reason") or None)
        elif kind == "k":
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

    def registered_again(self, renamed: dict[str, str]) -> None:
        """Redis registered these users again (mid -> name); their online events follow."""
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


def parse_users(reply: list[str]) -> list[dict[str, Any]]:
    """WHO's reply: everyone online in the cluster, in order of arrival."""
    users = [json.loads(raw) for raw in reply]
    users.sort(key=lambda u: int(u.get("arrival", 0)))
    return users


def _ignore(reply: Any) -> None:
    pass
