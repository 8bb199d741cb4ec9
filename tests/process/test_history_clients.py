"""History through the clients, against real servers on real SQLite files: the library's
``history()`` and msgids, ``imkit send`` when the store cannot write, ``imkit history``
and ``imkit stats`` through the admin socket, and ``imkit chat`` showing past messages
(piped, and in a real terminal under tmux).

Here the tests that run imkit subprocesses; the others are in
server/test_history_clients.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from imkit.client.library import connect
from imkit.operator import answers
from imkit.server import Server, ServerConfig
from tests.support import (
    IMKIT,
    ServerProcess,
    chat,
    hostport,
    imkit_env,
    joined,
    run_imkit,
    run_server,
    split_addr,
    start_server_process,
)
from tests.support.history_clients import db_config, socket_of, stored
from tests.support.terminal import Pane

# `imkit history`'s text form: ChatMessage.past_line(), as in text mode's history|N.
PAST_LINE = re.compile(r"^past \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[([^\]]+)\]([^:]+):(.*)$")
# `imkit chat`'s: past, the local time (and the date, for a message not from today).
CHAT_PAST = re.compile(r"^past (\d{4}-\d\d-\d\d )?\d\d:\d\d ")


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The server runs in this event loop: the command runs in a thread so it can answer.
    return await anyio.to_thread.run_sync(lambda: run_imkit(*args))


async def send_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = hostport(server)
    return await cli("send", "--host", host, "--port", str(port), *args)


def stats_rows(table: str) -> dict[str, str]:
    """``imkit stats``'s table as {label: value} (the columns are two spaces apart)."""
    rows = [re.split(r"\s{2,}", line, maxsplit=1) for line in table.splitlines()]
    assert rows[0] == ["COUNTER", "VALUE"]
    return {label: value for label, value in rows[1:]}


# ------------------------------------------------------------------------ imkit send


async def test_imkit_send_exit_status_when_the_store_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer also checks its files once a second while idle: under load `imkit send`
    # may take longer than that to start, and the removal would then be found before the
    # message (a refusal, the case tested last) instead of at its commit. Only the check
    # before each batch runs here.
    monkeypatch.setattr("imkit.store.writer.WATCH_INTERVAL", 3600.0)
    async with run_server(db_config(tmp_path)) as db_server:
        await _send_exit_statuses(db_server)


async def _send_exit_statuses(db_server: Server) -> None:
    ok = await send_cli(db_server, "--as", "ci", "stored")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    os.remove(db_server.config.db or "")

    delivered = await send_cli(db_server, "--as", "ci", "-v", "delivered")
    assert delivered.returncode == 1
    assert delivered.stdout == ""  # not acknowledged, so not reported as sent
    assert delivered.stderr.splitlines() == [
        f"Error: the message was delivered but not stored: the database file "
        f"{db_server.config.db} was removed; it reached the users online, so do not send "
        "it again"
    ]
    # Standard input stops at the first refusal: the second line is never sent.
    refused = await anyio.to_thread.run_sync(
        lambda: run_imkit(
            "send",
            "--port",
            str(hostport(db_server)[1]),
            "-",
            stdin="refused\nnever sent\n",
        )
    )
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        f"Error: the message was not sent: the database file {db_server.config.db} was removed"
    ]
    assert answers.stats(db_server)["refused_unavailable"] == 1

    rows = stats_rows((await cli("stats", "--admin-socket", socket_of(db_server))).stdout)
    assert rows["store problem"] == f"the database file {db_server.config.db} was removed"
    assert rows["refused: store or cluster unavailable"] == "1"


# ------------------------------------------------------------ imkit history and stats


