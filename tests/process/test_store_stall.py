"""A disk that stops answering, for real: the database on an ext4 file system in a loop
device, frozen with ``fsfreeze -f`` under a running `imkit serve`. Needs root and loop
devices; skipped, saying why, where they are not there. The file system is always thawed
and unmounted in a ``finally``; nothing but the test's own mount is ever frozen."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from imkit.store.watchdog import STALL_TIMEOUT
from tests.support import (
    close_open_clients,
    free_port,
    json_client,
    run_imkit,
    start_server_process,
)

TOOLS = ("losetup", "mkfs.ext4", "mount", "umount", "fsfreeze")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def frozen_disk(tmp_path: Path) -> Iterator[Path]:
    """A freshly made ext4 file system, mounted from a loop device under tmp_path."""
    if os.geteuid() != 0:
        pytest.skip("a loop mount and fsfreeze need root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")
    image, mount = tmp_path / "disk.img", tmp_path / "disk"
    mount.mkdir()
    with image.open("wb") as file:
        file.truncate(64 << 20)
    made = run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mounted = run("mount", "-o", "loop", str(image), str(mount))
    if mounted.returncode != 0:
        pytest.skip(f"loop devices cannot be mounted here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        run("fsfreeze", "-u", str(mount))  # whatever happened: never left frozen
        if run("umount", str(mount)).returncode != 0:
            run("umount", "-l", str(mount))


def stats_of(port: str) -> str:
    return run_imkit("stats", "--port", port).stdout


def healthz(address: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


async def wait_for_status(address: str, status: int, within: float) -> float:
    started = time.monotonic()
    with anyio.fail_after(within):
        while await anyio.to_thread.run_sync(healthz, address) != status:
            await anyio.sleep(0.1)
    return time.monotonic() - started


async def test_a_frozen_disk_is_a_store_problem_and_history_still_answers(
    frozen_disk: Path,
) -> None:
    metrics = f"127.0.0.1:{free_port()}"
    server = start_server_process(
        "--db", str(frozen_disk / "imkit.db"), "--rate", "0", "--metrics", metrics
    )
    thawed = False
    try:
        sender = await json_client(server.address, "sender")
        watcher = await json_client(server.address, "watcher")
        assert (await sender.request(type="message", text="before"))["type"] == "ok"
        assert await anyio.to_thread.run_sync(healthz, metrics) == 200

        assert run("fsfreeze", "-f", str(frozen_disk)).returncode == 0
        started = time.monotonic()
        await sender.send(json.dumps({"type": "message", "id": "stuck", "text": "frozen"}) + "\n")
        await watcher.json_of_type("message")  # delivered: delivery never waits for the disk
        # Within the bound (and the loop's look every STALL_CHECK), the stall is a store
        # problem, and the sender is told its message is delivered but not known stored.
        with anyio.fail_after(STALL_TIMEOUT + 3):
            while (stuck := await sender.json()).get("id") != "stuck":
                pass  # its own copy of the message
        assert stuck["code"] == "unavailable", stuck
        assert stuck["delivered"] is True and "has not answered" in stuck["message"]
        assert time.monotonic() - started < STALL_TIMEOUT + 2
        await wait_for_status(metrics, 503, 3)
        port = server.address.rsplit(":", 1)[1]
        stats = await anyio.to_thread.run_sync(stats_of, port)
        assert "has not answered" in stats, stats
        refused = await sender.request(type="message", text="refused")
        assert refused["code"] == "unavailable" and "delivered" not in refused, refused
        # A client's history gets an answer, not silence.
        started = time.monotonic()
        with anyio.fail_after(STALL_TIMEOUT + 3):
            page = await watcher.request(type="history", limit=10)
        assert page["type"] == "error" and page["code"] == "unavailable", page
        assert time.monotonic() - started < STALL_TIMEOUT + 2

        assert run("fsfreeze", "-u", str(frozen_disk)).returncode == 0
        thawed = True
        # The stalled commit comes back: the problem clears, and nobody is answered twice.
        await wait_for_status(metrics, 200, 10)
        assert (await sender.request(type="message", text="after"))["type"] == "ok"
        page = await watcher.request(type="history", limit=10)
        assert [m["text"] for m in page["messages"]] == ["before", "frozen", "after"]
        # No late second answer to the message or to the history request.
        assert await sender.silent(STALL_TIMEOUT) and await watcher.silent(0.5)
    finally:
        if not thawed:
            run("fsfreeze", "-u", str(frozen_disk))
        await close_open_clients()
        assert server.stop() == 0
    log = server.stderr()
    assert log.count("has not answered for") == 1, log
    assert "Traceback" not in log
