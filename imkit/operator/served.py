"""What the admin socket's answers need of the server they serve, and the shape of
one request's handler (:data:`Handler`; imkit.operator.answers holds the table)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from imkit.hub.core import Hub
from imkit.hub.credentials import Logins
from imkit.rules.hooks import DeliveryStatus, Hook, OutgoingHook
from imkit.transport.backpressure import Congestion


class HookService(Protocol):
    """What the hook requests need of the server's hooks (imkit.server.hooks.HookInbox):
    where they are served, outgoing hooks' deliveries, the hooks as the store has them."""

    urls: Callable[[], list[str]]
    status: Callable[[OutgoingHook], DeliveryStatus]

    async def current(self, *, fresh: float = ...) -> dict[str, Hook] | str: ...
    async def changed(self) -> None: ...


class Administered(Protocol):
    """What the admin socket needs of the server it serves (imkit.server.Server)."""

    hub: Hub
    logins: Logins
    started_at: float
    congestion: Congestion

    @property
    def hooks(self) -> HookService: ...

    @property
    def connections_now(self) -> int: ...


# One request type's answer: (the server, the request, who asked) -> the reply.
Handler = Callable[[Administered, dict[str, Any], str], Awaitable[dict[str, Any]]]


def error_reply(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}
