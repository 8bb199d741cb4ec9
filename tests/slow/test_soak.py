"""A bounded soak: a few hundred clients doing random things for about 20 seconds,
against the default limits. It must end with no leaked task, no ghost user, and every
accepted message accounted for."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import time
from collections import defaultdict

import anyio

from imkit.server import ServerConfig
from tests.support import LineClient, run_server

WORKERS = 250
DURATION = 20.0
TAG = re.compile(r"(?:\]\S+:| say: )(w\d+-\d+)$")


class Observer:
    """Joins first, never leaves, reads everything, and records every message tag."""

    def __init__(self, client: LineClient, name: str) -> None:
        self.client = client
        self.name = name
        self.tags: list[str] = []

    async def read(self) -> None:
        while True:
            found = TAG.search((await self.client.line(timeout=3600)).rstrip("\n"))
            if found:
                self.tags.append(found.group(1))


async def worker(index: int, address: str, stop_at: float, live: dict[int, str]) -> int:
    """Random actions until ``stop_at``; returns how many messages it wrote."""
    rng = random.Random(index)
    sent = 0
    client = await LineClient.connect(address)
    live[index] = client.addr
    while time.monotonic() < stop_at:
        await anyio.sleep(rng.uniform(0.3, 1.2))
        roll = rng.random()
        if roll < 0.40:
            await client.send(f"w{index}-{sent}\n".encode())
            sent += 1
        elif roll < 0.55:
            await client.send(f"to|obs0|w{index}-{sent}\n".encode())
            sent += 1
        elif roll < 0.65:
            name = rng.choice(["w", "W", "worker", "x"]) + str(rng.randrange(400))
            await client.send(f"rename|{name}\n".encode())
            live[index] = name  # if taken, the server keeps the old name: checked below
        elif roll < 0.72:
            await client.send(b"who\n")
        elif roll < 0.80:
            await client.send(rng.choice([b"x" * 5000 + b"\n", b"\xff\xfe\n", b"rename|a b\n"]))
        elif roll < 0.92:  # leave cleanly and come back
            del live[index]
            await client.aclose()
            client = await LineClient.connect(address)
            live[index] = client.addr
        else:  # vanish with a reset and come back
            del live[index]
            raw = client.stream.extra(anyio.abc.SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await client.aclose()
            client = await LineClient.connect(address)
            live[index] = client.addr
    await client.aclose()
    del live[index]
    return sent


async def test_soak() -> None:
    baseline = len(asyncio.all_tasks())
    async with run_server(ServerConfig(port=0)) as server:  # default limits
        address = server.addresses[0]
        observers = []
        for name in ("obs0", "obs1"):
            client = await LineClient.connect(address)
            await client.send(f"rename|{name}\n".encode())
            await client.line_matching("you have updated user name")
            observers.append(Observer(client, name))
        live: dict[int, str] = {}
        sent_total = 0
        async with anyio.create_task_group() as readers:
            for observer in observers:
                readers.start_soon(observer.read)
            stop_at = time.monotonic() + DURATION

            async def run_worker(i: int) -> None:
                nonlocal sent_total
                sent = await worker(i, address, stop_at, live)
                sent_total += sent

            async with anyio.create_task_group() as workers:
                for i in range(WORKERS):
                    workers.start_soon(run_worker, i)

            # Every worker has closed: wait for the server to notice, then account.
            with anyio.move_on_after(15):
                while (
                    len(server.hub) > 2
                    or len(observers[0].tags) < server.hub.stats.messages_received
                ):
                    await anyio.sleep(0.1)
            readers.cancel_scope.cancel()

        stats = server.hub.stats
        obs0, obs1 = observers
        # no ghost: only the observers are still online
        assert [m.name for m in server.hub.members] == ["obs0", "obs1"]
        assert not live
        # every accepted message reached obs0 exactly once (public and private to it) ...
        assert 0 < stats.messages_received <= sent_total
        assert len(obs0.tags) == len(set(obs0.tags)) == stats.messages_received
        # ... and every accepted public one reached obs1 exactly once
        publics0 = [t for t in obs0.tags if t in set(obs1.tags)]
        assert len(obs1.tags) == len(set(obs1.tags)) == len(publics0)
        # in each sender's order
        for observer in observers:
            by_sender: dict[str, list[int]] = defaultdict(list)
            for tag in observer.tags:
                sender, number = tag.split("-")
                by_sender[sender].append(int(number))
            assert all(numbers == sorted(numbers) for numbers in by_sender.values())
        assert stats.slow_consumers == 0
        assert stats.connections_total > WORKERS
    # no leaked task once the server has stopped
    assert not server.connections
    assert len(asyncio.all_tasks()) == baseline
