"""``imkit account add``, ``passwd``, ``remove`` and ``list``: the accounts of the
running server (every node of a cluster), through its admin socket.

A password is never an argument (it would show in ``ps`` and in shell history): it is
typed twice without echo, or read from the first line of standard input with
``--password-stdin``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from imkit.cli.options import TEXT, Refused, Usage, ask_password, option, password_from_stdin
from imkit.cli.server_admin import _admin_options, _admin_request, _table
from imkit.client.output import write_line

# Not read from a variable, as the other options are: a flag's variable left set in an
# environment would make a later command wait for a line on standard input.
_PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)


@click.group(short_help="Manage accounts: add, passwd, remove, list.")
def account() -> None:
    """Manage the accounts of the running server, through its admin socket.

    An account reserves a name: only someone logged in to it (imkit chat --login NAME,
    imkit send --login NAME, or login|NAME|PASSWORD in text mode) may use it. Private
    messages to an account that is offline wait for its next login.
    """


def _accounts(port: int, admin_socket: str | None) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = _admin_request(port, admin_socket, {"type": "accounts"})[
        "accounts"
    ]
    return accounts


def _find(accounts: list[dict[str, Any]], name: str) -> str | None:
    """The name of the account that ``name`` is (case and look-alikes ignored), if any."""
    from imkit.rules.names import name_key

    return next((a["name"] for a in accounts if name_key(a["name"]) == name_key(name)), None)


def _new_password(name: str, password_stdin: bool) -> str:
    from imkit.rules.accounts import password_problem

    if password_stdin:
        password = password_from_stdin("password")
    else:
        password = ask_password(f"Password for {name}", confirm=True)
    problem = password_problem(password)  # as the server would say, before it is sent
    if problem is not None:
        raise Usage(problem)
    return password


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


@account.command(short_help="Add an account (asks its password twice).")
@click.argument("name", type=TEXT)
@_PASSWORD_STDIN
@_admin_options
def add(name: str, password_stdin: bool, port: int, admin_socket: str | None) -> None:
    """Add the account NAME, asking its password twice without echo (or reading it from
    standard input with --password-stdin). NAME follows the rules of every name; case
    and look-alikes are ignored, so Alex and alex are one account.

    A guest who is using the name right now is renamed to its default name and told
    why, so that a reserved name is never held by a guest.

    \b
    Exit status: 0 added; 1 refused (the account exists, the store cannot write); 2
    usage error (an invalid name, an empty password, the two differ); 3 no server
    answers on the admin socket.
    """
    from imkit.rules.names import name_problem

    problem = name_problem(name)
    if problem is not None:
        raise Usage(f"invalid name {name!r}: {problem}")
    # Before the password is asked: whether anything answers, and whether it is new.
    existing = _find(_accounts(port, admin_socket), name)
    if existing is not None:
        raise Refused(f"there is an account named {existing} already")
    password = _new_password(name, password_stdin)
    payload = {"type": "account_add", "name": name, "password": password}
    reply = _admin_request(port, admin_socket, payload)
    line = f"added account {reply.get('name', name)}"
    if reply.get("renamed"):
        line += f"; the guest who was using the name is now {reply['renamed']}"
    write_line(line)


@account.command(short_help="Set an account's password (asks it twice).")
@click.argument("name", type=TEXT)
@_PASSWORD_STDIN
@_admin_options
def passwd(name: str, password_stdin: bool, port: int, admin_socket: str | None) -> None:
    """Set the password of the account NAME, asking the new one twice without echo (or
    reading it from standard input with --password-stdin).
    A user changes its own password in imkit chat, or with passwd|OLD|NEW.

    \b
    Exit status: 0 changed; 1 refused (no such account, the store cannot write); 2
    usage error (an empty password, the two differ); 3 no server answers.
    """
    if _find(_accounts(port, admin_socket), name) is None:
        raise Refused(f"no account named {name!r}")
    password = _new_password(name, password_stdin)
    payload = {"type": "account_passwd", "name": name, "password": password}
    reply = _admin_request(port, admin_socket, payload)
    write_line(f"changed the password of {reply.get('name', name)}")


@account.command(short_help="Remove an account; its user is logged out.")
@click.argument("name", type=TEXT)
@_admin_options
def remove(name: str, port: int, admin_socket: str | None) -> None:
    """Remove the account NAME: its user, if online, is logged out (a bye with reason
    account_removed) and the private messages waiting for it are discarded. The name
    is free again.

    \b
    Exit status: 0 removed (it says how many users were logged out and how many
    waiting messages were discarded); 1 refused (no such account, the store cannot
    write); 2 usage error; 3 no server answers.
    """
    reply = _admin_request(port, admin_socket, {"type": "account_remove", "name": name})
    logged_out = _plural(int(reply.get("logged_out", 0)), "user")
    discarded = _plural(int(reply.get("discarded", 0)), "waiting message")
    write_line(
        f"removed account {reply.get('name', name)}; {logged_out} logged out, {discarded} discarded"
    )


@account.command("list", short_help="List the accounts.")
@_admin_options
@option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_accounts(port: int, admin_socket: str | None, as_json: bool) -> None:
    """List the accounts, oldest first: name, when it was created, when it last logged
    in (never: -), and how many private messages wait for it. Times are in UTC.

    \b
    Exit status: 0 listed; 2 usage error; 3 no server answers on the admin socket; 4
    standard output could not be written; 141 it was closed by its reader.
    """
    accounts = _accounts(port, admin_socket)
    if as_json:
        write_line(json.dumps(accounts, ensure_ascii=False, indent=2))
        return
    from imkit.client.chat import printable

    rows = [
        [printable(a["name"]), _when(a["created"]), _when(a.get("last_login")), str(a["waiting"])]
        for a in accounts
    ]
    write_line(_table(["NAME", "CREATED", "LAST LOGIN", "WAITING"], rows))


def _when(value: str | None) -> str:
    """An ISO time from the server as ``2026-11-27 07:31:13Z``; ``-`` for none."""
    from imkit.protocol import iso_time, parse_iso_time

    if not value:
        return "-"
    return iso_time(parse_iso_time(value), milliseconds=False).replace("T", " ")
