"""The client library's room requests (docs/rooms.md): :class:`RoomRequests`, a part of
:class:`imkit.client.library.Client` kept in a module of its own.

A client is in the lobby from its hello. :meth:`RoomRequests.join` enters another room
(and makes it, when nobody is in it yet); messages, ``who`` and ``history`` take a
``room`` in :class:`~imkit.client.library.Client` itself. The client keeps the rooms it
is in (:attr:`RoomRequests.rooms_joined`): joins, parts, kicks, and the rooms a
logged-in account is put back in at login.

Every refusal raises :class:`~imkit.errors.ServerError` with the server's code:
``no_such_room``, ``not_in_room``, ``bad_room_name``, ``too_many_rooms``,
``banned_from_room``, ``invite_only``, ``bad_key``, ``room_full``,
``not_room_operator``, ``muted``, ``no_such_user``, ``bad_request``.
"""

from __future__ import annotations

from typing import TypeVar

from imkit.protocol import (
    Command,
    Event,
    Invite,
    Joined,
    JoinRoom,
    ListRooms,
    ModesInfo,
    PartRoom,
    RoomInfo,
    RoomKick,
    RoomList,
    RoomMode,
    RoomOk,
    Topic,
    TopicInfo,
)
from imkit.protocol.room_requests import RoomRequestError, parse_changes
from imkit.rules.rooms import room_key

R = TypeVar("R", bound=Event)


class RoomRequests:
    """The room requests of a client; :class:`~imkit.client.library.Client` gives them
    their connection (``_request``, ``_new_id``)."""

    def __init__(self) -> None:
        self._joined: dict[str, str] = {}  # room_key -> the room's name as it was told

    # ------------------------------------------------------------------- state

    @property
    def rooms_joined(self) -> list[str]:
        """The rooms this client is in besides the lobby, in the order it joined them
        (their names as the server spells them)."""
        return list(self._joined.values())

    def in_room(self, room: str) -> bool:
        """True when this client joined ``room`` (compared as the server compares room
        names: ``#Builds`` is ``#builds``). The lobby counts only once joined again."""
        return room_key(room) in self._joined

    def _entered(self, room: str) -> None:
        self._joined[room_key(room)] = room

    def _left(self, room: str) -> None:
        self._joined.pop(room_key(room), None)

    # ---------------------------------------------------------------- requests

    async def join(self, room: str, key: str | None = None) -> Joined:
        """Join ``room`` (``#name``), with its ``key`` when it has one; a room nobody is
        in yet is made, and we are its operator. Returns the :class:`Joined` reply:
        ``room`` (the server's spelling), ``topic``, ``modes``, ``members`` (us
        included), ``operator``. Raises ServerError: ``banned_from_room``,
        ``invite_only``, ``bad_key``, ``room_full``, ``too_many_rooms``,
        ``no_such_room`` (the server makes rooms only for accounts or operators),
        ``bad_room_name``."""
        reply = await self._request(JoinRoom(id=self._new_id(), room=room, key=key), Joined)
        self._entered(reply.room or room)
        return reply

    async def part(self, room: str, reason: str | None = None) -> None:
        """Leave ``room``; its members are told, with ``reason``. Raises ServerError
        (``not_in_room``)."""
        await self._request(PartRoom(id=self._new_id(), room=room, reason=reason), RoomOk)
        self._left(room)

    async def rooms(self) -> list[RoomInfo]:
        """The rooms we may see (every one but the secret rooms we are not in), the
        lobby among them: ``RoomInfo(room, members, topic)``."""
        reply = await self._request(ListRooms(id=self._new_id()), RoomList)
        return list(reply.rooms)

    async def topic(self, room: str, text: str | None = None) -> str | None:
        """``room``'s topic (None: it has none); with ``text``, set it first (``""``
        clears it) and return the new one. Raises ServerError: ``not_room_operator``
        (the room is ``+t``), ``not_in_room``, ``no_such_room``."""
        request = Topic(id=self._new_id(), room=room, topic=text)
        if text is None:
            return (await self._request(request, TopicInfo)).topic
        reply = await self._reply(request)
        if isinstance(reply, TopicInfo):
            return reply.topic
        return text or None

    async def kick(self, room: str, name: str, reason: str | None = None) -> None:
        """As the room's operator, take the user ``name`` out of ``room``."""
        command = RoomKick(id=self._new_id(), room=room, name=name, reason=reason)
        await self._request(command, RoomOk)

    async def invite(self, room: str, name: str) -> None:
        """As the room's operator, let the user ``name`` into an invite-only ``room``."""
        await self._request(Invite(id=self._new_id(), room=room, name=name), RoomOk)

    async def modes(self, room: str) -> ModesInfo:
        """``room``'s settings: ``.modes`` (``+ntl``) and ``.args`` (``["20"]``)."""
        return await self._request(RoomMode(id=self._new_id(), room=room), ModesInfo)

    async def bans(self, room: str) -> list[str]:
        """``room``'s ban masks."""
        return await self._masks(room, "b")

    async def ban_exceptions(self, room: str) -> list[str]:
        """``room``'s ban exceptions (+e): masks a ban does not keep out."""
        return await self._masks(room, "e")

    async def invite_exceptions(self, room: str) -> list[str]:
        """``room``'s invite exceptions (+I): masks that pass +i without an invite."""
        return await self._masks(room, "I")

    async def _masks(self, room: str, listing: str) -> list[str]:
        command = RoomMode(id=self._new_id(), room=room, listing=listing)
        return list((await self._request(command, ModesInfo)).masks or ())

    async def mode(self, room: str, changes: str, *args: str) -> None:
        """As the room's operator, change its settings as IRC's MODE does:
        ``mode("#r", "+o", "sam")``, ``mode("#r", "+kl-m", "secret", "20")``. Raises
        ValueError for changes that do not parse (before anything is sent)."""
        try:
            parsed, listing = parse_changes(changes, list(args))
        except RoomRequestError as error:
            raise ValueError(str(error)) from None
        if listing:
            raise ValueError(f"+{listing} without a mask asks for a list: use bans() etc.")
        await self._request(RoomMode(id=self._new_id(), room=room, changes=parsed), RoomOk)

    # ------------------------------------------------ given by the Client itself

    def _new_id(self) -> int:
        raise NotImplementedError  # pragma: no cover - the Client's

    async def _reply(self, command: Command) -> Event:
        raise NotImplementedError  # pragma: no cover - the Client's

    async def _request(self, command: Command, expected: type[R]) -> R:
        raise NotImplementedError  # pragma: no cover - the Client's
