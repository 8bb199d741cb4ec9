#!/usr/bin/env python3
"""Search over 1,000,000 stored messages, and stored ingest (issue 30).

    bench/search.py [--messages 1000000] [--queries 100] [--db PATH] [--keep]
                    [--ingest-seconds 10] [--ingest-clients 8] [--json]
    bench/search.py --quick            # 50,000 messages, 20 queries: a smoke test

1. Builds a SQLite file through the store's own schema (imkit.store.schema: the
   migrations, the search index and its triggers) with ``--messages`` public messages,
   inserted in bulk (one ``executemany`` of 50,000 rows a transaction: what the store's
   writer does with a batch, without the chat): 60 % in the lobby, the rest in 20 rooms
   (``#r0`` .. ``#r18`` share 39 %, ``#small`` has 1 %), sent over the last 20 days. Each
   text is 6 to 14 words drawn from a vocabulary of 20,000 with Zipf-like weights, so
   ``the`` is in most messages and a rare word in a handful; ``deploy`` and ``failed`` are
   inserted at fixed rates (1 % and 2 %) so that the two-word query has a known answer.
   With ``--db PATH`` an existing file of that size is reused.
2. Measures search through the store's search path (``SqliteStore.search``: the writer
   thread's queue, the FTS5 query, the answer on the event loop), one query at a time,
   ``--queries`` times each kind, limit 50: a common word, a rare word (``quasar``, in
   about 20 messages), two words, an absent word, in the lobby, in a big room and in the
   small one. Prints p50/p95/p99 per
   kind and over all of them.
3. Starts ``imkit serve --db FILE`` on that file and asks the same mix as JSON
   ``history`` requests with a ``query`` over one TCP connection (from a user that
   joined ``#r3`` and ``#small``): the round trip.
4. Starts ``imkit serve`` on a fresh file and measures stored ingest: ``--ingest-clients``
   JSON clients in the lobby each keep 32 messages in flight and count the ``ok``
   replies (a message's ``ok`` comes once it is committed), for ``--ingest-seconds``
   (each message is also delivered to the other senders). Then the same on a fresh file
   whose index triggers were dropped: what keeping the index costs.

Run it from the project's virtual environment (it imports imkit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imkit.rules.msgid import MessageIds
from imkit.rules.rooms import room_key
from imkit.rules.search import query_words
from imkit.store import SqliteStore
from imkit.store.rows import INSERT
from imkit.store.schema import open_database

VOCABULARY = 20_000
ROOMS = [f"#r{i}" for i in range(19)]
BATCH = 50_000
# A word put in one message of 50,000 (about 20 of a million; 60 % of them the lobby's).
RARE, RARE_RATE = "quasar", 0.00002
DAY = 86_400.0


def words(rng: random.Random) -> list[str]:
    """The vocabulary: pronounceable made-up words, ``the`` first (the most common)."""
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    found = {"the"}
    while len(found) < VOCABULARY:
        found.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    found -= {"deploy", "failed", RARE}
    return ["the", *sorted(found - {"the"})]


def build(path: Path, count: int, seed: int = 7) -> dict[str, object]:
    """A file of ``count`` messages through the store's schema; what it holds."""
    rng = random.Random(seed)
    vocabulary = words(rng)
    weights = [1 / (rank + 1) ** 1.07 for rank in range(len(vocabulary))]
    cumulative = list(_accumulate(weights))
    connection, lock = open_database(path, fsync=False)
    ids = MessageIds()
    now = time.time()
    start = now - 20 * DAY
    step = 20 * DAY / count
    started = time.perf_counter()
    try:
        connection.execute("PRAGMA cache_size=-200000")
        for first in range(0, count, BATCH):
            rows = []
            for i in range(first, min(count, first + BATCH)):
                text = rng.choices(vocabulary, cum_weights=cumulative, k=rng.randint(6, 14))
                if rng.random() < 0.01:
                    text.insert(rng.randrange(len(text)), "deploy")
                if rng.random() < 0.02:
                    text.insert(rng.randrange(len(text)), "failed")
                if rng.random() < RARE_RATE:
                    text.insert(rng.randrange(len(text)), RARE)
                where = rng.random()
                room = None if where < 0.60 else "#small" if where < 0.61 else rng.choice(ROOMS)
                at = start + i * step
                rows.append(
                    (
                        ids.next(at),
                        at,
                        f"user{i % 500}",
                        "127.0.0.1",
                        None,
                        " ".join(text),
                        None,
                        None,
                        room,
                        None if room is None else room_key(room),
                    )
                )
            connection.execute("BEGIN")
            connection.executemany(INSERT, rows)
            connection.execute("UPDATE meta SET value = ? WHERE key = 'last_id'", (ids.last,))
            connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
        os.close(lock)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rare": RARE, "medium": vocabulary[60]}


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


