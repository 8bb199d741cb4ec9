"""Outgoing webhooks' deliveries on one node (docs/integrations.md, "Outgoing
webhooks"): :class:`OutgoingDeliveries`.

The hub calls :meth:`OutgoingDeliveries.offer` with every public message this node
published (``Backend.on_published``), synchronously, on its hot path: offering asks the
provider for the room's outgoing hooks, and for each hook the message triggers it puts
the message in that hook's queue (the JSON body is made by the sender) and returns. It
never awaits and never blocks: the POSTs are made by one sender task per hook, in the
engine's own task group, apart from the hub, so a slow or dead receiver holds up only
its own hook's queue, never the chat.

Each hook's queue holds at most ``queue_limit`` messages (:data:`QUEUE_LIMIT`); when it
is full the **oldest** waiting message is dropped and counted failed, so a receiver that
comes back answers what was said lately. A POST that fails with a connection error, a
timeout, a 5xx or a 429 is tried again after an exponential backoff with jitter, at most
``attempts`` times in all; then it is given up and counted failed. Messages of one hook
are POSTed one at a time, in the order they were offered.

Which hooks a room has is the provider's (``Callable[[str], Sequence[OutgoingHook]]``:
a room's key to its outgoing hooks; the store's, once wired). A 2xx reply whose body is
a JSON object with a ``text`` is handed to the poster (``Callable[[OutgoingHook, str],
Awaitable]``), which posts it to the hook's room as the hook.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc

from imkit.protocol import ChatMessage
from imkit.rules.hooks import (
    SIGNATURE_HEADER,
    DeliveryStatus,
    OutgoingHook,
    first_word,
    signature,
)
from imkit.rules.names import name_key
from imkit.rules.rooms import room_key
from imkit.rules.times import iso_time
from imkit.server.hook_post import Posted, post_json

log = logging.getLogger("imkit.hooks")

Provider = Callable[[str], Sequence[OutgoingHook]]
Poster = Callable[[OutgoingHook, str], Awaitable[object]]
Post = Callable[..., Awaitable[Posted]]

# Messages waiting per hook; one more may be in flight. At a message a second the queue
# covers a receiver's restart of a minute and a half; past it, memory stays bounded
# (100 chat lines of at most a few KB each).
QUEUE_LIMIT = 100
# Tries per message, the first included.
ATTEMPTS = 5
# Seconds one POST may take, connecting to the reply's last byte.
TIMEOUT = 5.0
# The wait before the n-th retry is BACKOFF * 2**(n-1), times a random 0.5 to 1.5
# (jitter: the hooks of many nodes do not come back in step), at most MAX_BACKOFF:
# about 1, 2, 4, 8 seconds, so a message is given up some 15 s (plus timeouts) after it
# was first tried.
BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A hook whose queue keeps overflowing is logged at most this often (seconds).
DROP_LOG_INTERVAL = 60.0
# The header naming the hook, and the one naming the message (its msgid: the same on
# every retry, so that a receiver can tell a retry from a new message).
HOOK_HEADER = "X-Imkit-Hook"
DELIVERY_HEADER = "X-Imkit-Delivery"


def no_hooks(room: str) -> Sequence[OutgoingHook]:
    """The provider of a node that has no outgoing hooks."""
    return ()


def payload(hook: OutgoingHook, message: ChatMessage) -> bytes:
    """The JSON body POSTed for ``message`` (the exact bytes that are signed)."""
    fields = {
        "hook": hook.name,
        "room": message.room,
        "name": message.sender,
        "account": message.account,
        "text": message.text,
        "msgid": message.msgid,
        "time": iso_time(message.time),
        "trigger": first_word(message.text) if hook.triggers else None,
    }
    # ASCII (\u escapes): valid UTF-8 whatever the text holds.
    return json.dumps(fields, separators=(",", ":")).encode()


def backoff(retry: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait before the ``retry``-th retry (1, 2 ...)."""
    return min(cap, base * 2.0 ** (retry - 1) * (0.5 + rand()))


@dataclass(frozen=True, slots=True)
class HookCounts:
    """A hook's counters on this node, for the metrics."""

    name: str
    queued: int
    delivered: int
    failed: int  # given up (or refused with a 4xx)
    dropped: int  # the queue was full
    retries: int


