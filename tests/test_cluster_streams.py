"""Cluster mode: the event streams under faults (issue 26, items 3, 4, 6 and 8).

A sender's private messages keep their place among its public ones on Redis 7.0, which
answers a blocking XREAD on two streams with only the one that became ready first;
after Redis comes back with older data (a snapshot, a lossy AOF, a promoted replica)
new events are delivered live; a burst larger than the event stream keeps is paced,
not dropped. Real nodes, real redis-server processes."""

from __future__ import annotations

import json

import anyio
import pytest

from tests.redis_support import Cluster, User, arrive, needs_redis

pytestmark = [needs_redis, pytest.mark.anyio]

# Repetitions of the three-line write: the overtaking happened in 20 of 20 before.
TRIES = 20


async def _texts(user: User, count: int) -> list[str]:
    """The texts of the next ``count`` chat messages ``user`` receives (public or
    private), skipping JSON ``ok`` replies."""
    texts: list[str] = []
    with anyio.fail_after(60):
        while len(texts) < count:
            line = await user.line(timeout=60)
            if user.mode == "json":
                event = json.loads(line)
                if event["type"] == "ok":
                    continue
                assert event["type"] == "message", event
                texts.append(event["text"])
            elif " say: " in line:
                texts.append(line.split(" say: ", 1)[1].rstrip("\n"))
            else:
                texts.append(line.split(":", 2)[-1].rstrip("\n"))
    return texts


@pytest.mark.parametrize("sender_mode", ["text", "json"])
async def test_a_private_message_never_overtakes_its_sender_s_earlier_public_one(
    cluster: Cluster, sender_mode: str
) -> None:
    a, b = cluster.start_nodes(2)
    alice = await arrive(a, sender_mode, [], name="alice")
    bob = await arrive(b, "text", [alice], name="bob")  # on the other node
    bea = await arrive(a, "json", [alice, bob], name="bea")  # on the sender's node
    for k in range(TRIES):
        wanted = [f"{k}.1 private", f"{k}.2 public", f"{k}.3 private"]
        if sender_mode == "text":
            data = (
                f"to|bob|{wanted[0]}\nto|bea|{wanted[0]}\n{wanted[1]}\n"
                f"to|bob|{wanted[2]}\nto|bea|{wanted[2]}\n"
            )
        else:
            requests = [
                {"type": "message", "to": "bob", "text": wanted[0]},
                {"type": "message", "to": "bea", "text": wanted[0]},
                {"type": "message", "text": wanted[1]},
                {"type": "message", "to": "bob", "text": wanted[2]},
                {"type": "message", "to": "bea", "text": wanted[2]},
            ]
            data = "".join(
                json.dumps(r | {"id": f"r{k}.{n}"}) + "\n" for n, r in enumerate(requests)
            )
        await alice.client.send(data)  # one write
        assert await _texts(bob, 3) == wanted, f"try {k}"
        assert await _texts(bea, 3) == wanted, f"try {k}"
        assert await _texts(alice, 1) == [wanted[1]]