def query_mix(rare: str, medium: str) -> list[tuple[str, str, str | None]]:
    """(kind, query, room key or None) for each kind measured."""
    return [
        ("common, lobby", "the", None),
        ("common, room", "the", room_key("#r3")),
        ("common, small room", "the", room_key("#small")),
        ("medium, lobby", medium, None),
        ("rare, lobby", rare, None),
        ("rare, room", rare, room_key("#r3")),
        ("two words, lobby", "deploy failed", None),
        ("two words, small room", "deploy failed", room_key("#small")),
        ("absent, lobby", "zzzqqq", None),
    ]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "n": len(ordered)}


async def store_search(path: Path, mix: list[tuple[str, str, str | None]], rounds: int) -> dict:
    store = SqliteStore(path, clock=time.time, retain_days=30)
    store.open()
    store.start()
    results: dict[str, list[float]] = {kind: [] for kind, _, _ in mix}
    found: dict[str, int] = {}
    try:
        loop = asyncio.get_running_loop()
        for _ in range(rounds):
            for kind, query, room in mix:
                answered: asyncio.Future[object] = loop.create_future()
                started = time.perf_counter()
                store.search(query_words(query), 50, None, answered.set_result, room=room)
                page = await answered
                results[kind].append(time.perf_counter() - started)
                assert not isinstance(page, str), page
                found[kind] = len(page.messages)  # type: ignore[attr-defined]
    finally:
        await store.close()
    every = [s for samples in results.values() for s in samples]
    return {
        "all": percentiles(every),
        "kinds": {k: {**percentiles(v), "found": found[k]} for k, v in results.items()},
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server(db: Path, extra: list[str] | None = None):  # type: ignore[no-untyped-def]
    port = free_port()
    imkit = shutil.which("imkit") or str(Path(sys.executable).parent / "imkit")
    command = [imkit, "serve", "--port", str(port), "--db", str(db), "--log-level", "warning"]
    command += ["--rate-exempt", "127.0.0.1", *(extra or [])]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # a large file is checked (quick_check) first
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"imkit serve did not start (status {process.poll()})")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(30)


