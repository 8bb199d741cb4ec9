"""The node's connections to the cluster's Redis: commands in order, events in order.

Two connections, each owned by one task:

* **the writer** (``imkit-writer-NODE``) runs every command the node sends, in the order
  they were asked for: whatever is waiting is sent as one pipeline (at most WRITE_CHUNK
  commands; none while the node holds, :mod:`imkit.cluster.pace`), and each command's
  callback gets its reply (or the exception) on the event loop. One connection and one
  queue keep each sender's messages in the order sent, public and private alike.
* **the reader** (``imkit-reader-NODE``, :mod:`imkit.cluster.reader`) waits in
  ``XREAD BLOCK`` on the chat's event stream and this node's own stream, merges what
  arrives by sequence number and hands each event to the hub.

A third task, the **heartbeat**, is the supervisor: every ``node_timeout / 5`` it tells
Redis this node lives (and reaps dead nodes, in the same script). When a command fails
the node is *unavailable*: :attr:`problem` says why, the hub refuses what needs Redis,
the outage is logged once; the heartbeat then retries registering with backoff until
Redis answers, registers every connected user again and makes the node available.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

import anyio
from redis.exceptions import NoScriptError, ReadOnlyError, ResponseError

from imkit.cluster import (
    DATA_FORMAT,
    DEFAULT_CLUSTER_NAME,
    DEFAULT_NODE_TIMEOUT,
    FULL,
    UNREACHABLE,
    scripts,
)
from imkit.cluster.connection import (
    COMMAND_TIMEOUT,
    FAILURES,
    FIRST_RETRY,
    RedisConnection,
    is_full,
    reason,
)
from imkit.cluster.pace import WRITE_CHUNK, Pacer
from imkit.cluster.reader import EventReader
from imkit.hub.members import ACCOUNT_REMOVED_BYE, DATA_LOST_BYE
from imkit.rules.pseudonyms import new_secret
from imkit.store.base import awaited

log = logging.getLogger("imkit.cluster")

# At most this many operations in one BATCH call: Redis runs nothing else meanwhile.
BATCH_MAX = 200
# The only maxmemory-policy that never deletes a key imkit wrote: every other one
# evicts history, names, connection sets or held kicks and mutes when Redis is full.
SAFE_POLICY = "noeviction"

Reply = Any  # a Redis reply, or the exception that stands for one
Done = Callable[[Reply], None]


class Events(Protocol):
    """What the reader hands events to (imkit.cluster.events.ClusterEvents)."""

    def apply(self, event: dict[str, Any], own_stream: bool) -> None: ...

    def messages_missed(self) -> None: ...

    def registered_again(
        self,
        renamed: dict[str, str],
        dropped: dict[str, dict[str, Any]],
        muted: dict[str, dict[str, Any]],
    ) -> None: ...

    def current_members(self) -> list[dict[str, Any]]: ...


class ClusterError(Exception):
    """The node cannot join the cluster (Redis unreachable at start, another format)."""


def new_node_id() -> str:
    return secrets.token_hex(4)


def describe_url(url: str) -> str:
    """The Redis URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


