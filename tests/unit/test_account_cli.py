"""`imkit account add/passwd/remove/list`: what each sends on the admin socket, what it
prints, its exit statuses, and how the password is asked (twice, never echoed, never an
argument) or read (--password-stdin).

Most tests talk to a stand-in admin socket that answers as the server's admin socket
does (docs/clients.md); the end-to-end ones, at the end, to a real `imkit serve`.

Here the tests that need no sockets and no subprocesses; the others are in
process/test_account_cli.py, server/test_account_cli.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from imkit.cli import main

# ---------------------------------------------------------------- end to end (a server)


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