async def json_client(port: int, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    writer.write(json.dumps({"type": "hello", "name": name}).encode() + b"\n")
    while True:  # a text-mode replay may come first, before the hello is read
        line = await reader.readline()
        if line.startswith(b"{") and json.loads(line).get("type") == "welcome":
            break
    return reader, writer


async def reply_to(reader: asyncio.StreamReader, rid: int) -> dict:
    while True:
        event = json.loads(await reader.readline())
        if event.get("id") == rid:
            return event


async def server_search(port: int, mix: list[tuple[str, str, str | None]], rounds: int) -> dict:
    """The same mix as JSON requests, from a user that joined the rooms searched."""
    reader, writer = await json_client(port, "searcher")
    rooms = {"#r3", "#small"}
    for rid, room in enumerate(sorted(rooms), start=1_000_000):
        writer.write(json.dumps({"type": "join", "room": room, "id": rid}).encode() + b"\n")
        await reply_to(reader, rid)
    names = {room_key(room): room for room in rooms}
    samples: list[float] = []
    rid = 0
    for _ in range(rounds):
        for _kind, query, key in mix:
            rid += 1
            request = {"type": "history", "query": query, "limit": 50, "id": rid}
            if key is not None:
                request["room"] = names[key]
            started = time.perf_counter()
            writer.write(json.dumps(request).encode() + b"\n")
            reply = await reply_to(reader, rid)
            samples.append(time.perf_counter() - started)
            assert reply["type"] == "history", reply
    writer.close()
    return percentiles(samples)


async def ingest(port: int, clients: int, seconds: float, window: int = 32) -> dict:
    """Messages acknowledged (stored) per second by ``clients`` JSON senders."""
    connections = [await json_client(port, f"sender{i}") for i in range(clients)]
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    async def send(index: int) -> None:
        reader, writer = connections[index]
        sent = 0
        while True:
            while sent - counts[index] < window and time.perf_counter() < stop:
                sent += 1
                line = {"type": "message", "text": f"ingest {index} {sent} deploy", "id": sent}
                writer.write(json.dumps(line).encode() + b"\n")
            if time.perf_counter() >= stop and counts[index] >= sent:
                return
            event = json.loads(await reader.readline())
            if event.get("type") == "ok":
                counts[index] += 1
            elif event.get("type") == "error":
                raise SystemExit(f"ingest refused: {event}")

    started = time.perf_counter()
    await asyncio.gather(*(send(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    for _, writer in connections:
        writer.close()
    return {"messages": sum(counts), "seconds": elapsed, "per_second": sum(counts) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100, help="rounds of the mix")
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary file")
    parser.add_argument("--ingest-seconds", type=float, default=10.0)
    parser.add_argument("--ingest-clients", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if options.quick:
        options.messages, options.queries, options.ingest_seconds = 50_000, 20, 3.0
    folder = Path(tempfile.mkdtemp(prefix="imkit-search-"))
    path = options.db or folder / "imkit.db"
    report: dict[str, object] = {"messages": options.messages}
    try:
        existing = path.exists() and _count(path) == options.messages
        built = build(path, options.messages) if not existing else _vocabulary_words()
        if not existing:
            print(f"built {options.messages:,} messages in {built['seconds']:.1f}s", flush=True)
        report["file_mb"] = round(path.stat().st_size / 1e6)
        mix = query_mix(str(built["rare"]), str(built["medium"]))
        report["store"] = asyncio.run(store_search(path, mix, options.queries))
        with server(path) as port:
            report["server"] = asyncio.run(server_search(port, mix, options.queries))
        with server(folder / "ingest.db") as port:
            report["ingest"] = asyncio.run(
                ingest(port, options.ingest_clients, options.ingest_seconds)
            )
        # The same on a file whose index triggers were dropped: what the index costs.
        bare = folder / "bare.db"
        connection, lock = open_database(bare, fsync=False)
        for trigger in ("insert", "delete", "update"):
            connection.execute(f"DROP TRIGGER messages_fts_{trigger}")
        connection.close()
        os.close(lock)
        with server(bare) as port:
            report["ingest_without_index"] = asyncio.run(
                ingest(port, options.ingest_clients, options.ingest_seconds)
            )
    finally:
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if options.json:
        print(json.dumps(report, indent=2))
        return
    _print(report)


def _count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        try:
            return int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])
        except sqlite3.Error:
            return -1


def _vocabulary_words() -> dict[str, object]:
    vocabulary = words(random.Random(7))
    return {"seconds": 0.0, "rare": RARE, "medium": vocabulary[60]}


def _print(report: dict) -> None:
    print(f"{report['messages']:,} messages, file {report['file_mb']} MB")
    store = report["store"]
    print(f"{'store search':28} {'p50':>8} {'p95':>8} {'p99':>8}  found")
    for kind, row in store["kinds"].items():
        print(
            f"  {kind:26} {row['p50_ms']:7.2f}  {row['p95_ms']:7.2f}  {row['p99_ms']:7.2f}"
            f"  {row['found']}"
        )
    every = store["all"]
    print(f"  {'all':26} {every['p50_ms']:7.2f}  {every['p95_ms']:7.2f}  {every['p99_ms']:7.2f}")
    row = report["server"]
    print(
        f"JSON history+query round trip: p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms,"
        f" p99 {row['p99_ms']:.2f} ms"
    )
    for key, what in (("ingest", "indexed"), ("ingest_without_index", "without the index")):
        rate = report[key]
        count = rate["messages"]
        print(
            f"stored ingest, {what}: {rate['per_second']:,.0f} messages/s ({count:,} acknowledged)"
        )


if __name__ == "__main__":
    main()
