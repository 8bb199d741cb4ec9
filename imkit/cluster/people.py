"""IRC's WHOIS, WHO, ISON and USERHOST on a cluster node, over the whole cluster
(docs/irc.md): the node's :meth:`RedisBackend.people` and :meth:`RedisBackend.describe`.

Who someone is lives in its connection's record in Redis (``P:conns``): its name,
address, account, rooms and lobby flag, and what an IRC client says of itself
(:func:`about`: ident, real name, away, user modes), written when it comes online (the
join, login and register scripts) and when it changes (``describe.lua``). One
``people.lua`` call answers a request from there, with each user's rooms and its
standing in them (for a WHO of everyone or of the lobby: every record as it is and each
room once, decoded and ordered here rather than in Redis, which runs a script alone); no
other node is asked (a dead node would leave the request unanswered). The reply comes
when Redis answers, in the order of the node's other requests, like every request that
needs Redis. Only the idle time is the user's own
node's: a user of another node has none (WHOIS then has no ``317``).

While Redis cannot be used (or the call fails), the request is answered from this
node's own users (:func:`imkit.hub.queries.local_people`), as ``imkit who`` falls back
on them: an IRC client always gets its end of list.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from imkit.cluster.rooms import as_list
from imkit.cluster.terms import _ignore
from imkit.hub.queries import local_people
from imkit.protocol.queries import People, Person, Whois
from imkit.rules.names import name_key
from imkit.rules.rooms import room_key

if TYPE_CHECKING:
    from imkit.cluster.backend import RedisBackend
    from imkit.hub.members import Member


def about(member: Member) -> dict[str, Any] | None:
    """What ``member`` says of itself, for its record in Redis (claim's ``about`` in
    prelude.lua): ``lobby`` False when it is outside the lobby (an IRC user starts
    there, so that its online event is told to no lobby), and an IRC client's ident,
    real name, away message and user modes ("" for none). None: nothing to add."""
    fields: dict[str, Any] = {}
    if not member.in_lobby:
        fields["lobby"] = False
    if member.ident is not None or member.realname is not None or member.away or member.modes:
        fields.update(described(member))
    return fields or None


def described(member: Member) -> dict[str, str]:
    return {
        "ident": member.ident or "",
        "realname": member.realname or "",
        "away": member.away or "",
        "modes": member.modes,
    }


def describe(node: RedisBackend, member: Member) -> None:
    """Its away message, real name or user modes changed: into its record (no reply;
    while Redis cannot be reached it is not written, and registering the node's users
    again writes it then)."""
    if node.link.problem is None and member.online:
        fields = json.dumps(described(member))
        node.link.script("describe", node.node, member.id, fields, done=_ignore)


def people(node: RedisBackend, member: Member, command: Whois) -> None:
    """Answer ``command`` for the whole cluster (see the module docstring)."""
    hub, link = node.hub, node.link
    args: list[str] = []
    if command.room is None:
        what = "names"
        args = [name_key(name) for name in command.names]
    elif command.room == "*":
        what = "all"
    elif room_key(command.room) == hub.lobby_key:
        what = "lobby"
    else:
        what = "room"
        args = [room_key(command.room)]
    if link.problem is not None:
        local_people(hub, member, command)
        return

    def found(reply: Any) -> None:
        if not member.online:
            return
        if isinstance(reply, BaseException) or (isinstance(reply, list) and reply[:1] == ["gone"]):
            local_people(hub, member, command)  # failed (gone: it is leaving)
            return
        now = time.monotonic()
        answer: dict[str, Any] = {}
        if isinstance(reply, list):  # everyone, or the lobby: records read here
            persons = _everyone(node, reply, now, lobby=what == "lobby")
        else:
            answer = json.loads(reply)
            persons = tuple(
                _person(node, p.get("c", {}), as_list(p.get("rooms")), now)
                for p in as_list(answer.get("people"))
            )
        if command.room is None:
            hub.reply(member, People(command.id, command.names, persons))
            return
        name = {"all": "*", "lobby": hub.lobby}.get(what) or answer.get("room") or command.room
        hub.reply(member, People(command.id, (command.room,), persons, name))

    link.script("people", node.node, member.id, what, *args, done=found)


def _everyone(
    node: RedisBackend, reply: list[Any], now: float, *, lobby: bool
) -> tuple[Person, ...]:
    """Everyone online (``lobby``: in the lobby), in order of arrival, from people.lua's
    reply for them: the rooms (key: name, secret, the asker in it), then the records."""
    rooms: dict[str, list[Any]] = json.loads(reply[0]).get("rooms") or {}
    records = [json.loads(raw) for raw in reply[1:]]
    if lobby:
        records = [r for r in records if r.get("lobby") is not False]
    records.sort(key=lambda r: int(r.get("arrival") or 0))
    return tuple(
        _person(
            node,
            record,
            [
                [*rooms[key][:1], "", *rooms[key][1:]]
                for key in as_list(record.get("rooms"))
                if key in rooms
            ],
            now,
        )
        for record in records
    )


def _person(node: RedisBackend, record: dict[str, Any], rooms: list[Any], now: float) -> Person:
    """A :class:`Person` from a conn's record and its rooms (people.lua); its idle time
    when it is a user of this node."""
    shown = [node.hub.lobby] if record.get("lobby") is not False else []
    for name, standing, secret, shared in rooms:
        if int(secret) and not int(shared):
            continue  # a secret room the asker is not in
        shown.append(("@" if "o" in standing else "") + ("+" if "v" in standing else "") + name)
    idle = None
    if record.get("node") == node.node:
        member = node.local.get(int(record.get("mid") or 0))
        if member is not None:
            idle = max(0.0, now - member.last_active)
    return Person(
        record["name"],
        record["addr"],
        record.get("account"),
        record.get("ident") or None,
        record.get("realname") or None,
        record.get("away") or None,
        idle,
        float(record.get("since") or 0),
        tuple(shown),
        record.get("modes") or "",
    )
