"""A server with a history file, and what it has stored."""

from __future__ import annotations

from pathlib import Path

from imkit.client.library import Client
from imkit.server import Server, ServerConfig


def db_config(tmp_path: Path) -> ServerConfig:
    return ServerConfig(port=0, idle_timeout=0, rate=0, db=str(tmp_path / "h.db"))


def socket_of(server: Server) -> str:
    assert server.admin_socket is not None
    return str(server.admin_socket.path)


async def stored(client: Client, text: str) -> str:
    """Send a public message; its msgid, from the ok that came once it was stored."""
    msgid = await client.send(text)
    assert msgid is not None
    return msgid
