"""`imkit serve --log-format json` and `imkit stats --watch`, through real `imkit serve`
processes, real clients, a pipe and a real terminal (tmux).

Here the tests that run imkit subprocesses; the others are in server/test_logs_watch.py,
unit/test_logs_watch.py."""

from __future__ import annotations

import json
import re
import resource
import shlex
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support import (
    IMKIT,
    TIMEOUT,
    InteractiveProcess,
    LineClient,
    ServerProcess,
    close_open_clients,
    imkit_env,
    joined,
    run_imkit,
    split_addr,
    start_server_process,
)
from tests.support.logs import ISO_TIME, PUBLIC_TEXT, SNAKE_CASE
from tests.support.terminal import Pane

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) \S")
# Distinctive enough that finding one in a log can only mean it was logged.
PASSWORD = "hunter2-owl-9931"
WRONG_PASSWORD = "guess-otter-5150"
PRIVATE_TEXT = "marmot-basalt-2286 said in private"
WATCH_HEADER = ["TIME", "USERS", "CONNS", "MSGS/S", "DELIVERIES/S", "SLOW", "REFUSED"]
WATCH_ROW = r"^\d\d:\d\d:\d\d "


# ------------------------------------------------------------------ --log-format json


def json_log(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line the server has logged so far, each parsed as one JSON object."""
    records = []
    for line in list(server.log):
        assert line.endswith("\n"), line
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


async def logged(server: ServerProcess, event: str, **fields: Any) -> dict[str, Any]:
    """The first record of ``event`` with these ``fields``, once the server logged it."""
    with anyio.fail_after(TIMEOUT):
        while True:
            for record in json_log(server):
                if record["event"] == event and all(
                    record.get(key) == value for key, value in fields.items()
                ):
                    return record
            await anyio.sleep(0.05)


async def logged_in(address: str, name: str) -> LineClient:
    """A text client past the password, renamed to ``name``."""
    client = await LineClient.connect(address)
    await client.send(f"pass|{PASSWORD}\nrename|{name}\n")
    await client.line_matching(f"^you have updated user name: {name}$")
    return client


@pytest.mark.parametrize("password_from", ["option", "environment"])
async def test_json_log_names_every_event_and_never_a_secret(
    password_from: str, short_dir: Path
) -> None:
    admin_socket = str(short_dir / "admin.sock")
    args = ["--log-format", "json", "--log-level", "debug", "--idle-timeout", "0"]
    args += ["--admin-socket", admin_socket]
    if password_from == "option":
        server = start_server_process(*args, "--password", PASSWORD)
    else:
        server = start_server_process(*args, env=imkit_env(IMKIT_PASSWORD=PASSWORD))
    try:
        # start_server_process found the address in the JSON line's message.
        listening = await logged(server, "listening")
        assert listening["addrs"][0] == server.address
        assert listening["message"].startswith(f"imkit listening on {server.address} (")

        alice = await logged_in(server.address, "alice")
        bob = await logged_in(server.address, "bob")
        await alice.send(f"{PUBLIC_TEXT}\nto|bob|{PRIVATE_TEXT}\n")
        assert (await bob.line_matching("zebra")).endswith(f"]alice:{PUBLIC_TEXT}\n")
        await bob.line_matching("marmot")

        intruder = await LineClient.connect(server.address)
        await intruder.send(f"pass|{WRONG_PASSWORD}\n")
        assert await intruder.eof()
        await logged(server, "unauthorized", addr=intruder.addr, reason="wrong password")

        kick = await anyio.to_thread.run_sync(
            lambda: run_imkit("kick", "bob", "--reason", "spam", "--admin-socket", admin_socket)
        )
        assert kick.returncode == 0, kick.stderr
        await logged(server, "kicked", user="bob", addr=bob.addr, reason="spam")
        await logged(server, "disconnected", user="bob", addr=bob.addr)

        await alice.aclose()
        # Renamed: the name it left with, and the address it came from.
        left = await logged(server, "disconnected", user="alice", addr=alice.addr)
        assert left["message"] == f"alice ({alice.addr}): disconnected"
        assert left["level"] == "info" and left["logger"] == "imkit.server"
    finally:
        await close_open_clients()
        assert server.stop() == 0
    await logged(server, "signal", signal="SIGTERM")
    await logged(server, "shutdown", count=0)

    records = json_log(server)
    for record in records:
        assert ISO_TIME.match(record["time"]), record
        assert record["level"] in {"debug", "info", "warning", "error"}, record
        assert SNAKE_CASE.match(record["event"]), record
        assert isinstance(record["message"], str) and record["message"], record
        assert "exc" not in record, record
    connected = {record["addr"] for record in records if record["event"] == "connected"}
    assert {alice.addr, bob.addr, intruder.addr} <= connected
    events = {record["event"] for record in records}
    assert {"configuration", "history", "admin_socket"} <= events
    log = server.stderr()
    for secret in (PASSWORD, WRONG_PASSWORD, "zebra-quartz", "marmot-basalt"):
        assert secret not in log


async def test_json_log_says_when_the_store_fails_and_recovers(tmp_path: Path) -> None:
    server = start_server_process(
        "--db", str(tmp_path / "imkit.db"), "--log-format", "json", "--idle-timeout", "0"
    )

    def limit_file_size(limit: int) -> None:
        # Writes past the limit fail with EFBIG, as on a full disk (test_history.py).
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    try:
        talker = await joined(server.address, "talker")
        await talker.send(f"{PUBLIC_TEXT} 1\n")
        await talker.line_matching("zebra")
        limit_file_size(1)
        await talker.send(f"{PUBLIC_TEXT} 2\n")  # delivered; its commit fails
        failed = await logged(server, "store_failed")
        assert failed["level"] == "error" and failed["reason"]
        assert failed["message"].startswith(f"the store cannot write: {failed['reason']}; ")
        limit_file_size(resource.RLIM_INFINITY)
        recovered = await logged(server, "store_recovered")  # it tries every second
        assert recovered["level"] == "warning"
    finally:
        await close_open_clients()
        assert server.stop() == 0
    assert "zebra" not in server.stderr()


def test_text_stays_the_default_and_json_can_come_from_the_environment() -> None:
    text = start_server_process("--idle-timeout", "0")
    assert text.stop() == 0
    assert text.log and all(TEXT_LINE.match(line) for line in text.log), text.stderr()
    assert "listening on" in text.stderr()

    from_env = start_server_process("--idle-timeout", "0", env=imkit_env(IMKIT_LOG_FORMAT="json"))
    assert from_env.stop() == 0
    deadline = time.monotonic() + TIMEOUT
    while "shutdown" not in {record["event"] for record in json_log(from_env)}:
        assert time.monotonic() < deadline, from_env.stderr()
        time.sleep(0.05)


def test_a_server_that_cannot_start_says_why_in_a_json_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_imkit("serve", "--port", str(port), "--db", "none", "--log-format", "json")
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stderr.splitlines()]
    reason = f"cannot listen on 127.0.0.1:{port}: Address already in use"
    assert records[-1]["event"] == "start_failed"
    assert (records[-1]["level"], records[-1]["message"]) == ("error", reason)
    assert records[-1]["reason"] == reason


def test_log_format_is_checked() -> None:
    result = run_imkit("serve", "--log-format", "xml")
    assert result.returncode == 2
    assert "'xml' is not one of 'text', 'json'" in result.stderr


# ------------------------------------------------------------------ stats --watch


@pytest.fixture
def watched(short_dir: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A server without a rate limit, and its admin socket."""
    path = str(short_dir / "admin.sock")
    server = start_server_process("--idle-timeout", "0", "--rate", "0", "--admin-socket", path)
    try:
        yield server, path
    finally:
        server.stop()


def watch(admin_socket: str, *args: str) -> InteractiveProcess:
    command = [*IMKIT, "stats", "--watch", "--interval", "0.2", "--admin-socket", admin_socket]
    return InteractiveProcess([*command, *args])


@contextmanager
def traffic(address: str) -> Iterator[None]:
    """A client saying something every 10 ms, for the duration of the block."""
    stop = threading.Event()
    sock = socket.create_connection(split_addr(address), timeout=TIMEOUT)

    def talk() -> None:
        while not stop.wait(0.01):
            sock.sendall(b"tick\n")

    talker = threading.Thread(target=talk, daemon=True)
    talker.start()
    try:
        yield
    finally:
        stop.set()
        talker.join(TIMEOUT)
        sock.close()


def test_watch_piped_shows_rates_and_exits_0_on_ctrl_c(
    watched: tuple[ServerProcess, str],
) -> None:
    server, admin_socket = watched
    watcher = watch(admin_socket)
    try:
        assert watcher.expect("DELIVERIES/S").split() == WATCH_HEADER
        first = watcher.expect(WATCH_ROW).split()
        assert first[1:] == ["0", "0", "-", "-", "0", "0"]  # no rate yet: one reply
        with traffic(server.address):
            deadline = time.monotonic() + TIMEOUT
            while True:  # a row over an interval with traffic in it
                row = watcher.expect(WATCH_ROW).split()
                if row[3] != "-" and float(row[3].replace(",", "")) > 0:
                    break
                assert time.monotonic() < deadline, watcher.seen
        assert row[1:3] == ["1", "1"]  # the talker: a user online, a connection
        assert float(row[4].replace(",", "")) > 0  # its own echo
        watcher.proc.send_signal(signal.SIGINT)
        status, stderr = watcher.finish_after_exit()
    finally:
        watcher.kill()
    assert (status, stderr) == (0, "")
    assert not any("\x1b" in line for line in watcher.seen)  # plain lines in a pipe


def test_watch_repeats_its_header_every_20_rows(watched: tuple[ServerProcess, str]) -> None:
    _, admin_socket = watched
    watcher = watch(admin_socket, "--interval", "0.1")
    try:
        for _ in range(21):
            watcher.expect(WATCH_ROW)
        watcher.proc.send_signal(signal.SIGINT)
        status, _ = watcher.finish_after_exit()
    finally:
        watcher.kill()
    assert status == 0
    headers = [i for i, line in enumerate(watcher.seen) if line.split() == WATCH_HEADER]
    assert headers == [0, 21]


def test_watch_json_is_one_object_a_row(watched: tuple[ServerProcess, str]) -> None:
    _, admin_socket = watched
    watcher = watch(admin_socket, "--json")
    try:
        rows = [json.loads(watcher.expect("^{")) for _ in range(3)]
        watcher.proc.send_signal(signal.SIGINT)
        status, stderr = watcher.finish_after_exit()
    finally:
        watcher.kill()
    assert (status, stderr) == (0, "")
    assert all(ISO_TIME.match(row["time"]) for row in rows)
    assert rows[0]["messages_per_s"] is None and rows[0]["deliveries_per_s"] is None
    assert [row["messages_per_s"] for row in rows[1:]] == [0, 0]
    assert all(row["users_online"] == 0 and "type" not in row for row in rows)
    assert rows[0]["uptime_s"] < rows[1]["uptime_s"] < rows[2]["uptime_s"]


def test_watch_exits_3_with_one_line_when_the_server_goes_away(short_dir: Path) -> None:
    path = str(short_dir / "admin.sock")
    server = start_server_process("--idle-timeout", "0", "--admin-socket", path)
    watcher = watch(path)
    try:
        watcher.expect(WATCH_ROW)
        watcher.expect(WATCH_ROW)
        assert server.stop() == 0
        status, stderr = watcher.finish_after_exit()
    finally:
        watcher.kill()
        server.stop()
    assert status == 3
    assert stderr.startswith("Error: the server went away: ") and stderr.count("\n") == 1


def test_watch_without_a_server_exits_3_at_once(short_dir: Path) -> None:
    path = short_dir / "nothing.sock"
    result = run_imkit("stats", "--watch", "--admin-socket", str(path))
    assert (result.returncode, result.stdout) == (3, "")
    unavailable = f"no imkit server answers on {path} (is `imkit serve` running?)"
    assert result.stderr == f"Error: {unavailable}\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--interval", "1"],  # without --watch
        ["--watch", "--interval", "0.05"],
        ["--watch", "--interval", "3601"],
        ["--watch", "--interval", "nan"],
    ],
)
def test_watch_usage_errors_exit_2(args: list[str], short_dir: Path) -> None:
    result = run_imkit("stats", *args, "--admin-socket", str(short_dir / "admin.sock"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_watch_in_a_terminal_until_ctrl_c(watched: tuple[ServerProcess, str]) -> None:

    server, admin_socket = watched
    command = [*IMKIT, "stats", "--watch", "--interval", "0.2", "--admin-socket", admin_socket]
    # The shell keeps the pane open after the watch ends, to show its exit status. Ctrl-C
    # signals the shell as well: its trap (reset for the watch) lets it go on.
    script = f'trap : INT; {shlex.join(command)}; echo "exit status $?"; sleep 60'
    pane = Pane(["env", "TERM=xterm", "sh", "-c", script])
    try:
        pane.wait_for("DELIVERIES/S")

        def rows(lines: list[str]) -> list[list[str]]:
            # Whole rows only: a capture may catch one half written.
            cells = [line.split() for line in lines if re.match(WATCH_ROW, line)]
            return [row for row in cells if len(row) == len(WATCH_HEADER)]

        with traffic(server.address):
            pane.wait_until(
                lambda lines: any(row[3] not in ("-", "0.0") for row in rows(lines)),
                "a row with messages in it",
            )
        pane.type("C-c")
        lines = pane.wait_for("exit status")
    finally:
        pane.close()
    assert any(line.rstrip().endswith("exit status 0") for line in lines), lines
    assert not any("Traceback" in line for line in lines)
