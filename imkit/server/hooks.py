"""The server's webhooks (docs/integrations.md): :class:`HookInbox`, which answers
incoming hooks' POSTs (the web port's :class:`~imkit.web.hooks.HookReceiver`) and is
the one way a message is posted into a room as a hook (:meth:`HookInbox.post_as_hook`,
for outgoing hooks' replies too).

A POST is answered in this order: the key (404 when no incoming hook has it; compared
in constant time with each hook's digest), the hook's rate limit (429 with
Retry-After), the body (400, 415: :mod:`imkit.rules.hook_payloads`), then the message,
posted through the backend's ``hook_publish`` (one server: the same publishing as a
user's message; a cluster: one script that stores it in Redis) and answered 200 only
once it is stored, 404 when the hook's room is gone, 503 when the store or Redis cannot
take it (or did not answer within :data:`POST_TIMEOUT`).

The hooks themselves are the store's (:meth:`~imkit.store.Store.hooks`: memory, the
SQLite file, or a cluster's Redis hash ``P:hooks``). They are read again when the copy
here is older than :data:`HOOKS_FRESH` seconds, or on an unknown key (at most once every
:data:`MISS_FRESH` seconds): a hook added or removed on another cluster node is seen here
within a second; one added or removed through this node's admin socket at once
(:meth:`HookInbox.changed`). The outgoing delivery engine
(:class:`~imkit.server.outgoing_hooks.OutgoingDeliveries`) asks for a room's outgoing
hooks on every message, without awaiting: :meth:`HookInbox.outgoing` answers from the
copy, which :meth:`HookInbox.keep_fresh` reads again every :data:`HOOKS_FRESH` seconds
(so an outgoing hook added on any node delivers within about a second).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from functools import partial

import anyio

from imkit.hub.core import Hub
from imkit.rules.hook_payloads import HookReply, PayloadProblem, clip, parse_body, payload_of
from imkit.rules.hooks import (
    NO_ROOM,
    POSTED,
    DeliveryStatus,
    Hook,
    IncomingHook,
    OutgoingHook,
    PostOutcome,
    chosen_name,
    key_digest,
)
from imkit.store.base import awaited

log = logging.getLogger("imkit.server")

# The copy of the hooks is read again after this many seconds...
HOOKS_FRESH = 1.0
# ... or, for a key it does not know, after this many (a hook just added elsewhere).
MISS_FRESH = 0.2
# A post's store (or Redis) gets this long to say the message is stored: 503 after.
POST_TIMEOUT = 5.0
# Each incoming hook's rate limit: a burst of this many POSTs, then one a second.
RATE_BURST = 30
RATE_PER_SECOND = 1.0


def _matching(hooks: dict[str, Hook], key: str) -> IncomingHook | None:
    """The incoming hook of ``hooks`` whose key is ``key``, or None: the key's digest,
    made once, compared with every hook's in constant time."""
    digest, found = key_digest(key), None
    for hook in hooks.values():
        if isinstance(hook, IncomingHook) and hmac.compare_digest(digest, hook.digest):
            found = hook
    return found


def no_status(hook: OutgoingHook) -> DeliveryStatus:
    """An outgoing hook's deliveries while nothing delivers them: all zeros."""
    return DeliveryStatus()


class HookRate:
    """Each hook's token bucket (by name key): :data:`RATE_BURST` at once, refilled at
    :data:`RATE_PER_SECOND`."""

    def __init__(self, burst: int = RATE_BURST, per_second: float = RATE_PER_SECOND) -> None:
        self.burst, self.per_second = burst, per_second
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)

    def take(self, key: str, now: float) -> int | None:
        """None when the hook may post now (a token taken); else the whole seconds to
        wait (Retry-After)."""
        tokens, when = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) * self.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return max(1, int((1.0 - tokens) / self.per_second + 0.999))
        self._buckets[key] = (tokens - 1.0, now)
        return None


