"""`imkit account add/passwd/remove/list`: what each sends on the admin socket, what it
prints, its exit statuses, and how the password is asked (twice, never echoed, never an
argument) or read (--password-stdin).

Most tests talk to a stand-in admin socket that answers as the server's admin socket
does (docs/clients.md); the end-to-end ones, at the end, to a real `imkit serve`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from imkit.cli import main
from tests.support.accounts import AccountsServer, start_accounts_server

Json = dict[str, Any]


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


# ------------------------------------------------------------------------------ add


# --------------------------------------------------------------------------- passwd


# --------------------------------------------------------------------------- remove


# ----------------------------------------------------------------------------- list


# -------------------------------------------------------------------- no server, usage


# ---------------------------------------------------------------- end to end (a server)


@pytest.fixture
def real(short_dir: Path) -> Iterator[AccountsServer]:
    server = start_accounts_server(short_dir)
    yield server
    server.stop()


def test_password_is_never_an_option() -> None:
    result = CliRunner().invoke(main, ["account", "add", "alex", "--password", "x"])
    assert result.exit_code == 2
    assert "No such option '--password'" in result.output


@pytest.mark.parametrize(
    "args",
    [["account"], ["account", "add"], ["account", "remove"], ["account", "nope"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2


def test_help_lists_the_subcommands() -> None:
    result = CliRunner().invoke(main, ["account", "--help"], terminal_width=100)
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n", 1)[1].split()
    assert {"add", "passwd", "remove", "list"} <= set(commands)
