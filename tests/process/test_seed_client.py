"""The seed's own Go client (client.go from ../shared/seed/IM-System.md), unchanged,
against a real `imkit serve`. Skipped where Go or the seed's text is not available."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import ServerProcess, split_addr

SEED_TEXT = Path(__file__).resolve().parents[3] / "shared" / "seed" / "IM-System.md"

pytestmark = [
    pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed"),
    pytest.mark.skipif(not SEED_TEXT.exists(), reason=f"{SEED_TEXT} is not here"),
]


def seed_client_source() -> str:
    """Section "3.4 client.go" of the seed's text, without its page furniture."""
    text = SEED_TEXT.read_text()
    section = text.split("3.4 client.go", 1)[1].split("\n4、", 1)[0]
    return "\n".join(line for line in section.splitlines() if line != "点击查看代码")


@pytest.fixture(scope="module")
def seed_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("seed-client")
    (folder / "client.go").write_text(seed_client_source())
    (folder / "go.mod").write_text("module seedclient\n\ngo 1.19\n")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOCACHE": str(folder / "cache")}
    subprocess.run(
        ["go", "build", "-o", "client", "."],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder / "client"


def test_the_seeds_go_client_works_unchanged(
    seed_client: Path, server_process: ServerProcess
) -> None:
    host, port = split_addr(server_process.address)
    bob = socket.create_connection((host, port), timeout=10)
    bob.sendall(b"rename|bob\n")
    client = subprocess.Popen(
        [str(seed_client), "-ip", host, "-port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert client.stdin is not None
    # its menu, typed as a person would: rename, public chat, private chat, exit
    for keys in (
        b"3\nalice\n",
        b"1\nhello_from_go\nexit\n",
        b"2\n",
        b"bob\nhi_bob\nexit\nexit\n0\n",
    ):
        client.stdin.write(keys)
        client.stdin.flush()
        time.sleep(0.4)
    output = client.communicate(timeout=20)[0].decode()
    bob.settimeout(5)
    seen = b""
    while b"alice say: hi_bob\n" not in seen:
        chunk = bob.recv(65536)
        assert chunk, seen
        seen += chunk
    bob.close()
    assert "you have updated user name: alice" in output
    assert re.search(r"\]alice:hello_from_go", output)
    assert re.search(r"\]bob:online\.\.\.", output) and re.search(r"\]alice:online\.\.\.", output)
    assert re.search(rb"\]alice:hello_from_go\n", seen)
