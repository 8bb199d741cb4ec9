"""What a cluster node's Redis event streams bring back, applied to its hub
(:class:`ClusterEvents`, the link's :class:`~imkit.cluster.link.Events`): public
messages, presence lines, renames and account changes (account-notify) from ``P:log``
in the cluster's one order, and from this node's own stream the private messages,
logins, mutes and kicks of its users.
Each is applied atomically, in the order every node sees them.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from imkit.cluster.edits import apply_amend, apply_forget
from imkit.cluster.people import about
from imkit.cluster.terms import MISSED, default_candidates, event_message
from imkit.hub.core import Hub
from imkit.hub.members import (
    ACCOUNT_REMOVED_BYE,
    DATA_LOST_BYE,
    REPLACED_BYE,
    Member,
    kick_bye,
)
from imkit.hub.rooms import fan_out, lobby_and_rooms, tell_irc
from imkit.protocol import (
    Event,
    KeptMessage,
    LoginOk,
    NameChange,
    Presence,
    ServerNotice,
    Welcome,
)
from imkit.protocol.queries import AccountChanged
from imkit.rules.bans import Ban
from imkit.rules.names import name_key

if TYPE_CHECKING:
    from imkit.cluster.backend import RedisBackend

log = logging.getLogger("imkit.cluster")


class ClusterEvents:
    """Events read from Redis, applied to ``hub`` for ``backend``'s users."""

    def __init__(self, backend: RedisBackend, hub: Hub) -> None:
        self.backend = backend
        self.hub = hub
        # Account key -> the newest kept message written to its client this round, until
        # MAIL_DONE takes it and those before it out of the mailbox (_mail_written).
        self._mail_written_upto: dict[str, str] = {}

    def current_members(self) -> list[dict[str, Any]]:
        """This node's users, for registering them again (in order of arrival)."""
        result = []
        for member in self.backend.local.values():
            if not member.online or member.id in self.backend.leaving:  # released already
                continue
            result.append(
                {
                    "mid": str(member.id),
                    "name": member.name,
                    "key": name_key(member.name),
                    "addr": member.shown_addr,
                    "real": member.addr if self.hub.hide_addresses else "",
                    "mode": member.mode.value,
                    "since": str(member.connected_wall),
                    "defaults": default_candidates(member.shown_addr),
                    "account": member.account or "",
                    "rooms": [[key, room.name] for key, room in member.rooms.items()],
                    "lobby": member.in_lobby,
                    "about": about(member),
                }
            )
        return result

    def _logged_in(self, member: Member, event: dict[str, Any]) -> None:
        """The login script ran: ``member`` is the account's user, its name taken (its
        rn or on event came just before); its waiting messages come next."""
        member.account = event["account"]
        self.hub.stats.logins += 1
        pending = self.backend.logins.pop(int(event.get("token") or 0), None)
        if pending is None or pending.member is not member:
            return
        reply: Event
        if pending.hello:
            reply = Welcome(
                pending.rid,
                member.name,
                member.addr,
                self.hub.server_name,
                member.account,
                features=self.hub.features,
            )
        else:
            reply = LoginOk(pending.rid, member.name)
        self.hub.send(member, reply)
        self.backend.answered(pending)  # what its client was answered meanwhile
        self.backend.rejoin_rooms(member, name_key(member.account))

    # ------------------------------------------------------------ events from Redis

    def apply(self, event: dict[str, Any], own_stream: bool) -> None:
        """One event read from Redis, in the cluster's order."""
        kind = event["t"]
        if "room" in event:  # a room's stream (imkit.cluster.rooms)
            self.backend.room_event(event)
            return
        local = (
            self.backend.local.get(int(event["mid"]))
            if event.get("node") == self.backend.node
            else None
        )
        if kind == "m":
            message = event_message(event, room=self.hub.lobby, lobby=True)
            self.hub.stats.messages_delivered += self.hub.broadcast(message)
            self.hub.store.remember(message)
            if local is not None and self.hub.unflushed_since is None:
                self.hub.unflushed_since = local.last_active
        elif kind == "on":
            if local is not None and local.online:
                self._online(local, event["name"], back=bool(event.get("back")))
            if event.get("lobby") is not False:  # an IRC user starts outside the lobby
                self.hub.broadcast(Presence(event["name"], event["addr"], online=True))
            if local is not None and local.online and not event.get("back"):
                self.hub.replay_to(local)
        elif kind == "off":
            leaving = local if local is not None and local.id in self.backend.leaving else None
            if leaving is not None:  # its own offline line is not for it, as on one node
                self.hub._members.pop(leaving.id, None)
                self.backend.leave_rooms_here(leaving)
            # the lobby and the members here of its rooms (release() took it out of them)
            offline = Presence(event["name"], event["addr"], online=False)
            self.hub.tell(offline, self.backend.rooms_of(event), event.get("lobby") is not False)
            if leaving is not None:
                self.backend.left(leaving)
        elif kind == "rn":
            change = NameChange(event["old"], event["new"], event["addr"])
            if local is not None and local.online:
                self.hub._forget_name(local)
                local.name = event["new"]
                self.hub._by_name[name_key(local.name)] = local
                reason = event.get("reason")
                if reason is not None:
                    # Not asked for (an account took its name): only the user is told
                    # why; everyone else sees a rename.
                    self._tell_but(local, change, event)
                    self.hub.send(local, NameChange(change.old, change.new, change.addr, reason))
                    return
            self.hub.tell(change, self.backend.rooms_of(event), event.get("lobby") is not False)
        elif kind == "ac":  # a user online logged in: account-notify
            changed = AccountChanged(event["name"], event["addr"], event.get("account") or None)
            lobby = event.get("lobby") is not False
            tell_irc(self.hub, changed, self.backend.rooms_of(event), lobby=lobby)
        elif kind in ("lj", "lp"):
            self.backend.lobby_event(event)
        elif kind == "ban":
            self.hub.apply_ban(Ban.from_fields(event["ban"]))
        elif kind == "unban":
            self.hub.bans.remove(event["target"])
        elif kind == "forget":
            apply_forget(self.hub, [int(n) for n in event["ids"]])
        elif kind == "amend":
            apply_amend(self.hub, event, None)
        elif own_stream:
            self._apply_own(kind, event)

    def _apply_own(self, kind: str, event: dict[str, Any]) -> None:
        member = self.backend.local.get(int(event["mid"]))
        if member is None or not member.online:
            return  # it left in the meantime
        if kind == "p":
            message = event_message(event, to=event["to"])
            if event.get("kept"):
                # One that waited for the user to log in is shown as such (with its time),
                # owed like a reply, and leaves the mailbox once written (MAIL_DONE).
                written = partial(self._mail_written, name_key(message.to or ""), message.msgid)
                self.hub.reply(member, KeptMessage(message), written)
                self.hub.stats.messages_delivered += 1
            elif self.hub.send(member, message):
                self.hub.stats.messages_delivered += 1
            if self.hub.unflushed_since is None:
                self.hub.unflushed_since = member.last_active
        elif kind == "li":
            self._logged_in(member, event)
        elif kind == "inv":
            self.backend.invited(member, event)
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

        self.backend.link.script("mail_done", key, last, done=done)

    def _muted(self, member: Member, event: dict[str, Any]) -> None:
        """An administrator's mute (until: seconds, '' while connected, '0' unmute),
        from this node's stream or held for it while it was silent (then it may have
        been put in force already: applying it again changes nothing)."""
        until = event.get("until") or ""
        if until == "0":
            member.muted_until = member.mute_reason = None
        else:
            self.hub.mute(member, float(until) if until else None, event.get("reason") or None)

    def _kicked(self, member: Member, event: dict[str, Any]) -> None:
        bye = event.get("bye")
        if bye == REPLACED_BYE.reason:
            self.hub.stats.replaced += 1
            self.hub.remove(member, REPLACED_BYE)
            log.info(
                "%s (%s): replaced by a login to its account from elsewhere",
                member.name,
                member.addr,
                extra={"event": "replaced", "user": member.name, "addr": member.addr},
            )
            return
        if bye in (ACCOUNT_REMOVED_BYE.reason, DATA_LOST_BYE.reason):
            self.hub.remove(
                member, DATA_LOST_BYE if bye == DATA_LOST_BYE.reason else ACCOUNT_REMOVED_BYE
            )
            return
        self.hub.stats.admin_kicks += 1
        reason = event.get("reason") or None
        self.hub.remove(member, kick_bye(reason))
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

    def _tell_but(self, member: Member, event: Event, raw: dict[str, Any]) -> None:
        """:meth:`Hub.tell` to everyone but ``member``."""
        rooms, lobby = self.backend.rooms_of(raw), raw.get("lobby") is not False
        recipients = lobby_and_rooms(self.hub, rooms, lobby=lobby)
        fan_out(self.hub, [m for m in recipients if m is not member], event)

    def _online(self, member: Member, name: str, *, back: bool) -> None:
        old = member.name
        self.hub._forget_name(member)
        member.name = name
        if not back:
            member.default_name = name
        self.hub._members[member.id] = member
        self.hub._by_name[name_key(name)] = member
        if back and old != name:
            self.hub.send(member, NameChange(old, name, member.shown_addr, reason="conflict"))

    def messages_missed(self) -> None:
        notice = ServerNotice("messages_missed", MISSED)
        for member in list(self.hub._members.values()):
            self.hub.send(member, notice)

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
            member = self.backend.local.get(int(mid))
            if member is not None and member.name != name:
                log.warning(
                    "cluster: %s (%s) lost its name while this node was cut off: now %s",
                    member.name,
                    member.addr,
                    name,
                    extra={"event": "name_conflict", "user": member.name, "new": name},
                )
        for mid, event in dropped.items():
            member = self.backend.local.get(int(mid))
            if member is not None and member.online:
                self._kicked(member, event)
        for mid, event in muted.items():
            member = self.backend.local.get(int(mid))
            if member is not None and member.online:
                self._muted(member, event)