class HookInbox:
    """Incoming hooks' POSTs, and posting as a hook; see the module docstring.

    ``status`` tells an outgoing hook's :class:`DeliveryStatus` (``imkit hook list``):
    all zeros until the server sets the delivery engine's."""

    def __init__(self, hub: Hub, max_line: int) -> None:
        self.hub = hub
        self.max_line = max_line  # a posted text is cut to --max-line
        # The base URLs hooks are served at (the web port's, once bound: WebPort.hook_urls).
        self.urls: Callable[[], list[str]] = list
        self.status: Callable[[OutgoingHook], DeliveryStatus] = no_status
        self.rate = HookRate()
        self._hooks: dict[str, Hook] = {}
        self._outgoing: dict[str, list[OutgoingHook]] = {}  # by room key, from _hooks
        self._read_at: float | None = None  # monotonic; None: never read
        self._missed_at: float | None = None  # the last read for an unknown key

    # ------------------------------------------------------------- the hooks

    async def current(self, *, fresh: float = HOOKS_FRESH) -> dict[str, Hook] | str:
        """The hooks by name key, read from the store when the copy here is older than
        ``fresh`` seconds; or why they cannot be read."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= fresh:
            try:
                found = await awaited(self.hub.store.hooks, POST_TIMEOUT)
            except TimeoutError:
                return "the store did not answer"
            if isinstance(found, str):
                return found
            self._hooks, self._read_at = found, time.monotonic()
            self._outgoing = {}
            for hook in found.values():
                if isinstance(hook, OutgoingHook):
                    self._outgoing.setdefault(hook.room, []).append(hook)
        return self._hooks

    async def keep_fresh(self) -> None:
        """Read the hooks again every :data:`HOOKS_FRESH` seconds, for :meth:`outgoing`
        (run by the server until it stops)."""
        while True:
            await self.current()
            await anyio.sleep(HOOKS_FRESH)

    def outgoing(self, room: str) -> list[OutgoingHook]:
        """The outgoing hooks of the room whose key is ``room``, as last read: what the
        delivery engine asks on each message (it must not wait)."""
        return self._outgoing.get(room, [])

    async def changed(self) -> None:
        """A hook was added or removed here: read them again now, before the admin
        request is answered (a message sent right after ``imkit hook add-outgoing``
        is one the new hook gets)."""
        self._read_at = None
        await self.current()

    async def _incoming(self, key: str) -> IncomingHook | None | str:
        """The incoming hook whose key is ``key``, None, or why the hooks are unknown.
        Every hook's digest is compared, in constant time each. A key the copy does not
        have reads the hooks again (a hook just added on another node), at most every
        :data:`MISS_FRESH` seconds (wrong keys must not make every POST a read)."""
        hooks = await self.current()
        now = time.monotonic()
        if not isinstance(hooks, str) and (found := _matching(hooks, key)) is not None:
            return found
        if self._missed_at is not None and now - self._missed_at < MISS_FRESH:
            return hooks if isinstance(hooks, str) else None
        self._missed_at = now
        hooks = await self.current(fresh=0.0)
        return hooks if isinstance(hooks, str) else _matching(hooks, key)

    # ------------------------------------------------------------- posting

    async def post_as_hook(
        self, hook_name: str, room: str, text: str, username: str | None = None
    ) -> PostOutcome:
        """Post ``text`` (one line, at most --max-line) into the room whose key is
        ``room`` as ``hook_name`` (or ``username``, when the backend finds it free),
        marked as a bot, through the backend's publishing: numbered, delivered to the
        room's members on every node, stored. Returns once it is stored (POSTED, with
        the msgid), or why not (NO_ROOM, NOT_TAKEN); never raises for the store."""
        ask = partial(self.hub.backend.hook_publish, room, hook_name, username, text)
        try:
            return await awaited(ask, POST_TIMEOUT)
        except TimeoutError:
            return PostOutcome("unavailable", "the store did not confirm the message in time")

    async def post_reply(self, hook: OutgoingHook, text: str) -> None:
        """An outgoing hook's receiver answered with ``text``: post it into the hook's
        room as the hook (the delivery engine's poster; it logs what this raises)."""
        payload = payload_of({"text": text})  # its lines joined, as an incoming hook's
        if isinstance(payload, PayloadProblem):
            return  # nothing but white space: nothing to post
        outcome = await self.post_as_hook(hook.name, hook.room, clip(payload.text, self.max_line))
        if outcome.status != POSTED:
            raise RuntimeError(outcome.detail)

    async def receive(self, key: str, body: bytes, content_type: str | None) -> HookReply:
        """A POST to ``/hooks/KEY``: see the module docstring for the answers."""
        hook = await self._incoming(key)
        if isinstance(hook, str):
            return HookReply(503, f"the hooks cannot be read now: {hook}")
        if hook is None:
            return HookReply(404, "no such hook (wrong key, or the hook was removed)")
        wait = self.rate.take(hook.key, time.monotonic())
        if wait is not None:
            reason = f"hook {hook.name} is over its rate limit: retry in {wait}s"
            return HookReply(429, reason, retry_after=wait)
        payload = parse_body(body, content_type)
        if isinstance(payload, PayloadProblem):
            return HookReply(payload.status, payload.reason)
        text = clip(payload.text, self.max_line)
        username = chosen_name(hook.name, payload.username, hook.allow_username)
        outcome = await self.post_as_hook(hook.name, hook.room, text, username)
        if outcome.status == POSTED:
            log.info(
                "hook %s posted to %s",
                hook.name,
                hook.room,
                extra={"event": "hook_posted", "hook": hook.name, "room": hook.room},
            )
            return HookReply(200, "ok", msgid=outcome.detail)
        status = 404 if outcome.status == NO_ROOM else 503
        return HookReply(status, outcome.detail)
