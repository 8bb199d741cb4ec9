"""A stand-in for a server's admin socket, for ``imkit account``'s own tests."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from imkit.cli import main

Json = dict[str, Any]


CREATED = "2026-11-27T07:31:13.091Z"


class AdminStandIn:
    """A Unix socket that answers one JSON request a connection, as the admin socket
    does; ``replies`` maps a request type to its reply (or a function of the request)."""

    def __init__(self, path: Path, replies: dict[str, Json | Callable[[Json], Json]]) -> None:
        self.path = path
        self.replies = replies
        self.requests: list[Json] = []
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(str(path))
        self._listener.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                with conn, conn.makefile("rb") as lines:
                    request = json.loads(lines.readline())
                    self.requests.append(request)
                    reply = self.replies.get(request["type"])
                    if callable(reply):
                        reply = reply(request)
                    if reply is None:
                        reply = {"type": "error", "code": "bad_request", "message": "unknown"}
                    conn.sendall((json.dumps(reply) + "\n").encode())

    def types(self) -> list[str]:
        return [r["type"] for r in self.requests]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()


def account(fake: AdminStandIn, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        main, ["account", *args, "--admin-socket", str(fake.path)], input=stdin
    )
