"""The admin socket over a real server and a real Unix socket: who, kick, stats, and who
may use it.

Here the tests that need an in-process server on loopback; the others are in
process/test_admin.py."""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
import tempfile
from pathlib import Path

import anyio
import pytest

from imkit.client import admin as admin_client
from imkit.errors import AdminError, AdminUnavailable, ServeError
from imkit.server import Server, ServerConfig
from tests.support import run_server


async def test_socket_is_private(admin_server: Server) -> None:
    assert admin_server.admin_socket is not None
    path = admin_server.admin_socket.path
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700


async def test_socket_file_is_removed_on_shutdown(short_dir: Path) -> None:
    path = short_dir / "admin.sock"
    async with run_server(ServerConfig(port=0, admin_socket=str(path))):
        assert path.exists()
    assert not path.exists()


async def test_default_path_is_per_port_and_private(
    monkeypatch: pytest.MonkeyPatch, short_dir: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    assert admin_client.default_path(8888) == short_dir / "imkit" / "admin-8888.sock"
    assert admin_client.default_path(8888) != admin_client.default_path(8889)
    async with run_server(ServerConfig(port=0, idle_timeout=0)) as server:
        assert server.admin_socket is not None
        port = int(server.addresses[0].rsplit(":", 1)[1])
        assert server.admin_socket.path == short_dir / "imkit" / f"admin-{port}.sock"
        assert stat.S_IMODE(os.stat(short_dir / "imkit").st_mode) == 0o700
        reply = await admin_client.request(admin_client.default_path(port), {"type": "who"})
        assert reply == {"type": "users", "users": []}
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert (
        admin_client.default_path(1)
        == Path(tempfile.gettempdir()) / f"imkit-{os.getuid()}" / "admin-1.sock"
    )


async def test_a_live_socket_refuses_a_second_server(admin_server: Server) -> None:
    assert admin_server.admin_socket is not None
    second = Server(ServerConfig(port=0, admin_socket=str(admin_server.admin_socket.path)))
    with pytest.raises(ServeError, match="another imkit server is running"):
        await second.listen()
    # and the first one still answers
    assert (await admin_client.request(admin_server.admin_socket.path, {"type": "stats"}))[
        "type"
    ] == "stats"


async def test_a_stale_socket_is_replaced(short_dir: Path) -> None:
    path = short_dir / "admin.sock"
    crashed = socket.socket(socket.AF_UNIX)
    crashed.bind(str(path))  # a socket file nobody listens on, as after a crash
    crashed.close()
    async with run_server(ServerConfig(port=0, admin_socket=str(path))) as server:
        assert (await admin_client.request(path, {"type": "who"}))["users"] == []
        assert server.admin_socket is not None


async def test_a_regular_file_is_never_replaced(short_dir: Path) -> None:
    path = short_dir / "admin.sock"
    path.write_text("precious")
    with pytest.raises(ServeError, match="not a socket"):
        await Server(ServerConfig(port=0, admin_socket=str(path))).listen()
    assert path.read_text() == "precious"


async def test_a_folder_others_can_enter_is_refused(short_dir: Path) -> None:
    os.chmod(short_dir, 0o755)
    with pytest.raises(ServeError, match="others may enter it"):
        await Server(ServerConfig(port=0, admin_socket=str(short_dir / "a.sock"))).listen()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
async def test_another_user_is_refused(admin_server: Server) -> None:
    assert admin_server.admin_socket is not None
    path = admin_server.admin_socket.path
    nobody = pwd.getpwnam("nobody")

    def as_nobody() -> str:
        # Fork, become nobody, connect, and report what happened through a pipe.
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            try:
                os.close(read_end)
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                try:
                    with socket.socket(socket.AF_UNIX) as sock:
                        sock.settimeout(5)
                        sock.connect(str(path))
                        sock.sendall(b'{"type":"who"}\n')
                        outcome = sock.recv(4096).decode() or "EOF"
                except OSError as error:
                    outcome = type(error).__name__
                os.write(write_end, outcome.encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            outcome = pipe.read()
        os.waitpid(pid, 0)
        return outcome

    # The file system alone keeps nobody out: the folder is 0700, the socket 0600.
    assert await anyio.to_thread.run_sync(as_nobody) == "PermissionError"
    # Open both up, and the server's own credential check still refuses.
    os.chmod(path.parent, 0o755)
    os.chmod(path, 0o666)
    reply = json.loads(await anyio.to_thread.run_sync(as_nobody))
    assert reply == {"type": "error", "code": "permission_denied", "message": "permission denied"}


async def test_bad_admin_requests_get_errors(admin_server: Server) -> None:
    assert admin_server.admin_socket is not None
    path = admin_server.admin_socket.path
    with pytest.raises(AdminError, match="unknown request type"):
        await admin_client.request(path, {"type": "explode"})
    with pytest.raises(AdminError, match="string 'name'"):
        await admin_client.request(path, {"type": "kick", "name": 5})
    stream = await anyio.connect_unix(path)
    await stream.send(b"not json\n" + b"x" * 5000 + b"\n")
    replies = b""
    while replies.count(b"\n") < 2:
        replies += await stream.receive()
    assert [json.loads(line)["code"] for line in replies.splitlines()] == ["bad_request"] * 2
    await stream.aclose()


async def test_admin_unavailable_when_nothing_listens(short_dir: Path) -> None:
    with pytest.raises(AdminUnavailable):
        await admin_client.request(short_dir / "nothing.sock", {"type": "who"})