async def test_imkit_history_lines_json_and_paging(db_server: Server) -> None:
    texter = await joined(db_server.addresses[0], "texter")
    await texter.send("\x1b[2Jwiped?\n")  # relayed as sent, but never to a terminal
    await texter.line_matching("wiped")
    async with connect(*hostport(db_server), name="alex") as alex:
        msgids = [await stored(alex, f"note {i}") for i in range(3)]
        await alex.send("private", to="texter")

    result = await cli("history", "--admin-socket", socket_of(db_server), "--limit", "3")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    matches = [PAST_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [m.groups() for m in matches if m] == [
        (alex.addr, "alex", "note 0"),
        (alex.addr, "alex", "note 1"),
        (alex.addr, "alex", "note 2"),
    ]

    result = await cli("history", "--admin-socket", socket_of(db_server), "--json")
    reply = json.loads(result.stdout)
    assert reply["more"] is False
    assert [m["msgid"] for m in reply["messages"]][1:] == msgids
    first = reply["messages"][0]
    assert set(first) == {"msgid", "time", "from", "addr", "text"}
    assert (first["from"], first["addr"], first["text"]) == ("texter", texter.addr, "\x1b[2Jwiped?")

    # The escape sequence is shown harmless in the text form.
    older = await cli(
        "history", "--admin-socket", socket_of(db_server), "--limit", "1", "--before", msgids[0]
    )
    assert older.returncode == 0
    assert older.stdout.endswith(f"[{texter.addr}]texter:\N{REPLACEMENT CHARACTER}[2Jwiped?\n")
    assert "\x1b" not in older.stdout
    paged = json.loads(
        (
            await cli("history", "--admin-socket", socket_of(db_server), "--json", "--limit", "2")
        ).stdout
    )
    assert [m["text"] for m in paged["messages"]] == ["note 1", "note 2"]
    assert paged["more"] is True

    for bad in (["--limit", "0"], ["--limit", "101"], ["--before", "1234"]):
        usage = await cli("history", "--admin-socket", socket_of(db_server), *bad)
        assert usage.returncode == 2, (bad, usage.stderr)


async def test_imkit_stats_shows_the_store(db_server: Server) -> None:
    result = await cli("stats", "--admin-socket", socket_of(db_server), "--json")
    counters = json.loads(result.stdout)
    assert counters["store"] == f"SQLite {db_server.config.db}"
    assert counters["store_problem"] is None
    assert counters["refused_unavailable"] == 0
    rows = stats_rows((await cli("stats", "--admin-socket", socket_of(db_server))).stdout)
    assert rows["history kept in"] == f"SQLite {db_server.config.db}"
    assert rows["store problem"] == "none"
    assert rows["refused: store or cluster unavailable"] == "0"


async def test_history_of_a_memory_store() -> None:
    async with run_server(ServerConfig(port=0, idle_timeout=0, db="none")) as server:
        async with connect(*hostport(server)) as client:
            sent = await client.send("in memory")
        result = await cli("history", "--admin-socket", socket_of(server), "--json")
        assert [m["msgid"] for m in json.loads(result.stdout)["messages"]] == [sent]
        stats = json.loads(
            (await cli("stats", "--admin-socket", socket_of(server), "--json")).stdout
        )
        assert stats["store"] == "memory"


def test_imkit_history_with_no_server_exits_3() -> None:
    path = f"/tmp/imkit-none-{uuid.uuid4().hex[:8]}.sock"
    result = run_imkit("history", "--admin-socket", path)
    assert result.returncode == 3
    assert result.stderr == (
        f"Error: no imkit server answers on {path} (is `imkit serve` running?)\n"
    )


# ------------------------------------------------------------------------ imkit chat


@pytest.fixture
def history_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """``imkit serve`` on a file holding three public messages from ci."""
    server = start_server_process("--idle-timeout", "0", "--db", str(tmp_path / "h.db"))
    try:
        host, port = split_addr(server.address)
        for text in ["first", "second", "third"]:
            sent = run_imkit("send", "--host", host, "--port", str(port), "--as", "ci", text)
            assert sent.returncode == 0, sent.stderr
        yield server
    finally:
        assert server.stop() == 0


def test_chat_shows_past_messages_before_the_menu(history_server: ServerProcess) -> None:
    person = chat(history_server.address, "--name", "bob", "--history", "2")
    try:
        person.expect("^1 public chat$")
        seen = person.seen
        past = seen[seen.index("you are now bob") + 1 : seen.index("1 public chat")]
        assert all(CHAT_PAST.match(line) for line in past), past
        assert [CHAT_PAST.sub("", line) for line in past] == ["ci: second", "ci: third"]
        person.send("1", "now")
        person.expect("^bob: now$")  # live messages are not marked
        person.send("exit", "0")
        assert person.finish() == (0, "")
    finally:
        person.kill()

    quiet = chat(history_server.address, "--name", "eve", "--history", "0")
    try:
        quiet.expect("^0 exit$")
        quiet.send("0")
        assert quiet.finish() == (0, "")
        assert not any(line.startswith("past") for line in quiet.seen), quiet.seen
    finally:
        quiet.kill()

    host, port = split_addr(history_server.address)
    where = ["--host", host, "--port", str(port)]
    for env, shown in [
        (imkit_env(), ["first", "second", "third", "now"]),
        (imkit_env(IMKIT_HISTORY="1"), ["now"]),
    ]:
        result = run_imkit("chat", *where, stdin="0\n", env=env)
        assert (result.returncode, result.stderr) == (0, "")
        past = [line for line in result.stdout.splitlines() if line.startswith("past")]
        assert all(CHAT_PAST.match(line) for line in past)
        assert [line.rsplit(": ", 1)[1] for line in past] == shown
    too_many = run_imkit("chat", *where, "--history", "101", stdin="0\n")
    assert too_many.returncode == 2


def test_chat_says_when_the_store_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    server = start_server_process("--idle-timeout", "0", "--db", str(db))
    try:
        host, port = split_addr(server.address)
        db.unlink()
        typed = "1\ndelivered\nrefused\nexit\n0\n"
        where = ["--host", host, "--port", str(port)]
        result = run_imkit("chat", *where, "--name", "eve", stdin=typed)
        assert (result.returncode, result.stderr) == (0, "")
        said = [line for line in result.stdout.splitlines() if line.startswith("! ")]
        refused = f"! the message was not sent: the database file {db} was removed"
        # The writer checks its file before each batch and once a second while idle: the
        # first message was either written to the removed file (delivered, then told it
        # was not stored) or refused, when the idle check had found it first.
        first_stored_late = said[0] != refused
        if first_stored_late:
            assert said[0] == (
                f"! the message was delivered but not stored: the database file {db} was "
                "removed; it reached the users online, so do not send it again"
            )
        assert said[1:] == [refused]
        shown = [line for line in result.stdout.splitlines() if not line.startswith("! ")]
        live = [line for line in shown if "delivered" in line]
        assert live == (["eve: delivered"] if first_stored_late else [])
        assert not any("refused" in line for line in shown)  # nobody saw it
    finally:
        assert server.stop() == 0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_chat_in_a_terminal_marks_past_messages(history_server: ServerProcess) -> None:
    host, port = split_addr(history_server.address)
    panes: list[Pane] = []

    def open_chat(name: str, history: str) -> list[str]:
        """A chat in a new terminal; its screen's lines once the menu asks for a choice."""
        command = [*IMKIT, "chat", "--host", host, "--port", str(port)]
        command += ["--name", name, "--history", history]
        script = f'{shlex.join(command)}; echo "exit status $?"; sleep 60'
        panes.append(Pane(["env", "TERM=xterm", "sh", "-c", script]))
        return [line.rstrip() for line in panes[-1].wait_for("choice?") if line.strip()]

    try:
        lines = open_chat("alice", "2")
        menu = lines.index("1 public chat")
        assert lines[menu - 3] == "you are now alice", lines
        past = lines[menu - 2 : menu]
        assert all(CHAT_PAST.match(line) for line in past), lines
        assert [CHAT_PAST.sub("", line) for line in past] == ["ci: second", "ci: third"]
        assert not any("first" in line for line in lines)

        lines = open_chat("carol", "0")
        assert lines[lines.index("1 public chat") - 1] == "you are now carol", lines
        assert not any(line.startswith("past") for line in lines)

        for pane in panes:
            pane.type("0", "Enter")
            assert "exit status 0" in pane.wait_for("exit status")
    finally:
        for pane in panes:
            pane.close()
