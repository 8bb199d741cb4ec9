"""Shared fixtures: a real imkit server on a free loopback port, in-process or as a
subprocess, and raw line clients that talk to it as netcat would."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

pytest.register_assert_rewrite("tests.support")

from imkit.hub.core import Hub  # noqa: E402
from imkit.server import Server, ServerConfig  # noqa: E402

# The cluster tests' fixtures: a real redis-server, and imkit nodes on it.
from tests.redis_support import cluster, redis_server  # noqa: E402, F401
from tests.support import (  # noqa: E402
    ServerProcess,
    close_open_clients,
    start_server_process,
)


@pytest.fixture(scope="session", autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A server started on a fixed port keeps its history in XDG_STATE_HOME: never in
    the home folder of whoever runs the tests (subprocesses inherit it)."""
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = old


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    folder = Path(tempfile.mkdtemp(prefix="imkit-", dir="/tmp"))
    os.chmod(folder, 0o700)
    try:
        yield folder
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture
def anyio_backend() -> str:
    # A global trio may be importable; these tests are written for asyncio.
    return "asyncio"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """An in-process server on a free port, idle timeout off."""
    async with run_server(ServerConfig(port=0, idle_timeout=0)) as srv:
        yield srv


class run_server:  # noqa: N801 - used like a function: `async with run_server(config)`
    """Run a Server in a task group for the duration of the block."""

    def __init__(self, config: ServerConfig, hub: Hub | None = None) -> None:
        self.server = Server(config, hub)

    async def __aenter__(self) -> Server:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._tg.start(self.server.serve)
        return self.server

    async def __aexit__(self, *exc: object) -> bool | None:
        await close_open_clients()
        self.server.stop()
        return await self._tg.__aexit__(*exc)  # type: ignore[arg-type]


@pytest.fixture
def server_process() -> Iterator[ServerProcess]:
    """``imkit serve`` as a subprocess on a free port."""
    proc = start_server_process("--idle-timeout", "0")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private CA (trustme) and a server certificate for localhost and 127.0.0.1."""
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    return {name: str(path) for name, path in paths.items()}
