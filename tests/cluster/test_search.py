"""Search in a cluster (docs/integrations.md, "Search"): Redis keeps no index, so the
node asked scans the room's (or the lobby's) history stream, a chunk a command, up to
SCAN_MAX entries; past that bound the page says ``more``. Two nodes on a real
redis-server; Redis stopped: ``unavailable``. (The answers themselves, on one node and
two, are tests/behaviour/test_search.py.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from imkit.cluster import store as cluster_store
from imkit.server import Server, ServerConfig
from tests.support import json_client, run_server
from tests.support.cluster import RedisServer, running_redis


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[RedisServer, list[Server]]]:
    with running_redis() as redis:
        name = f"s{uuid.uuid4().hex[:10]}"
        config = ServerConfig(port=0, idle_timeout=0, rate=0, cluster=redis.url, cluster_name=name)
        async with run_server(config) as one, run_server(config) as two:
            yield redis, [one, two]


async def test_the_scan_is_bounded_and_says_there_is_more(
    two_nodes: tuple[RedisServer, list[Server]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (one, two) = two_nodes
    monkeypatch.setattr(cluster_store, "SCAN_CHUNK", 4)
    monkeypatch.setattr(cluster_store, "SCAN_MAX", 8)
    sender = await json_client(one.addresses[0], "sender")
    said = []
    for i in range(12):
        text = "needle in the haystack" if i in (0, 5) else f"hay {i}"
        said.append(await sender.request(type="message", text=text, id=i))
    reader = await json_client(two.addresses[0], "reader")
    # The 8 newest entries are scanned (chunks of 4): one needle (5), then the bound.
    first = await reader.request(type="history", query="needle")
    assert [m["msgid"] for m in first["messages"]] == [said[5]["msgid"]]
    assert first["more"] is True
    # Paging on from the needle found scans the older ones: the last needle, the start.
    rest = await reader.request(type="history", query="needle", before=said[5]["msgid"])
    assert [m["msgid"] for m in rest["messages"]] == [said[0]["msgid"]]
    assert rest["more"] is False
    # Nothing found within the bound: an empty page that still says more.
    none = await reader.request(type="history", query="haystack", before=said[0]["msgid"])
    assert (none["messages"], none["more"]) == ([], False)
    far = await reader.request(type="history", query="absent")
    assert (far["messages"], far["more"]) == ([], True)
    # It says how far back it searched (the 8th newest): asked again from there, the
    # rest is searched, to the start.
    assert far["before"] == said[4]["msgid"] and first["before"] == said[4]["msgid"]
    rest = await reader.request(type="history", query="absent", before=far["before"])
    assert (rest["messages"], rest["more"], "before" in rest) == ([], False, False)


async def test_search_while_redis_is_down_is_unavailable(
    two_nodes: tuple[RedisServer, list[Server]],
) -> None:
    redis, (one, _) = two_nodes
    client = await json_client(one.addresses[0], "alex")
    assert (await client.request(type="message", text="before the outage"))["type"] == "ok"
    redis.stop()
    reply = await client.request(type="history", query="outage", id="q")
    assert (reply["type"], reply["id"], reply["code"]) == ("error", "q", "unavailable")
