"""One Redis connection as the cluster link uses it: the one place that touches
redis-py's connection layer (rather than its client), and what its errors mean.

redis-py's asyncio pool wants the asyncio ``Retry`` (``redis.asyncio.retry``, there in
every redis-py the dependency range allows): given the synchronous one, recent redis-py
(8.x) converts it and prints a ``UserWarning`` at every node's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError

# Connecting to Redis: longer than this and it counts as unreachable (then retried with
# backoff); a Redis on the network answers a connect within milliseconds.
CONNECT_TIMEOUT = 1.0
# How long one command may take before Redis counts as unreachable.
COMMAND_TIMEOUT = 2.0
# Reconnecting: the first retry after this long, doubling up to the heartbeat interval.
FIRST_RETRY = 0.1

# What a command raises when Redis cannot be reached (or answer in time).
FAILURES = (RedisError, OSError, TimeoutError)

Reply = Any  # a Redis reply, or the exception that stands for one


class RedisConnection:
    """One Redis connection, used by one task at a time: commands sent together, their
    replies read in order, each a value or the ResponseError Redis answered.

    It uses redis-py's connection and reply parser (hiredis) but neither its client and
    pipeline layers nor its command packing, and one deadline covers a whole batch
    rather than one per reply: on the hot path, where every chat message makes two
    calls, those cost more than the round trip (py-spy, docs/cluster.md). A failure
    closes the connection (replies half read would be out of step); the next call
    connects again.
    """

    def __init__(self, url: str, name: str, timeout: float) -> None:
        self.timeout = timeout
        self._pool = ConnectionPool.from_url(
            url,
            decode_responses=True,
            protocol=2,  # the replies' shapes below are RESP2's
            socket_timeout=None,  # the batch's deadline, in run()
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # ClusterLink decides when to try again
            client_name=name,
        )
        self._connection: AbstractConnection | None = None

    async def run(self, commands: Sequence[Sequence[Any]]) -> list[Reply]:
        connection = self._connection
        if connection is None:
            connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
            self._connection = connection
        try:
            with anyio.fail_after(self.timeout):
                await connection.connect()
                await connection.send_packed_command(pack(commands), check_health=False)
                replies: list[Reply] = []
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as error:  # that command's answer; more follow
                        replies.append(error)
                return replies
        except BaseException:
            self._connection = None
            with anyio.CancelScope(shield=True):
                await connection.disconnect(nowait=True)
            raise

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.disconnect()
            self._connection = None


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    """Commands in Redis' protocol (RESP): arrays of bulk strings."""
    out = []
    for args in commands:
        out.append(b"*%d\r\n" % len(args))
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


def is_full(reply: Any) -> bool:
    """Whether ``reply`` is Redis refusing a write because it reached maxmemory: "OOM
    command not allowed when used memory > 'maxmemory'", also from inside a script
    (redis-py raises OutOfMemoryError, without the "OOM" prefix)."""
    return isinstance(reply, OutOfMemoryError) or (
        isinstance(reply, ResponseError) and "when used memory > 'maxmemory'" in str(reply)
    )


def reason(error: BaseException) -> str:
    """The first line of what went wrong, for a log line or a reply."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
