"""Shared fixtures (a real imkit server on a free loopback port, in-process or as a
subprocess; a real redis-server and cluster nodes on it), and the one hook that marks
each test by the folder it is in (CONTRIBUTING.md, "Tests").

The helpers the tests call are in tests/support/; fixtures stay in conftest.py files."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

pytest.register_assert_rewrite("tests.support")

from imkit.hub import Hub  # noqa: E402
from imkit.server import Server, ServerConfig  # noqa: E402
from tests.support import (  # noqa: E402
    Clock,
    ServerProcess,
    close_open_clients,
    run_server,
    start_server_process,
)
from tests.support.accounts import config as accounts_config  # noqa: E402
from tests.support.cluster import (  # noqa: E402
    HAVE_REDIS,
    Cluster,
    RedisServer,
    running_redis,
)
from tests.support.history_clients import db_config  # noqa: E402

TESTS = Path(__file__).resolve().parent
# A test's level is the folder it is in: what it needs to run. Each gives its marker.
LEVELS = ("unit", "server", "process", "cluster", "browser", "slow")
# tests/behaviour runs every test on one node (marked server) and on two (cluster).
BOTH = "behaviour"
NO_REDIS = pytest.mark.skip(
    reason="redis-server is not installed (Debian package redis-server; .ci/run installs it)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.resolve().relative_to(TESTS).parts[0]
        if folder == BOTH:
            callspec = getattr(item, "callspec", None)
            params = {} if callspec is None else callspec.params
            two = "two nodes" in (params.get("chat"), params.get("irc_chat"))
            level = "cluster" if two else "server"
        elif folder in LEVELS:
            level = folder
        else:
            raise pytest.UsageError(
                f"{item.nodeid}: a test goes in the folder of what it needs: "
                f"tests/{{{','.join(LEVELS)}}} or tests/{BOTH} (CONTRIBUTING.md)"
            )
        item.add_marker(getattr(pytest.mark, level))
        if level == "cluster" and not HAVE_REDIS:
            item.add_marker(NO_REDIS)


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


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port, stopped (and its folder removed) after."""
    if not HAVE_REDIS:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    with running_redis() as server:
        yield server


@pytest.fixture
async def cluster(redis_server: RedisServer) -> AsyncIterator[Cluster]:
    """A cluster name of this test's own on this test's Redis; its nodes are stopped
    after the test, after the clients it left open (so that no node waits for them)."""
    folder = Path(tempfile.mkdtemp(prefix="imkit-c-", dir="/tmp"))
    os.chmod(folder, 0o700)
    group = Cluster(redis_server, folder)
    try:
        yield group
    finally:
        await close_open_clients()
        await anyio.to_thread.run_sync(group.stop)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def db_server(tmp_path: Path) -> AsyncIterator[Server]:
    """An in-process server keeping history in tmp_path/h.db."""
    async with run_server(db_config(tmp_path)) as server:
        yield server


@pytest.fixture
async def admin_server(short_dir: Path) -> AsyncIterator[Server]:
    config = ServerConfig(port=0, idle_timeout=0, admin_socket=str(short_dir / "admin.sock"))
    async with run_server(config) as server:
        yield server


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def accounts_server(clock: Clock, short_dir: Path) -> AsyncIterator[Server]:
    """In process, with accounts (a cheap hash cost) and the test's clock as wall clock:
    the accounts tests of tests/server and tests/process."""
    async with run_server(accounts_config(short_dir), Hub(wall_clock=clock)) as running:
        yield running


@pytest.fixture
async def moderation_server(clock: Clock, short_dir: Path) -> AsyncIterator[Server]:
    """In process, unlimited rate, the test's clock as wall clock: the moderation tests
    of tests/server and tests/process (bans and mutes end by that clock)."""
    config = ServerConfig(
        port=0, db="none", idle_timeout=0, rate=0, admin_socket=str(short_dir / "a.sock")
    )
    async with run_server(config, Hub(wall_clock=clock)) as running:
        yield running
