"""`imkit send` as a subprocess: public, private, stdin, and every exit status."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from imkit.client.library import ChatMessage, connect
from tests.support import ServerProcess, imkit_env, run_imkit, split_addr
from tests.support.accounts import AccountsServer, start_accounts_server
from tests.support.scripted import Json, ScriptedServer, Session


def send(address: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    host, port = split_addr(address)
    return run_imkit("send", "--host", host, "--port", str(port), *args, stdin=stdin)


class Listener:
    """A raw text client that collects lines (as netcat would)."""

    def __init__(self, address: str, name: str) -> None:
        self.sock = socket.create_connection(split_addr(address), timeout=10)
        self.buffer = b""
        self.sock.sendall(f"rename|{name}\n".encode())
        self.until("you have updated user name")

    def until(self, text: str) -> str:
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                decoded = line.decode()
                if text in decoded:
                    return decoded
                continue
            chunk = self.sock.recv(65536)
            assert chunk, "EOF"
            self.buffer += chunk


def test_public_message_words_are_joined(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--as", "ci", "build", "finished", "✓")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert alex.until("build finished").endswith("]ci:build finished ✓")


def test_private_message(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--to", "alex", "build finished")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert alex.until("say:").endswith(" say: build finished")


def test_stdin_sends_each_line_as_one_message(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--to", "alex", "-v", "-", stdin="one two\n\nthree\r\n")
    assert result.returncode == 0
    assert result.stdout == "sent to alex: one two\nsent to alex: three\n"
    assert alex.until("say:").endswith("say: one two")
    assert alex.until("say:").endswith("say: three")


def test_unknown_recipient_exits_1_with_the_reason(server_process: ServerProcess) -> None:
    result = send(server_process.address, "--to", "nobody", "hello")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "Error: no user named 'nobody' is online\n"


def test_taken_name_exits_1(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--as", "ALEX", "hello")
    alex.sock.close()
    assert result.returncode == 1
    assert result.stderr == "Error: the name 'ALEX' is taken\n"


def test_refusal_stops_the_rest(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    long_line = "x" * 5000  # over the server's --max-line
    result = send(server_process.address, "--to", "alex", "-", stdin=f"first\n{long_line}\nthird\n")
    assert result.returncode == 1
    assert "line too long" in result.stderr
    assert alex.until("say:").endswith("say: first")
    alex.sock.sendall(b"who\n")
    alex.until("online...")  # the next thing alex sees is its own who, not "third"


def test_usage_errors_exit_2(server_process: ServerProcess) -> None:
    assert send(server_process.address).returncode == 2
    result = send(server_process.address, "-", "extra")
    assert result.returncode == 2
    assert "must be the only MESSAGE" in result.stderr


def test_no_server_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        result = send(f"127.0.0.1:{port}", "hello")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == f"Error: cannot connect to 127.0.0.1:{port}: Connection refused\n"


def test_timeout_exits_3() -> None:
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        port = mute.getsockname()[1]
        result = send(f"127.0.0.1:{port}", "--timeout", "0.5", "hello")
    assert result.returncode == 3
    assert result.stderr == "Error: timed out after 0.5s waiting for the server\n"


# ------------------------------------------------------------------- accounts (--login)
# What send does with --login is checked against a stand-in server
# (tests/support/scripted.py): the hello it sends, and what it makes of each reply.


def test_login_password_stdin_with_dash_is_a_usage_error() -> None:
    result = send("127.0.0.1:1", "--login", "ci", "--login-password-stdin", "-", stdin="pw\n")
    assert result.returncode == 2
    assert result.stderr == (
        "Error: --login-password-stdin and - both read standard input: give the message"
        " as words, or the password in IMKIT_LOGIN_PASSWORD\n"
    )


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--login-password-stdin", "hi"], "--login-password-stdin goes with --login NAME"),
        (
            ["--login", "ci", "--as", "bot", "hi"],
            "--as and --login cannot go together: a login takes the account's name",
        ),
        (
            ["--login", "ci", "hi"],  # standard input is a pipe, and no variable
            "--login needs the account's password: --login-password-stdin or IMKIT_LOGIN_PASSWORD",
        ),
        (
            ["--login", "ci", "--login-password-stdin", "hi"],
            "no login password on standard input: its first line is empty",
        ),
    ],
)
def test_login_usage_errors_exit_2(args: list[str], why: str) -> None:
    result = send("127.0.0.1:1", *args, stdin="")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"Error: {why}\n")


def test_empty_login_password_variable_exits_2() -> None:
    host, port = "127.0.0.1", "1"
    result = run_imkit(
        "send",
        *("--host", host, "--port", port, "--login", "ci", "hi"),
        env=imkit_env(IMKIT_LOGIN_PASSWORD=""),
    )
    assert result.returncode == 2
    assert "IMKIT_LOGIN_PASSWORD is set but empty" in result.stderr


def test_login_no_server_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        address = f"127.0.0.1:{port}"
        result = send(address, "--login", "ci", "--login-password-stdin", "hi", stdin="pw\n")
    assert result.returncode == 3
    assert result.stderr == f"Error: cannot connect to {address}: Connection refused\n"


@pytest.fixture
def stand_in() -> Iterator[ScriptedServer]:
    def answer(request: Json, session: Session) -> list[Json] | None:
        if request["type"] == "hello" and request.get("login", {}).get("password") == "bad":
            return [
                {
                    "type": "error",
                    "id": request["id"],
                    "code": "login_failed",
                    "message": "wrong name or password",
                }
            ]
        if request["type"] == "message" and request.get("to") == "alex":  # offline: kept
            return [
                {"type": "ok", "id": request["id"], "msgid": "1795764673091001", "queued": True}
            ]
        return None

    server = ScriptedServer(answer)
    yield server
    server.close()


def test_login_password_stdin_logs_in_with_the_hello(stand_in: ScriptedServer) -> None:
    args = ["--login", "ci", "--login-password-stdin", "--password", "server-pw", "deploy done"]
    result = send(stand_in.address, *args, stdin="s3cret\nnot read\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    (hello,) = stand_in.of_type("hello")
    assert hello["login"] == {"name": "ci", "password": "s3cret"}
    assert hello["password"] == "server-pw"  # --password stays the server's
    assert [m["text"] for m in stand_in.of_type("message")] == ["deploy done"]


def test_login_password_from_the_variable_and_lines_from_stdin(stand_in: ScriptedServer) -> None:
    host, port = split_addr(stand_in.address)
    result = run_imkit(
        *("send", "--host", host, "--port", str(port), "--login", "ci", "-"),
        env=imkit_env(IMKIT_LOGIN_PASSWORD="from-env"),
        stdin="one\ntwo\n",
    )
    assert (result.returncode, result.stderr) == (0, "")
    (hello,) = stand_in.of_type("hello")
    assert hello["login"] == {"name": "ci", "password": "from-env"}
    assert [m["text"] for m in stand_in.of_type("message")] == ["one", "two"]


def test_failed_login_exits_1(stand_in: ScriptedServer) -> None:
    result = send(stand_in.address, "--login", "ci", "--login-password-stdin", "x", stdin="bad\n")
    assert (result.returncode, result.stderr) == (1, "Error: wrong name or password\n")
    assert stand_in.of_type("message") == []


def test_a_message_kept_for_an_offline_account_exits_0_and_says_so(
    stand_in: ScriptedServer,
) -> None:
    result = send(stand_in.address, "--to", "alex", "-v", "deploy done")
    assert result.returncode == 0
    assert result.stderr == ("alex is offline; the message will be delivered when alex logs in\n")
    assert result.stdout == "kept for alex: deploy done\n"


def test_offline_is_said_once_for_many_lines(stand_in: ScriptedServer) -> None:
    result = send(stand_in.address, "--to", "alex", "-", stdin="one\ntwo\nthree\n")
    assert result.returncode == 0
    assert result.stderr.count("alex is offline") == 1
    assert len(stand_in.of_type("message")) == 3


# ---------------------------------------------------------------- end to end (a server)


@pytest.fixture
def real(real: AccountsServer) -> AccountsServer:
    """tests/process/conftest.py's server, with the accounts these tests log in to."""
    real.add("alex", "pw-alex")
    real.add("ci", "pw-ci")
    return real


