"""``POST /hooks/KEY``: an incoming webhook's request as the web port reads it
(docs/integrations.md, "Incoming webhooks").

This module reads the request with h11 (its body bounded by :data:`MAX_BODY`: 413 past
it, without reading further) and hands the key, the body and its content type to a
:class:`HookReceiver` (the server's :class:`~imkit.server.hooks.HookInbox`), whose
:class:`HookReply` becomes the response. The key is part of the path: it is never
logged here, and nothing in the web port logs request paths.
"""

from __future__ import annotations

from typing import Protocol

import h11

from imkit.rules.hook_payloads import MAX_BODY, HookReply
from imkit.transport.links import Link

HOOKS_PREFIX = b"/hooks/"
# Characters of a key (secrets.token_urlsafe): anything else is no key.
_KEY_CHARACTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_MAX_KEY = 100


class HookReceiver(Protocol):
    """What takes a hook's POST (the server's hook inbox)."""

    async def receive(self, key: str, body: bytes, content_type: str | None) -> HookReply: ...


def is_hook_path(target: bytes) -> bool:
    """Whether a request's target is under ``/hooks/``."""
    return target.split(b"?", 1)[0].startswith(HOOKS_PREFIX)


def hook_key(target: bytes) -> str | None:
    """The key in ``/hooks/KEY`` (a query string ignored); None when it is no key."""
    key = target.split(b"?", 1)[0][len(HOOKS_PREFIX) :]
    if not key or len(key) > _MAX_KEY or not set(key) <= _KEY_CHARACTERS:
        return None
    return key.decode("ascii")


def declared_length(request: h11.Request) -> int | None:
    """The request's Content-Length (None: none, or chunked)."""
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)  # h11 checked it is a number
    return None


async def read_body(link: Link, conn: h11.Connection, limit: int = MAX_BODY) -> bytes | None:
    """The request's body, read to its end; None as soon as it passes ``limit`` bytes
    (the rest is not read: the connection is closed after the 413)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await link.receive())
            continue
        if isinstance(event, h11.Data):
            size += len(event.data)
            if size > limit:
                return None
            chunks.append(bytes(event.data))
            continue
        if isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        raise h11.RemoteProtocolError("the request ended before its body", 400)
