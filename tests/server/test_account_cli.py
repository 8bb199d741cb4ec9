"""`imkit account add/passwd/remove/list`: what each sends on the admin socket, what it
prints, its exit statuses, and how the password is asked (twice, never echoed, never an
argument) or read (--password-stdin).

Most tests talk to a stand-in admin socket that answers as the server's admin socket
does (docs/clients.md); the end-to-end ones, at the end, to a real `imkit serve`.

Here the tests that need an in-process server on loopback; the others are in
process/test_account_cli.py, unit/test_account_cli.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from imkit.cli import main
from tests.support.account_cli import CREATED, AdminStandIn, Json, account


def accounts(*names: str) -> Json:
    return {
        "type": "accounts",
        "accounts": [
            {"name": n, "created": CREATED, "last_login": None, "waiting": 0} for n in names
        ],
    }


@pytest.fixture
def stand_in(short_dir: Path) -> Iterator[AdminStandIn]:
    fake = AdminStandIn(
        short_dir / "admin.sock",
        {
            "accounts": accounts("sam"),
            "account_add": lambda r: {"type": "ok", "name": r["name"], "renamed": None},
            "account_passwd": lambda r: {"type": "ok", "name": r["name"]},
        },
    )
    yield fake
    fake.close()


# ------------------------------------------------------------------------------ add


def test_add_asks_the_password_twice_without_echo(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "add", "alex", stdin="s3cret pass\ns3cret pass\n")
    assert result.exit_code == 0, result.output
    assert stand_in.requests[-1] == {
        "type": "account_add",
        "name": "alex",
        "password": "s3cret pass",
    }
    assert "Password for alex: " in result.output
    assert "The same again: " in result.output
    assert "s3cret" not in result.output  # never echoed
    assert result.output.endswith("added account alex\n")
    # first whether anything answers and the name is free, then the password
    assert stand_in.types() == ["accounts", "account_add"]


def test_add_refuses_two_passwords_that_differ(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "add", "alex", stdin="one\ntwo\n")
    assert result.exit_code == 2
    assert result.output.endswith("Error: the two passwords differ\n")
    assert "account_add" not in stand_in.types()


def test_add_refuses_an_empty_password(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "add", "alex", stdin="\n\n")
    assert result.exit_code == 2
    assert result.output.endswith("Error: the password is empty\n")
    assert "account_add" not in stand_in.types()


def test_add_without_any_input_is_a_usage_error(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "add", "alex", stdin="")
    assert result.exit_code == 2
    assert result.output.endswith("Error: no password was given\n")


def test_add_reads_one_line_with_password_stdin(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "add", "ci", "--password-stdin", stdin="p|a ss\r\nnot read\n")
    assert result.exit_code == 0, result.output
    assert result.output == "added account ci\n"  # nothing asked
    assert stand_in.requests[-1]["password"] == "p|a ss"


@pytest.mark.parametrize(
    ("stdin", "why"),
    [
        ("", "no password on standard input: its first line is empty"),
        ("\n", "no password on standard input: its first line is empty"),
    ],
)
def test_add_password_stdin_must_give_one(stand_in: AdminStandIn, stdin: str, why: str) -> None:
    result = account(stand_in, "add", "ci", "--password-stdin", stdin=stdin)
    assert result.exit_code == 2
    assert result.output == f"Error: {why}\n"
    assert "account_add" not in stand_in.types()


def test_a_password_over_the_servers_limit_is_a_usage_error(stand_in: AdminStandIn) -> None:
    from imkit.rules.accounts import MAX_PASSWORD

    long = "x" * (MAX_PASSWORD + 1)
    result = account(stand_in, "add", "ci", "--password-stdin", stdin=f"{long}\n")
    assert result.exit_code == 2
    assert result.output == f"Error: a password has at most {MAX_PASSWORD} bytes\n"
    assert "account_add" not in stand_in.types()


def test_password_stdin_that_is_not_utf8(stand_in: AdminStandIn) -> None:
    result = CliRunner().invoke(
        main,
        ["account", "add", "ci", "--password-stdin", "--admin-socket", str(stand_in.path)],
        input=b"caf\xe9\n",
    )
    assert result.exit_code == 2
    assert result.output == "Error: the password on standard input is not valid UTF-8\n"


def test_add_says_when_a_guest_was_renamed(stand_in: AdminStandIn) -> None:
    stand_in.replies["account_add"] = {"type": "ok", "name": "alex", "renamed": "127.0.0.1:50312"}
    result = account(stand_in, "add", "alex", "--password-stdin", stdin="pw\n")
    assert result.exit_code == 0
    assert result.output == (
        "added account alex; the guest who was using the name is now 127.0.0.1:50312\n"
    )


def test_add_an_existing_account_is_refused_before_the_password(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "add", "SAM")  # no input: it must not ask
    assert result.exit_code == 1
    assert result.output == "Error: there is an account named sam already\n"
    assert stand_in.types() == ["accounts"]


def test_add_an_invalid_name_is_a_usage_error(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "add", "a|b")
    assert result.exit_code == 2
    assert result.output == "Error: invalid name 'a|b': a name cannot contain '|'\n"
    assert stand_in.requests == []


def test_a_refusal_from_the_server_exits_1(stand_in: AdminStandIn) -> None:
    stand_in.replies["account_add"] = {
        "type": "error",
        "code": "account_exists",
        "message": "there is an account named alex already",
    }
    result = account(stand_in, "add", "alex", "--password-stdin", stdin="pw\n")
    assert result.exit_code == 1
    assert result.output == "Error: there is an account named alex already\n"


# --------------------------------------------------------------------------- passwd


def test_passwd_asks_twice_and_sets_it(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "passwd", "Sam", stdin="n3w\nn3w\n")
    assert result.exit_code == 0, result.output
    assert stand_in.requests[-1] == {"type": "account_passwd", "name": "Sam", "password": "n3w"}
    assert result.output.endswith("changed the password of Sam\n")
    assert "n3w" not in result.output


def test_passwd_of_no_account_is_refused_before_the_password(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "passwd", "nobody")
    assert result.exit_code == 1
    assert result.output == "Error: no account named 'nobody'\n"


def test_passwd_mismatch_is_a_usage_error(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "passwd", "sam", stdin="a\nb\n")
    assert result.exit_code == 2
    assert "account_passwd" not in stand_in.types()


# --------------------------------------------------------------------------- remove


@pytest.mark.parametrize(
    ("logged_out", "discarded", "said"),
    [
        (0, 0, "0 users logged out, 0 waiting messages discarded"),
        (1, 1, "1 user logged out, 1 waiting message discarded"),
        (2, 37, "2 users logged out, 37 waiting messages discarded"),
    ],
)
def test_remove_says_what_went(
    stand_in: AdminStandIn, logged_out: int, discarded: int, said: str
) -> None:
    stand_in.replies["account_remove"] = lambda r: {
        "type": "ok",
        "name": r["name"],
        "logged_out": logged_out,
        "discarded": discarded,
    }
    result = account(stand_in, "remove", "sam")
    assert result.exit_code == 0
    assert stand_in.requests == [{"type": "account_remove", "name": "sam"}]
    assert result.output == f"removed account sam; {said}\n"


def test_remove_no_such_account_exits_1(stand_in: AdminStandIn) -> None:
    stand_in.replies["account_remove"] = {
        "type": "error",
        "code": "no_such_account",
        "message": "no account named 'ghost'",
    }
    result = account(stand_in, "remove", "ghost")
    assert (result.exit_code, result.output) == (1, "Error: no account named 'ghost'\n")


# ----------------------------------------------------------------------------- list


def test_list_is_a_table(stand_in: AdminStandIn) -> None:
    stand_in.replies["accounts"] = {
        "type": "accounts",
        "accounts": [
            {"name": "alex", "created": CREATED, "last_login": None, "waiting": 3},
            {
                "name": "ci-bot",
                "created": "2026-11-28T09:00:00Z",
                "last_login": "2026-11-28T10:15:02.5Z",
                "waiting": 0,
            },
        ],
    }
    result = account(stand_in, "list")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "NAME    CREATED               LAST LOGIN            WAITING",
        "alex    2026-11-27 07:31:13Z  -                     3",
        "ci-bot  2026-11-28 09:00:00Z  2026-11-28 10:15:02Z  0",
    ]


def test_list_json_is_the_servers_list(stand_in: AdminStandIn) -> None:
    result = account(stand_in, "list", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == accounts("sam")["accounts"]


def test_list_of_none(stand_in: AdminStandIn) -> None:
    stand_in.replies["accounts"] = accounts()
    result = account(stand_in, "list")
    assert result.output == "NAME  CREATED  LAST LOGIN  WAITING\n"


# -------------------------------------------------------------------- no server, usage


@pytest.mark.parametrize(
    "args",
    [
        ["add", "alex"],
        ["add", "alex", "--password-stdin"],
        ["passwd", "alex"],
        ["remove", "alex"],
        ["list"],
        ["list", "--json"],
    ],
)
def test_no_server_exits_3_before_asking(short_dir: Path, args: list[str]) -> None:
    path = short_dir / "none.sock"
    result = CliRunner().invoke(main, ["account", *args, "--admin-socket", str(path)], input="")
    assert result.exit_code == 3
    assert (
        result.output == f"Error: no imkit server answers on {path} (is `imkit serve` running?)\n"
    )
