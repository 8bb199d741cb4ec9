"""A store that cannot write waits between its tries: its writer thread must not spin.

(Found in a test run: with retention on, the purge's deadline was still counted while
the store failed but the purge itself was skipped, so the writer thread's wait was zero
and it took a whole core until the store wrote again.)"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from tests.support import close_open_clients, json_client, start_server_process


def cpu_seconds(pid: int) -> float:
    """User and system time the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_a_store_that_cannot_write_does_not_spin(tmp_path: Path) -> None:
    db = tmp_path / "imkit.db"
    server = start_server_process("--db", str(db), "--rate", "0")
    try:
        sender = await json_client(server.address, "sender")
        assert (await sender.request(type="message", text="stored"))["type"] == "ok"
        db.unlink()  # the writer's file check finds it within a second, and fails
        with anyio.fail_after(10):
            while (await sender.request(type="message", text="x"))["type"] == "ok":
                await anyio.sleep(0.2)
        await anyio.sleep(1.5)  # past the retention purge's first deadline
        before = cpu_seconds(server.proc.pid)
        await anyio.sleep(3.0)
        used = cpu_seconds(server.proc.pid) - before
        # Idle but for one probe a second: a few milliseconds. Spinning: about 3 s.
        assert used < 1.0, f"the idle server used {used:.2f} s of CPU in 3 s"
    finally:
        await close_open_clients()
        server.proc.kill()
        server.proc.wait(10)