@dataclass(slots=True)
class _Queue:
    """One hook's queue on this node: what waits, whether its sender runs, its counts."""

    hook: OutgoingHook
    waiting: deque[ChatMessage] = field(default_factory=deque)
    sending: bool = False
    in_flight: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    last_error: str | None = None
    last_error_time: float | None = None
    drop_logged: float = -DROP_LOG_INTERVAL  # when a drop was last logged (monotonic)


class OutgoingDeliveries:
    """Every outgoing hook's queue and sender on one node; see the module docstring.
    :meth:`run` under the server's task group; :meth:`offer` from the hub."""

    def __init__(
        self,
        provider: Provider = no_hooks,
        poster: Poster | None = None,
        *,
        queue_limit: int = QUEUE_LIMIT,
        attempts: int = ATTEMPTS,
        timeout: float = TIMEOUT,
        backoff: float = BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        ssl_context: ssl.SSLContext | None = None,
        post: Post = post_json,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.provider = provider
        self.poster = poster  # None: replies are not posted (logged)
        self.queue_limit = max(1, queue_limit)
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.ssl_context = ssl_context  # None: the system's CAs (tests give their own)
        self.post = post
        self.clock = clock
        self.rand = rand
        self._queues: dict[str, _Queue] = {}  # by the hook's name key
        self._tasks: anyio.abc.TaskGroup | None = None  # while run() runs

    # ------------------------------------------------------------ from the hub

    def offer(self, message: ChatMessage) -> None:
        """A public message this node published: queue it for the hooks it triggers.
        Never raises, never waits."""
        if message.to is not None or message.room is None or self.provider is no_hooks:
            return  # private: never a hook's
        # A hook's post (bot) never triggers a hook, nor does a notice (IRC's rule: no
        # automatic reply to a NOTICE), so two hooks cannot answer each other forever.
        if message.bot or message.notice:
            return
        try:
            hooks = self.provider(room_key(message.room))
        except Exception:  # the store's trouble: the chat goes on
            log.exception(
                "outgoing hooks: cannot list the hooks of %s",
                message.room,
                extra={"event": "hook_provider_error", "room": message.room},
            )
            return
        if not hooks:
            return
        sender = name_key(message.sender)
        if any(hook.key == sender for hook in hooks):
            return  # the hook's own name: its reply, posted as itself
        for hook in hooks:
            if hook.triggered_by(message.text):
                self._queue(hook, message)

    def _queue(self, hook: OutgoingHook, message: ChatMessage) -> None:
        """Only a deque's append on the chat's path: the body is made by the sender."""
        queue = self._queues.get(hook.key)
        if queue is None:
            queue = self._queues[hook.key] = _Queue(hook)
        queue.hook = hook  # the latest record: its URL or secret may have changed
        if len(queue.waiting) >= self.queue_limit:
            queue.waiting.popleft()
            queue.dropped += 1
            self._failure(queue, f"queue full ({self.queue_limit}): the oldest message dropped")
            now = time.monotonic()
            if now - queue.drop_logged >= DROP_LOG_INTERVAL:  # a busy room: not a line each
                queue.drop_logged = now
                log.warning(
                    "outgoing hook %s: its queue is full; %d messages dropped so far",
                    hook.name,
                    queue.dropped,
                    extra={"event": "hook_dropped", "hook": hook.name, "count": queue.dropped},
                )
        queue.waiting.append(message)
        self._start(queue)

    def _start(self, queue: _Queue) -> None:
        if queue.sending or self._tasks is None or not queue.waiting:
            return
        queue.sending = True
        self._tasks.start_soon(self._send_all, queue)

    # ---------------------------------------------------------------- status

    def status(self, name: str) -> DeliveryStatus:
        """What the hook named ``name`` came to on this node (all zero: nothing yet)."""
        queue = self._queues.get(name_key(name))
        if queue is None:
            return DeliveryStatus()
        return DeliveryStatus(
            queued=len(queue.waiting) + queue.in_flight,
            delivered=queue.delivered,
            failed=queue.failed + queue.dropped,
            last_error=queue.last_error,
            last_error_time=queue.last_error_time,
        )

    def counts(self) -> list[HookCounts]:
        """Every hook that had a message on this node, for the metrics."""
        return [
            HookCounts(
                q.hook.name,
                len(q.waiting) + q.in_flight,
                q.delivered,
                q.failed,
                q.dropped,
                q.retries,
            )
            for q in self._queues.values()
        ]

    # ------------------------------------------------------------- the senders

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Send until cancelled (the server's shutdown). What is still queued then is
        abandoned: the messages are in the chat and its history, only their POSTs are
        not made (logged with their number)."""
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                for queue in self._queues.values():  # offered before run()
                    self._start(queue)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tasks = None
            abandoned = sum(len(q.waiting) + q.in_flight for q in self._queues.values())
            for queue in self._queues.values():
                queue.sending, queue.in_flight = False, 0
            if abandoned:
                log.info(
                    "outgoing hooks: %d deliveries abandoned at shutdown",
                    abandoned,
                    extra={"event": "hooks_abandoned", "count": abandoned},
                )

    async def _send_all(self, queue: _Queue) -> None:
        try:
            while queue.waiting:
                if not self._refresh(queue):
                    queue.waiting.clear()  # the hook was removed: nothing more to send
                    return
                message = queue.waiting.popleft()
                msgid = message.msgid or ""
                queue.in_flight = 1
                try:
                    await self._deliver(queue, payload(queue.hook, message), msgid)
                except Exception as error:  # a bug: this message fails, nothing else
                    queue.failed += 1
                    self._failure(queue, f"internal error: {error!r}")
                    log.exception(
                        "outgoing hook %s: message %s not delivered",
                        queue.hook.name,
                        msgid,
                        extra={"event": "hook_error", "hook": queue.hook.name, "msgid": msgid},
                    )
                queue.in_flight = 0
        finally:
            queue.sending = False
            queue.in_flight = 0

    def _refresh(self, queue: _Queue) -> bool:
        """Take the hook's current record; False when it no longer exists."""
        try:
            hooks = self.provider(queue.hook.room)
        except Exception:
            return True  # the store cannot say: keep the record we have
        for hook in hooks:
            if hook.key == queue.hook.key:
                queue.hook = hook
                return True
        return False

    async def _deliver(self, queue: _Queue, body: bytes, msgid: str) -> None:
        """One message: POSTed until delivered, refused, or out of attempts."""
        for attempt in range(1, self.attempts + 1):
            hook = queue.hook
            headers = [
                (SIGNATURE_HEADER, signature(hook.secret, body)),
                (HOOK_HEADER, hook.name),
                (DELIVERY_HEADER, msgid),
            ]
            posted = await self.post(
                hook.url, body, headers, within=self.timeout, ssl_context=self.ssl_context
            )
            if posted.delivered:
                queue.delivered += 1
                if posted.reply is not None:
                    await self._reply(hook, posted.reply)
                return
            reason = posted.error or f"HTTP {posted.status}"
            self._failure(queue, reason)
            if not posted.retry or attempt == self.attempts:
                queue.failed += 1
                tries = f"after {attempt} attempts" if attempt > 1 else "at once"
                log.warning(
                    "outgoing hook %s: message %s not delivered (%s): %s",
                    hook.name,
                    msgid,
                    tries,
                    reason,
                    extra={"event": "hook_failed", "hook": hook.name, "msgid": msgid},
                )
                return
            queue.retries += 1
            delay = backoff(attempt, self.backoff, self.max_backoff, self.rand)
            if posted.retry_after is not None:
                delay = max(delay, posted.retry_after)
            await anyio.sleep(delay)

    async def _reply(self, hook: OutgoingHook, text: str) -> None:
        """Post a receiver's reply to the hook's room, as the hook; its trouble is
        logged, never the delivery's (the POST was answered)."""
        if self.poster is None:
            log.info(
                "outgoing hook %s: a reply, but no way to post it here",
                hook.name,
                extra={"event": "hook_reply_dropped", "hook": hook.name},
            )
            return
        try:
            with anyio.fail_after(self.timeout):
                await self.poster(hook, text)
        except Exception as error:
            log.warning(
                "outgoing hook %s: its reply was not posted: %s",
                hook.name,
                error or type(error).__name__,
                extra={"event": "hook_reply_failed", "hook": hook.name},
            )

    def _failure(self, queue: _Queue, reason: str) -> None:
        queue.last_error, queue.last_error_time = reason, self.clock()
