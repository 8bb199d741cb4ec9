"""`imkit account add/passwd/remove/list`: what each sends on the admin socket, what it
prints, its exit statuses, and how the password is asked (twice, never echoed, never an
argument) or read (--password-stdin).

Most tests talk to a stand-in admin socket that answers as the server's admin socket
does (docs/clients.md); the end-to-end ones, at the end, to a real `imkit serve`.

Here the tests that run imkit subprocesses; the others are in
server/test_account_cli.py, unit/test_account_cli.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import anyio

from tests.support import run_imkit
from tests.support.accounts import AccountsServer

# -------------------------------------------------------------------- no server, usage


def _env(short_dir: Path) -> dict[str, str]:
    from tests.support import imkit_env

    return imkit_env(XDG_RUNTIME_DIR=str(short_dir))


# ---------------------------------------------------------------- end to end (a server)


def _login(name: str, password: str, server: AccountsServer) -> str:
    """The account logged in to, or the error code."""
    from imkit.client.library import connect
    from imkit.errors import ServerError

    async def attempt() -> str:
        try:
            async with connect(server.host, server.port, login=(name, password)) as client:
                return client.account or ""
        except ServerError as error:
            return error.code

    return anyio.run(attempt)


def test_no_server_on_the_default_socket_of_a_port(short_dir: Path) -> None:
    # as a subprocess: the real command line, its real streams
    result = run_imkit("account", "list", "--port", "1", env=_env(short_dir))
    assert result.returncode == 3
    assert result.stderr.startswith("Error: no imkit server answers on ")


def test_add_list_passwd_remove_on_a_server(real: AccountsServer) -> None:
    real.add("alex", "first")
    assert real.account("add", "ALEX", "--password-stdin", stdin="x\n") == (
        1,
        "",
        "Error: there is an account named alex already\n",
    )
    status, out, _ = real.account("list")
    assert status == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "CREATED", "LAST", "LOGIN", "WAITING"]
    assert row.split()[0] == "alex" and row.split()[-2:] == ["-", "0"]

    # the password works, then a new one set by the operator replaces it
    assert _login("alex", "first", real) == "alex"
    assert real.account("passwd", "Alex", "--password-stdin", stdin="second\n") == (
        0,
        "changed the password of alex\n",
        "",
    )
    assert _login("alex", "first", real) == "login_failed"
    assert _login("alex", "second", real) == "alex"
    (listed,) = json.loads(real.account("list", "--json")[1])
    assert listed["name"] == "alex" and listed["last_login"] is not None

    assert real.account("remove", "alex") == (
        0,
        "removed account alex; 0 users logged out, 0 waiting messages discarded\n",
        "",
    )
    assert real.account("remove", "alex") == (1, "", "Error: no account named 'alex'\n")
    assert real.account("passwd", "alex", "--password-stdin", stdin="x\n")[0] == 1
    assert real.account("list") == (0, "NAME  CREATED  LAST LOGIN  WAITING\n", "")


def test_adding_an_account_renames_the_guest_and_remove_logs_out(real: AccountsServer) -> None:
    guest = socket.create_connection((real.host, real.port), timeout=10)
    lines = guest.makefile("r", encoding="utf-8")
    guest_addr = lines.readline().split("]", 1)[0][1:]  # its own "user is online"
    guest.sendall(b"rename|sam\n")
    assert lines.readline() == "you have updated user name: sam\n"

    status, out, err = real.account("add", "sam", "--password-stdin", stdin="pw\n")
    assert (status, err) == (0, "")
    assert out == f"added account sam; the guest who was using the name is now {guest_addr}\n"
    assert (
        lines.readline()
        == f"the name sam is now reserved for an account; you are now {guest_addr}\n"
    )

    # sam logs in (on the guest's connection), two messages wait for bob
    real.add("bob")
    guest.sendall(b"login|sam|pw\n")
    assert lines.readline() == "you have logged in as sam\n"
    guest.sendall(b"to|bob|one\nto|bob|two\n")
    offline = "bob is offline; the message will be delivered when bob logs in\n"
    assert [lines.readline(), lines.readline()] == [offline, offline]
    status, out, _ = real.account("list")
    assert [r.split()[-1] for r in out.splitlines()[1:]] == ["0", "2"]  # sam, bob

    # imkit who shows the account
    who = run_imkit("who", "--admin-socket", str(real.admin_socket)).stdout.splitlines()
    assert who[0].split()[-1] == "ACCOUNT"
    assert who[1].split()[0] == "sam" and who[1].split()[-1] == "sam"

    assert real.account("remove", "bob") == (
        0,
        "removed account bob; 0 users logged out, 2 waiting messages discarded\n",
        "",
    )
    assert real.account("remove", "SAM") == (
        0,
        "removed account sam; 1 user logged out, 0 waiting messages discarded\n",
        "",
    )
    assert lines.readline() == "your account was removed by an administrator\n"
    guest.close()