def test_login_and_a_message_kept_for_an_offline_account(real: AccountsServer) -> None:
    args = ["--login", "ci", "--login-password-stdin", "--to", "alex", "deploy done"]
    result = send(real.address, *args, stdin="pw-ci\n")
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == "alex is offline; the message will be delivered when alex logs in\n"
    alex = socket.create_connection(split_addr(real.address), timeout=10)
    alex.sendall(b"login|alex|pw-alex\n")
    lines = alex.makefile("r", encoding="utf-8")
    assert lines.readline().endswith(":user is online\n")  # its own arrival, as a guest
    assert lines.readline() == "you have logged in as alex\n"
    assert re.fullmatch(r"past \S+ ci say: deploy done\n", lines.readline())
    alex.close()


def test_logged_in_sender_is_seen_with_its_account(real: AccountsServer) -> None:
    async def listen_then_send() -> tuple[str | None, int]:
        host, port = split_addr(real.address)
        async with connect(host, port, name="listener") as listener:
            args = ["--login", "ci", "--login-password-stdin", "build green"]
            result = await anyio.to_thread.run_sync(
                lambda: send(real.address, *args, stdin="pw-ci\n")
            )
            with anyio.fail_after(10):
                async for event in listener.events():
                    if isinstance(event, ChatMessage) and event.text == "build green":
                        return event.account, result.returncode
        raise AssertionError("unreachable")

    assert anyio.run(listen_then_send) == ("ci", 0)


def test_wrong_login_password_exits_1(real: AccountsServer) -> None:
    args = ["--login", "ci", "--login-password-stdin", "hello"]
    result = send(real.address, *args, stdin="wrong\n")
    assert (result.returncode, result.stderr) == (1, "Error: wrong name or password\n")


def test_a_reserved_name_with_as_exits_1(real: AccountsServer) -> None:
    result = send(real.address, "--as", "CI", "hello")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "ci" in result.stderr.lower()


def test_accounts_only_server(short_dir: Path) -> None:
    server = start_accounts_server(short_dir, "--accounts-only")
    try:
        server.add("ci", "pw-ci")
        result = send(server.address, "hello")
        assert result.returncode == 1
        assert result.stderr.startswith("Error: log in first")
        env = imkit_env(IMKIT_LOGIN_PASSWORD="pw-ci")
        host, port = split_addr(server.address)
        result = run_imkit(
            *("send", "--host", host, "--port", str(port), "--login", "ci", "hello"), env=env
        )
        assert (result.returncode, result.stderr) == (0, "")
    finally:
        server.stop()
