#!/usr/bin/env python3
"""1,000 logins at once, as after a restart, at imkit's password hashing cost.

    bench/logins.py [--count 1000] [--cost 14]

Starts `imkit serve --db none --password-hash-cost COST` on a free port, adds one
account, then opens COUNT connections, each from its own loopback address (127.0.0.2,
127.0.0.3 ...: the failed-login limit counts per address) and each sending one login
with a wrong password at the same moment, so that every login costs one full scrypt
hash. Meanwhile one more client pings the server every 50 ms. Prints how long until
every login was answered, and the slowest ping round trip: the chat's responsiveness
while passwords hash (docs/accounts.md, "Passwords").

Standard library only; run it from the project's virtual environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time


async def login(host: str, port: int, source: str) -> None:
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    await reader.readline()  # its own online line
    writer.write(b"login|bench|wrong\n")
    await writer.drain()
    while not (await reader.readline()).startswith(b"error:"):
        pass
    writer.close()


async def pinger(host: str, port: int, stop: asyncio.Event, worst: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b'{"type":"hello"}\n')
    await reader.readline()
    while not stop.is_set():
        started = time.perf_counter()
        writer.write(b'{"type":"ping","id":1}\n')
        await writer.drain()
        while b'"pong"' not in await reader.readline():
            pass
        worst.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    writer.close()


async def admin(path: str, request: dict[str, object]) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(json.dumps(request).encode() + b"\n")
    reply = json.loads(await reader.readline())
    writer.close()
    assert isinstance(reply, dict)
    return reply


def start_server(count: int, cost: int, sock: str) -> tuple[subprocess.Popen[str], int]:
    """``imkit serve`` on a free port, and that port (from the line it logs)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "imkit", "serve", "--port", "0", "--db", "none"]
        + ["--password-hash-cost", str(cost), "--admin-socket", sock, "--rate", "0"]
        + ["--max-clients", str(count + 10), "--idle-timeout", "0", "--connect-rate", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stderr is not None
    for line in server.stderr:
        found = re.search(r"listening on \S+:(\d+)", line)
        if found:
            # Its log must be read on, or a full pipe would stall the server.
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, int(found.group(1))
    raise SystemExit("imkit serve did not start")


async def measure(port: int, sock: str, count: int, cost: int) -> None:
    await admin(sock, {"type": "account_add", "name": "bench", "password": "right"})
    stop, worst = asyncio.Event(), []
    ping_task = asyncio.create_task(pinger("127.0.0.1", port, stop, worst))
    sources = [f"127.0.{2 + n // 250}.{1 + n % 250}" for n in range(count)]
    started = time.perf_counter()
    await asyncio.gather(*(login("127.0.0.1", port, s) for s in sources))
    took = time.perf_counter() - started
    stop.set()
    await ping_task
    print(
        f"{count} logins at cost {cost} (N=2^{cost}): {took:.1f} s"
        f" ({count / took:.0f}/s); slowest ping meanwhile {max(worst) * 1000:.0f} ms,"
        f" median {sorted(worst)[len(worst) // 2] * 1000:.1f} ms ({len(worst)} pings)"
    )


def main(count: int, cost: int) -> None:
    folder = tempfile.mkdtemp(prefix="imkit-bench-")
    os.chmod(folder, 0o700)
    sock = os.path.join(folder, "a.sock")
    server, port = start_server(count, cost, sock)
    try:
        asyncio.run(measure(port, sock, count, cost))
    finally:
        server.terminate()
        server.communicate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--cost", type=int, default=14)
    options = parser.parse_args()
    main(options.count, options.cost)
