"""The server over real loopback TCP: every row of the seed's protocol table, JSON mode,
and each bug of the seed that imkit must not have.

Here the tests that need an in-process server on loopback; the others are in
behaviour/test_server.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import anyio
import pytest

from imkit.server import Server, ServerConfig
from tests.support import LineClient, joined, run_server


async def test_idle_client_is_forced_offline_and_removed() -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=1.0)) as server:
        a = await joined(server.addresses[0], "alex")
        b = await joined(server.addresses[0], "bob")
        await a.line()
        # a keeps talking (any line counts, empty ones too); b says nothing
        for _ in range(8):
            await a.send(b"\n")
            await anyio.sleep(0.25)
        assert await b.line_matching("forced offline") == "you are forced offline\n"
        assert await b.eof()
        assert await a.line() == f"[{b.addr}]bob:user offline\n"
        await a.send(b"who\n")  # the kicked user is gone, and broadcasting still works
        assert await a.line() == f"[{a.addr}]alex:online...\n"
        await a.send(b"still here\n")
        assert await a.line() == f"[{a.addr}]alex:still here\n"
        assert server.hub.stats.idle_kicks == 1


async def test_long_line_and_bad_utf8_get_errors_and_keep_the_connection() -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0, max_line=100)) as server:
        a = await joined(server.addresses[0], "alex")
        await a.send(b"x" * 150 + b"rename|evil\nb\xffd\nfine\n")
        assert await a.lines(3) == [
            "error: line too long (the limit is 100 bytes); discarded\n",
            "error: the line is not valid UTF-8; discarded\n",
            f"[{a.addr}]alex:fine\n",
        ]


async def test_a_stalled_reader_does_not_delay_anyone() -> None:
    # The seed's broadcast waits on every user's unbuffered channel: one client that
    # stops reading stops the whole server. Here it is dropped once its queue is full.
    config = ServerConfig(port=0, idle_timeout=0, max_line=16384, max_queue=256 * 1024, rate=0)
    async with run_server(config) as server, anyio.create_task_group() as tg:
        stalled = await joined(server.addresses[0], "stalled")
        talker = await joined(server.addresses[0], "talker")
        listener = await joined(server.addresses[0], "listener")
        await talker.line()  # listener's join
        tg.start_soon(talker.drain)  # the talker reads its own echoes
        body = "y" * 10000
        with anyio.fail_after(60):
            # 10 MB to everyone: far past the stalled client's socket buffers and queue
            for i in range(1000):
                await talker.send(f"{i} {body}\n")
                line = await listener.line()
                if line == f"[{stalled.addr}]stalled:user offline\n":
                    line = await listener.line()
                assert line == f"[{talker.addr}]talker:{i} {body}\n"
        assert server.hub.find("stalled") is None
        assert server.hub.stats.slow_consumers == 1
        assert [m.name for m in server.hub.members] == ["talker", "listener"]
        await stalled.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("write_thread", "batch"),
    [(False, None), (True, None), (True, 7)],
    ids=["one-thread", "write-thread", "write-thread-in-batches-of-7"],
)
async def test_many_clients_each_message_reaches_everyone_in_order(
    write_thread: bool, batch: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100 recipients: flushes of 64 or more are shared with the WriteThread when it is on,
    # SHARED_FLUSH_BATCH connections at a time.
    if batch is not None:
        monkeypatch.setattr("imkit.transport.writes.SHARED_FLUSH_BATCH", batch)
    config = ServerConfig(port=0, idle_timeout=0, write_thread=write_thread)
    async with run_server(config) as server:
        await _many_clients(server)


async def _many_clients(server: Server) -> None:
    count, per_client = 100, 5
    clients = [await joined(server.addresses[0], f"u{i}") for i in range(count)]
    async with anyio.create_task_group() as tg:
        for i, client in enumerate(clients):
            tg.start_soon(client.send, b"".join(f"m{i}-{k}\n".encode() for k in range(per_client)))
    for client in clients:
        seen: dict[str, list[int]] = {}
        while sum(len(v) for v in seen.values()) < count * per_client:
            found = re.search(r"\]u\d+:m(\d+)-(\d+)\n$", await client.line())
            if found:  # else a join line of someone who came later
                seen.setdefault(found.group(1), []).append(int(found.group(2)))
        assert len(seen) == count
        assert all(v == list(range(per_client)) for v in seen.values())
    assert server.hub.stats.messages_received == count * per_client


async def test_json_client_gets_bye_when_idle() -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0.6)) as server:
        j = await LineClient.connect(server.addresses[0])
        await j.send(json.dumps({"type": "hello"}) + "\n")
        bye = await j.json_of_type("bye")
        assert bye == {"type": "bye", "reason": "idle", "message": "you are forced offline"}
        assert await j.eof()


async def test_abrupt_disconnects_leave_no_ghosts(server: Server) -> None:
    watcher = await joined(server.addresses[0], "watcher")
    for i in range(20):
        c = await joined(server.addresses[0], f"g{i}")
        await c.send(b"half a line without newline")
        await c.aclose()
    with anyio.fail_after(10):
        while len(server.hub) > 1:
            await anyio.sleep(0.05)
    await watcher.send(b"who\n")
    assert await watcher.line_matching(r"online\.\.\.") == f"[{watcher.addr}]watcher:online...\n"
    assert await watcher.silent()


def test_write_job_reports_every_outcome_when_the_flusher_is_alone() -> None:
    import socket as socketlib

    from imkit.transport.writes import _WriteJob

    alive, alive_peer = socketlib.socketpair()
    dead, dead_peer = socketlib.socketpair()
    dead_peer.close()
    dead.setblocking(False)
    alive.setblocking(False)
    alive_peer.setblocking(False)
    job = _WriteJob([(alive, b"hello\n"), (dead, b"x" * 100), (dead, b"y")])
    job.run()  # the write thread never came: run() must not wait for it
    assert job.results[0] == 6 and alive_peer.recv(100) == b"hello\n"
    assert all(isinstance(r, OSError) for r in job.results[1:])
    job.help()  # a thread arriving late finds nothing left and sends nothing twice
    with pytest.raises(BlockingIOError):
        alive_peer.recv(100)
    for sock in (alive, alive_peer, dead):
        sock.close()


def test_write_job_shared_with_a_thread_sends_each_write_exactly_once() -> None:
    import socket as socketlib
    import threading

    from imkit.transport.writes import _WriteJob

    pairs = [socketlib.socketpair() for _ in range(300)]
    for ours, _ in pairs:
        ours.setblocking(False)
    job = _WriteJob([(ours, f"line {i}\n".encode()) for i, (ours, _) in enumerate(pairs)])
    helper = threading.Thread(target=job.help)
    helper.start()
    job.run()
    helper.join()
    assert job.results == [len(f"line {i}\n") for i in range(len(pairs))]
    for i, (ours, theirs) in enumerate(pairs):
        theirs.setblocking(False)
        assert theirs.recv(100) == f"line {i}\n".encode()
        with pytest.raises(BlockingIOError):
            theirs.recv(100)
        ours.close()
        theirs.close()


def test_write_job_finishes_when_the_write_thread_fails() -> None:
    import socket as socketlib
    import threading

    from imkit.transport.writes import _WriteJob

    class Broken:
        def send(self, data: bytes) -> int:
            raise RuntimeError("a bug in the write thread")

    ours, theirs = socketlib.socketpair()
    ours.setblocking(False)
    job = _WriteJob([(Broken(), b"lost\n"), (ours, b"kept\n")])  # type: ignore[list-item]
    failures: list[BaseException] = []
    helper = threading.Thread(target=lambda: _record_failure(job.help, failures))
    helper.start()
    helper.join()  # the thread takes the first write, fails, and must still say it is done
    job.run()  # the flusher sends the rest and does not wait forever
    assert [type(f) for f in failures] == [RuntimeError]
    assert job.results == [None, 5] and theirs.recv(100) == b"kept\n"
    ours.close()
    theirs.close()


def _record_failure(work: Callable[[], None], failures: list[BaseException]) -> None:
    try:
        work()
    except BaseException as error:  # noqa: BLE001 - the test inspects it
        failures.append(error)


# One node only: in a cluster the rename's reply comes after the echoes of the lines
# pipelined behind it (they return from Redis' log first), so the order asserted here
# is a single node's (tests/behaviour has the cluster's own checks of one order).
async def test_pipelined_lines_in_one_write_are_separate_messages(server: Server) -> None:
    a = await joined(server.addresses[0])
    # The seed renamed this user to "a\nhello" and broadcast one merged message.
    await a.send(b"rename|a\r\nhello\r\nworld\n")
    assert await a.lines(3) == [
        "you have updated user name: a\n",
        f"[{a.addr}]a:hello\n",
        f"[{a.addr}]a:world\n",
    ]
