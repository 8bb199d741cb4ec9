"""The commands against hostile surroundings, as real subprocesses: closed or full
standard streams, empty secrets and paths, absurd numbers, IPv6 hosts and bytes that
are not UTF-8. Every case ends in one line on stderr (or none) and a documented exit
status, never a traceback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    IMKIT,
    TIMEOUT,
    ServerProcess,
    free_port,
    imkit_env,
    run_imkit,
    split_addr,
    start_server_process,
)

FULL = "Error: cannot write to standard output: No space left on device\n"


def run_raw(
    args: list[str | bytes], *, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run imkit with raw bytes in and out (argv may hold bytes that are not UTF-8)."""
    return subprocess.run(
        [*IMKIT, *args], input=stdin, capture_output=True, timeout=30, env=imkit_env()
    )


def run_stdin_closed(*args: str) -> subprocess.CompletedProcess[str]:
    """Run imkit with standard input closed, as `imkit ARGS <&-` does in a shell."""
    return subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", *IMKIT, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=imkit_env(),
    )


def run_to_full_disk(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run imkit with standard output on /dev/full, where every write fails (ENOSPC)."""
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [*IMKIT, *args],
            input=stdin,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
            env=imkit_env(),
        )


def where(server: ServerProcess) -> list[str]:
    host, port = split_addr(server.address)
    return ["--host", host, "--port", str(port)]


@pytest.fixture
def admin_server() -> Iterator[tuple[ServerProcess, str]]:
    """A server and its admin socket, in a short private folder (0700, as mkdtemp)."""
    folder = tempfile.mkdtemp(prefix="imkit-", dir="/tmp")
    admin_socket = str(Path(folder) / "admin.sock")
    server = start_server_process("--idle-timeout", "0", "--admin-socket", admin_socket)
    try:
        yield server, admin_socket
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ standard streams


def test_closed_stdin_is_a_one_line_usage_error() -> None:
    nowhere = ["--port", str(free_port())]  # refused before connecting
    chat = run_stdin_closed("chat", *nowhere)
    assert (chat.returncode, chat.stdout) == (2, "")
    assert chat.stderr == "Error: standard input is closed: imkit chat reads what to say from it\n"
    send = run_stdin_closed("send", *nowhere, "-")
    assert (send.returncode, send.stdout) == (2, "")
    assert send.stderr == "Error: standard input is closed: - has nothing to read\n"


def test_closed_stdin_does_not_matter_when_it_is_not_read(server_process: ServerProcess) -> None:
    result = run_stdin_closed("send", *where(server_process), "hello")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_unwritable_stdout_exits_4_with_one_line(
    admin_server: tuple[ServerProcess, str],
) -> None:
    server, admin_socket = admin_server
    who = run_to_full_disk("who", "--admin-socket", admin_socket)
    assert (who.returncode, who.stderr) == (4, FULL)
    stats = run_to_full_disk("stats", "--json", "--admin-socket", admin_socket)
    assert (stats.returncode, stats.stderr) == (4, FULL)
    history = run_to_full_disk("history", "--json", "--admin-socket", admin_socket)
    assert (history.returncode, history.stderr) == (4, FULL)
    send = run_to_full_disk("send", *where(server), "-v", "hello")
    assert (send.returncode, send.stderr) == (4, FULL)
    chat = run_to_full_disk("chat", *where(server), stdin="0\n")
    assert (chat.returncode, chat.stderr) == (4, FULL)


def test_closed_stdout_is_reported_like_a_full_disk(server_process: ServerProcess) -> None:
    # `imkit send -v hello >&-`: Python starts with sys.stdout None.
    result = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *IMKIT, "send", *where(server_process), "-v", "hi"],
        stderr=subprocess.PIPE,
        text=True,
        timeout=30,
        env=imkit_env(),
    )
    assert result.returncode == 4
    assert result.stderr == "Error: cannot write to standard output: Bad file descriptor\n"


def test_reader_going_away_ends_send_quietly_with_141(server_process: ServerProcess) -> None:
    # seq 300 | imkit send -v - | head -1
    proc = subprocess.Popen(
        [*IMKIT, "send", *where(server_process), "-v", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=imkit_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(b"".join(b"%d\n" % n for n in range(1, 301)))
    proc.stdin.close()
    assert proc.stdout.readline() == b"sent to everyone: 1\n"
    proc.stdout.close()  # as head does after its line
    assert proc.wait(TIMEOUT) == 141
    assert proc.stderr.read() == b""  # no traceback, no "Exception ignored"


def test_reader_going_away_ends_chat_quietly_with_141(server_process: ServerProcess) -> None:
    # The failing write is chat's task that prints incoming messages: the error comes
    # out of a task group.
    proc = subprocess.Popen(
        [*IMKIT, "chat", *where(server_process), "--name", "reader"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=imkit_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        while proc.stdout.readline() != b"0 exit\n":  # the menu: chat now waits for input
            pass
        proc.stdout.close()
        sent = run_imkit("send", *where(server_process), "hello, reader")
        assert sent.returncode == 0
        assert proc.wait(TIMEOUT) == 141
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------- empty secrets and paths

EMPTY_REFUSED = [
    ("serve", "--password", "IMKIT_PASSWORD"),
    ("serve", "--tls-cert", "IMKIT_TLS_CERT"),
    ("serve", "--tls-key", "IMKIT_TLS_KEY"),
    ("serve", "--admin-socket", "IMKIT_ADMIN_SOCKET"),
    ("chat", "--password", "IMKIT_PASSWORD"),
    ("chat", "--cafile", "IMKIT_CAFILE"),
    ("send", "--password", "IMKIT_PASSWORD"),
    ("send", "--cafile", "IMKIT_CAFILE"),
    ("bench", "--password", "IMKIT_PASSWORD"),
    ("who", "--admin-socket", "IMKIT_ADMIN_SOCKET"),
    ("kick", "--admin-socket", "IMKIT_ADMIN_SOCKET"),
    ("stats", "--admin-socket", "IMKIT_ADMIN_SOCKET"),
    ("history", "--admin-socket", "IMKIT_ADMIN_SOCKET"),
    ("serve", "--db", "IMKIT_DB"),
]


def other_args(command: str) -> list[str]:
    """What ``command`` needs besides the empty option. Without the fix every one would
    run: serve would listen, and the clients try a port where nothing listens."""
    port = "0" if command == "serve" else str(free_port())
    return ["--port", port, *{"send": ["hello"], "kick": ["alex"]}.get(command, [])]


@pytest.mark.parametrize(("command", "option", "variable"), EMPTY_REFUSED)
def test_empty_variable_is_refused(command: str, option: str, variable: str) -> None:
    # `Environment=IMKIT_PASSWORD=$UNSET` in a systemd unit: set, but empty.
    env = imkit_env(**{variable: ""})
    result = run_imkit(command, *other_args(command), env=env, stdin="", timeout=10)
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: {option} / {variable} is set but empty: give it a value, or unset it\n"
    )


@pytest.mark.parametrize(
    ("command", "option", "variable"), [EMPTY_REFUSED[0], EMPTY_REFUSED[7], EMPTY_REFUSED[9]]
)
def test_empty_option_is_refused(command: str, option: str, variable: str) -> None:
    result = run_imkit(command, *other_args(command), option, "", stdin="", timeout=10)
    assert result.returncode == 2
    assert result.stderr == (
        f"Error: {option} / {variable} is set but empty: give it a value, or unset it\n"
    )


def test_an_option_given_wins_over_an_empty_variable(server_process: ServerProcess) -> None:
    env = imkit_env(IMKIT_CAFILE="")
    result = run_imkit(
        "send", *where(server_process), "--cafile", "/nonexistent.pem", "hi", env=env
    )
    assert result.returncode == 3  # the file was tried: the empty variable did not matter
    assert result.stderr.startswith("Error: cannot load CA file /nonexistent.pem")


# ------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["serve", "--port", "0", "--rate", "nan"], "'--rate' (env var: 'IMKIT_RATE'): nan is not"),
        (["serve", "--port", "0", "--rate", "inf"], "inf is not 0 or 0.01 to 1,000,000"),
        (["serve", "--port", "0", "--rate", "1e-9"], "1e-9 is not 0 or 0.01 to 1,000,000"),
        (["serve", "--port", "0", "--idle-timeout", "nan"], "nan is not 0 or 0.1 to 2,592,000"),
        (["serve", "--port", "0", "--idle-timeout", "-inf"], "-inf is not 0 or 0.1 to"),
        (["serve", "--port", "0", "--idle-timeout", "1e-9"], "1e-9 is not 0 or 0.1 to"),
        (["serve", "--port", "0", "--idle-timeout", "2592001"], "2592001 is not 0 or 0.1 to"),
        (["send", "--timeout", "nan", "hi"], "'--timeout' (env var: 'IMKIT_TIMEOUT'): nan is not"),
        (["send", "--timeout", "inf", "hi"], "inf is not 0.01 to 86,400"),
        (["send", "--timeout", "0", "hi"], "0 is not 0.01 to 86,400"),
        (["bench", "--duration", "nan"], "nan is not 0.1 to 3,600"),
    ],
)
def test_non_finite_and_absurd_numbers_are_usage_errors(args: list[str], shown: str) -> None:
    if args[0] != "serve":
        args = [*args, "--port", str(free_port())]
    result = run_imkit(*args, timeout=10)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("Error: Invalid value for ")
    assert shown in result.stderr
    assert "Traceback" not in result.stderr


def test_nan_from_the_environment_is_refused_too() -> None:
    result = run_imkit("serve", "--port", "0", env=imkit_env(IMKIT_RATE="nan"), timeout=10)
    assert result.returncode == 2
    assert "nan is not 0 or 0.01 to 1,000,000" in result.stderr


def test_the_bounds_themselves_are_accepted() -> None:
    server = start_server_process("--idle-timeout", "2592000", "--rate", "1000000")
    assert server.stop() == 0
    assert "Traceback" not in server.stderr()


# ------------------------------------------------------------------------ IPv6 hosts


def test_ipv6_host_is_shown_in_brackets() -> None:
    port = free_port()
    result = run_imkit("send", "--host", "::1", "--port", str(port), "hello")
    assert result.returncode == 3
    assert result.stderr.startswith(f"Error: cannot connect to [::1]:{port}: ")
    assert result.stderr.count("\n") == 1


def test_chat_over_ipv6_says_where_it_connected() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    server = start_server_process("--idle-timeout", "0", "--host", "::1")
    try:
        host, port = split_addr(server.address)
        result = run_imkit("chat", "--host", host, "--port", str(port), stdin="0\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"connected to [::1]:{port} (imkit/")
    finally:
        server.stop()


# -------------------------------------------------------------- text that is not UTF-8


def test_send_stops_at_a_line_that_is_not_utf8(server_process: ServerProcess) -> None:
    result = run_raw(
        ["send", *where(server_process), "-v", "-"], stdin=b"one\n\xff\xfe two\nthree\n"
    )
    assert result.returncode == 1
    assert result.stderr == b"Error: line 2 of standard input is not valid UTF-8\n"
    assert result.stdout == b"sent to everyone: one\n"  # accepted; three was never sent


def test_chat_skips_a_line_that_is_not_utf8_and_goes_on(server_process: ServerProcess) -> None:
    session = b"1\nbefore\n\xc3( broken\nafter\nexit\n0\n"
    result = run_raw(["chat", *where(server_process), "--name", "piper"], stdin=session)
    assert (result.returncode, result.stderr) == (0, b"")
    out = result.stdout.decode()
    assert "! line 3 of standard input is not valid UTF-8; skipped it\n" in out
    assert "piper: before\n" in out and "piper: after\n" in out
    assert "broken" not in out


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["send", b"caf\xe9"], "'MESSAGE...'"),
        (["send", "--to", b"\xff", "hi"], "'--to'"),
        (["send", "--as", b"\xff", "hi"], "'--as'"),
        (["chat", "--name", b"\xff"], "'--name'"),
        (["kick", b"\xff"], "'NAME'"),
    ],
)
def test_arguments_that_are_not_utf8_are_usage_errors(args: list[str | bytes], what: str) -> None:
    result = run_raw([*args, "--port", str(free_port())], stdin=b"")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert stderr.splitlines()[-1].startswith(f"Error: Invalid value for {what}")
    assert stderr.splitlines()[-1].endswith(": not valid UTF-8")
    assert "Traceback" not in stderr