class ClusterLink:
    """This node's membership of the cluster; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        name: str = DEFAULT_CLUSTER_NAME,
        node_timeout: float = DEFAULT_NODE_TIMEOUT,
        info: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.url = url
        self.name = name
        self.node = new_node_id()
        self.node_timeout = node_timeout
        self.info = info  # this node's description and counters, for `imkit stats`
        self.events: Events | None = None  # the hub, once it is made
        self.problem: str | None = None  # why Redis cannot be used now; None: it can
        self.on_problem: Callable[[str | None], None] = _ignore
        self.data_lost = 0  # times Redis was found restarted empty
        self.outages = 0  # times Redis became unreachable or full (each logged once)
        self.full_outages = 0  # of those, the times it was full (maxmemory reached)
        self.policy = SAFE_POLICY  # Redis' maxmemory-policy, as last read
        self.missed = 0  # times this node's users were told messages may be missed
        self.epoch = ""
        # The key of the pseudonyms shown for addresses (--hide-addresses), P:secret in
        # Redis: the same on every node. Known from the first registration on.
        self.address_secret = b""
        self.log_key = f"{name}:log"
        self.own_log_key = f"{name}:node:{self.node}:log"
        self.hist_key = f"{name}:hist"
        self.accounts_key = f"{name}:accounts"
        self._shas = {n: hashlib.sha1(src.encode()).hexdigest() for n, src in scripts.ALL.items()}
        # The scripts that may run in a BATCH: sha -> operation name.
        self._operations = {self._shas[n]: n for n in scripts.OPERATIONS}
        self._pending: list[tuple[Sequence[Any], Done]] = []  # () marks an after()
        self._writing = False  # a pipeline is in flight: its replies are not back yet
        self._wanted = anyio.Event()
        self._writer = self._connection("writer", COMMAND_TIMEOUT)
        self.pacer = Pacer()
        self.reader: EventReader = EventReader(self)
        self._down_since: float | None = None
        self._stopping = False
        self._joined = False  # connect() succeeded
        self.bans_at_start: list[str] = []  # P:bans when it joined (imkit.rules.bans)

    @property
    def where(self) -> str:
        """The Redis URL without its password."""
        return describe_url(self.url)

    @property
    def beat_interval(self) -> float:
        return self.node_timeout / 5

    def _connection(self, role: str, timeout: float) -> RedisConnection:
        return RedisConnection(self.url, f"imkit-{role}-{self.node}", timeout)

    # ----------------------------------------------------------------- commands

    def call(self, args: Sequence[Any], done: Done, *, first: bool = False) -> None:
        """Run one Redis command after every command asked for before it (``first``:
        before them, for what must not wait for the users' commands); ``done`` gets
        the reply, or the exception, on the event loop."""
        if first:
            self._pending.insert(0, (args, done))
        else:
            self._pending.append((args, done))
        self._wanted.set()

    def after(self, done: Callable[[], None]) -> None:
        """Call ``done`` once every command asked for before is answered (at once when
        none is waiting): what a node answers itself comes after the replies to its
        users' earlier requests (an IRC PONG after a WHOIS's numerics). Nothing is sent
        to Redis for it."""
        if not self._pending and not self._writing:
            done()
            return
        self._pending.append(((), lambda _reply: done()))
        self._wanted.set()  # answered once the batch in flight is: not with the next call

    def script(self, name: str, *args: Any, done: Done) -> None:
        """Run one of :mod:`imkit.cluster.scripts` with ``args`` after the prefix."""
        self.call(self.script_call(name, *args), done)

    def script_call(self, name: str, *args: Any) -> tuple[Any, ...]:
        """The command that runs the script ``name`` with ``args`` after the prefix."""
        return ("EVALSHA", self._shas[name], 0, self.name, *args)

    async def request(self, args: Sequence[Any], *, first: bool = False) -> Reply:
        """:meth:`call`, awaited; raises what the command raised."""
        ask = partial(self.call, args, first=first)
        reply = await awaited(ask, COMMAND_TIMEOUT * 2 + 1)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def run_script(self, name: str, *args: Any, first: bool = False) -> Reply:
        return await self.request(("EVALSHA", self._shas[name], 0, self.name, *args), first=first)

    async def _write_loop(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            await self.pacer.wait()  # while the slowest reader is far behind (.pace)
            batch, self._pending = self._pending[:WRITE_CHUNK], self._pending[WRITE_CHUNK:]
            if self._pending:
                self._wanted.set()
            self._writing = True
            try:
                commands = [args for args, _ in batch if args]  # not after()'s marks
                replies = iter(await self._execute(commands) if commands else ())
                self._answer(batch, replies)
            finally:
                self._writing = False

    def _answer(self, batch: list[tuple[Sequence[Any], Done]], replies: Any) -> None:
        """Each command's callback with its reply, in order (a mark's with None)."""
        for args, done in batch:
            reply: Any = next(replies) if args else None
            if not args:
                pass  # after()'s mark
            elif isinstance(reply, ReadOnlyError) or is_full(reply):
                # A replica (fail over under way), or Redis out of memory: nothing
                # can be stored until it is over.
                self._unavailable(reply)
            elif isinstance(reply, ResponseError):  # Redis ran it and refused: a bug
                log.error(
                    "cluster: Redis refused %s: %s",
                    args[0],
                    reply,
                    extra={"event": "redis_error", "reason": str(reply)},
                )
            elif isinstance(reply, BaseException):
                self._unavailable(reply)
            try:
                done(reply)
            except Exception:  # pragma: no cover - a bug in a callback: keep serving
                log.exception("cluster: a reply's handler failed", extra={"event": "bug"})

    async def _execute(self, commands: list[Sequence[Any]]) -> list[Reply]:
        """Run ``commands`` in order as one pipeline, operations queued together as
        BATCH calls (:mod:`.scripts`); a reply per command."""
        grouped: list[Sequence[Any]] = []
        sizes: list[int] = []  # how many commands each grouped one stands for (0: itself)
        run: list[Sequence[Any]] = []

        def end_run() -> None:
            for start in range(0, len(run), BATCH_MAX):
                chunk = run[start : start + BATCH_MAX]
                if len(chunk) == 1:
                    grouped.append(chunk[0])
                    sizes.append(0)
                    continue
                names = json.dumps([self._operations[args[1]] for args in chunk])
                arguments = json.dumps([[str(a) for a in args[3:]] for args in chunk])
                grouped.append(("EVALSHA", self._shas["batch"], 0, self.name, names, arguments))
                sizes.append(len(chunk))
            run.clear()

        for args in commands:
            if args[0] == "EVALSHA" and args[1] in self._operations:
                run.append(args)
            else:
                end_run()
                grouped.append(args)
                sizes.append(0)
        end_run()
        replies: list[Reply] = []
        for size, reply in zip(sizes, await self._load_and_run(grouped), strict=True):
            if not size:
                replies.append(reply)
            elif isinstance(reply, BaseException):
                replies += [reply] * size
            else:
                replies += reply
        return replies

    async def _load_and_run(self, commands: list[Sequence[Any]]) -> list[Reply]:
        """One pipeline; a script Redis does not know yet (it restarted) is loaded and
        the commands that needed it run again, in their order."""
        replies = await self._pipeline(commands)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            try:
                await self._writer.run([("SCRIPT", "LOAD", src) for src in scripts.ALL.values()])
            except FAILURES as error:
                for i in missing:
                    replies[i] = error
                return replies
            again = await self._pipeline([commands[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, commands: list[Sequence[Any]]) -> list[Reply]:
        try:
            return await self._writer.run(commands)
        except FAILURES as error:
            return [error] * len(commands)

    # ------------------------------------------------------------ availability

    def _unavailable(self, error: BaseException) -> None:
        """A command failed: the node is unavailable until the heartbeat registers it
        again; logged once per outage, whatever the number of commands refused."""
        if self.problem is not None or self._stopping or not self._joined:
            return  # (before it joined, connect() says why it cannot)
        self._down_since = time.monotonic()
        self.outages += 1
        if is_full(error):
            self.full_outages += 1
            self._set_problem(FULL)
            log.error(
                "cluster: Redis at %s is full (maxmemory reached): it refuses every write;"
                " the chat is unavailable on this node until Redis has room again",
                describe_url(self.url),
                extra={"event": "cluster_redis_full", "reason": reason(error)},
            )
            return
        self._set_problem(UNREACHABLE)
        log.error(
            "cluster: cannot reach Redis at %s (%s); the chat is unavailable on this node"
            " until it is back",
            describe_url(self.url),
            reason(error),
            extra={"event": "cluster_unavailable", "reason": reason(error)},
        )

    def _set_problem(self, problem: str | None) -> None:
        self.problem = problem
        self.on_problem(problem)

    async def connect(self) -> None:
        """Join the cluster before the node accepts anyone; :class:`ClusterError` when
        Redis cannot be reached or holds another data format."""
        failure: ClusterError | None = None
        last: list[str | None] = [None]
        # The writer runs only for this; raising inside the task group would wrap the
        # error in an exception group, hence ``failure``.
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._write_loop)
            try:
                await self._register([])
                last = await self.request(("HMGET", f"{self.name}:meta", f"last:{self.log_key}"))
                self.bans_at_start = list(await self.request(("HVALS", f"{self.name}:bans")))
                await self._check_persistence()
            except ClusterError as error:
                failure = error
            except FAILURES as error:
                where = describe_url(self.url)
                if is_full(error):
                    why = f"the cluster's Redis at {where} is full (maxmemory reached)"
                else:
                    why = f"cannot reach the cluster's Redis at {where}: {reason(error)}"
                failure = ClusterError(why)
            finally:
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        self.reader.start_at(last[0] or "0-0", self.epoch)
        self._pending = []  # nothing else was asked for yet
        self._joined = True

    async def _register(
        self, members: list[dict[str, Any]]
    ) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Register this node and exactly ``members`` as its users (the REGISTER
        script). Returns the users claimed again, mid -> the name they got; those that
        must go, mid -> their kick event (a logged-in user whose account is gone or
        logged in to elsewhere: its bye; a user kicked while this node was silent: the
        kick's reason); and the mutes held for users while this node was silent, mid ->
        the mute event."""
        info = json.dumps(self.info())
        candidate = secrets.token_hex(8)
        # Redis keeps the secret it has; one that lost it (restarted empty) gets this
        # node's back, so that the pseudonyms shown so far stay what they were.
        secret = self.address_secret or new_secret()
        reply = await self.run_script(
            "register",
            self.node,
            DATA_FORMAT,
            candidate,
            info,
            json.dumps(members),
            secret.hex(),
        )
        if reply[0] == "format":
            raise ClusterError(
                f"cluster {self.name!r} in Redis has data format {reply[1]}; this imkit"
                f" understands format {DATA_FORMAT} (docs/cluster.md, Upgrades)"
            )
        epoch = reply[1]
        lost = bool(self.epoch) and epoch != self.epoch
        if lost:
            self.data_lost += 1
            log.error(
                "cluster: Redis lost the chat's data (restarted empty?): history before"
                " now is gone and users were told that messages may have been missed",
                extra={"event": "cluster_data_lost"},
            )
        self.epoch = epoch
        self.address_secret = bytes.fromhex(reply[2])
        renamed, dropped, muted = (json.loads(part) for part in reply[3:6])
        kicks = {str(mid): dict(event) for mid, event in dropped.items()}
        if lost:
            # Redis lost every account with the rest: not an administrator's doing.
            for event in kicks.values():
                if event.get("bye") == ACCOUNT_REMOVED_BYE.reason:
                    event["bye"] = DATA_LOST_BYE.reason
        return (
            {str(mid): str(name) for mid, name in renamed.items()},
            kicks,
            {str(mid): dict(event) for mid, event in muted.items()},
        )

    async def _check_persistence(self) -> None:
        try:
            config = await self.request(("CONFIG", "GET", "save"))
            aof = await self.request(("CONFIG", "GET", "appendonly"))
        except ResponseError:
            return  # CONFIG is disabled (a managed Redis): nothing to say
        save = _config_value(config)
        appendonly = _config_value(aof)
        if not save and appendonly != "yes":
            log.warning(
                "cluster: Redis keeps nothing on disk (no AOF, no snapshots): the history"
                " is lost when it restarts (docs/cluster.md, Running Redis)",
                extra={"event": "redis_not_persistent"},
            )
        await self._check_eviction(start=True)

    async def _check_eviction(self, *, start: bool = False) -> None:
        """Warn when Redis may evict keys, at start and (on the heartbeat) each time its
        maxmemory-policy changes: an evicted name, history entry or connection set is
        lost silently, and users whose set was evicted can never be reaped."""
        try:
            policy = _config_value(await self.request(("CONFIG", "GET", "maxmemory-policy")))
        except FAILURES:
            return  # CONFIG disabled (ResponseError), or Redis gone: the writer says so
        if not policy or policy == self.policy and not start:
            return
        changed = policy != self.policy
        self.policy = policy
        if policy != SAFE_POLICY:
            log.warning(
                "cluster: Redis evicts keys when it is full (maxmemory-policy %s): it may"
                " silently delete history, names and the nodes' users; set"
                " maxmemory-policy %s (docs/cluster.md, Running Redis)",
                policy,
                SAFE_POLICY,
                extra={"event": "redis_evicts", "policy": policy},
            )
        elif changed:
            log.info(
                "cluster: Redis no longer evicts keys (maxmemory-policy %s)",
                policy,
                extra={"event": "redis_evicts", "policy": policy},
            )

    async def _heartbeat_loop(self) -> None:
        events = self.events
        assert events is not None
        retry = FIRST_RETRY
        while True:
            if self.problem is None:
                await anyio.sleep(self.beat_interval)
                status = await self._beat()
                if status == "ok":
                    await self._check_eviction()
                if status in ("ok", "error"):
                    continue
                reason = "restarted empty" if status == "lost" else "declared this node dead"
                log.warning(
                    "cluster: Redis %s; registering this node's users again",
                    reason,
                    extra={"event": "cluster_rejoin", "reason": status},
                )
            else:
                await anyio.sleep(retry)
                retry = min(retry * 2, self.beat_interval)
            try:
                renamed, dropped, muted = await self._register(events.current_members())
            except FAILURES as error:
                self._unavailable(error)
                continue
            except ClusterError as error:
                log.error("cluster: %s", error, extra={"event": "cluster_format"})
                self._unavailable(error)
                continue
            retry = FIRST_RETRY
            events.registered_again(renamed, dropped, muted)
            if self.epoch != self._reader_epoch:
                self._restart_reader()
            if self.problem is not None:
                down = time.monotonic() - (self._down_since or time.monotonic())
                what = "has room again" if self.problem == FULL else "is back"
                self._set_problem(None)
                log.warning(
                    "cluster: Redis %s after %.1fs; %d users registered again",
                    what,
                    down,
                    len(renamed),
                    extra={"event": "cluster_available", "down_s": round(down, 3)},
                )

    async def _beat(self) -> str:
        info = json.dumps(self.info())
        timeout_ms = int(self.node_timeout * 1000)
        try:
            # Ahead of the users' commands: a burst queues thousands of them, sent a
            # chunk at a time, each chunk held up to HOLD_MAX while the readers catch
            # up (.pace); a beat behind them came after --node-timeout, and Redis
            # declared this busy node dead (a 30,000-line burst under load did).
            reply = await self.run_script(
                "beat", self.node, self.epoch, info, timeout_ms, first=True
            )
        except FAILURES:
            return "error"  # the writer has declared the outage
        status = str(reply[0])
        reaped = int(reply[1])
        if reaped:
            log.info(
                "cluster: a node went silent for %gs: its %d users are offline",
                self.node_timeout,
                reaped,
                extra={"event": "cluster_reaped", "count": reaped},
            )
        return status

    async def depart(self) -> None:
        """Leave the cluster at once (shutdown): everyone sees this node's users go."""
        self._stopping = True
        if self.problem is not None:
            return
        try:
            await self.run_script("depart", self.node)
        except FAILURES:
            return  # the others will declare this node dead

    # ------------------------------------------------------------------ reading

    @property
    def _reader_epoch(self) -> str:
        """The epoch of the data the reader reads (imkit.cluster.reader)."""
        return self.reader.epoch

    def _restart_reader(self) -> None:
        self.reader.restart()

    async def run(self) -> None:
        """The writer, the reader and the heartbeat, until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._write_loop)
            tg.start_soon(self.reader.run)
            tg.start_soon(self._heartbeat_loop)

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._writer.close()


def _config_value(reply: Any) -> str:
    """The value in CONFIG GET's reply (RESP2: [name, value])."""
    if isinstance(reply, list) and len(reply) >= 2:
        return str(reply[1])
    return ""


def _ignore(problem: str | None) -> None:
    pass
