"""The admin socket over a real server and a real Unix socket: who, kick, stats, and who
may use it.

Here the tests that run imkit subprocesses; the others are in server/test_admin.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import anyio

from imkit.operator import answers
from imkit.server import Server
from tests.support import LineClient, imkit_env, joined, run_imkit, start_server_process


def admin_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    assert server.admin_socket is not None
    return run_imkit(*args, "--admin-socket", str(server.admin_socket.path))


async def run_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    # The server runs in this event loop: run the CLI in a thread so it can answer.
    return await anyio.to_thread.run_sync(lambda: admin_cli(server, *args))


async def test_who_lists_both_modes_in_order_of_arrival(admin_server: Server) -> None:
    alex = await joined(admin_server.addresses[0], "alex")
    bot = await LineClient.connect(admin_server.addresses[0])
    await bot.request(type="hello", name="bot")
    result = await run_cli(admin_server, "who", "--json")
    assert result.returncode == 0, result.stderr
    users = json.loads(result.stdout)
    assert [(u["name"], u["addr"], u["mode"]) for u in users] == [
        ("alex", alex.addr, "text"),
        ("bot", bot.addr, "json"),
    ]
    assert all(u["connected_s"] >= u["idle_s"] >= 0 for u in users)

    table = (await run_cli(admin_server, "who")).stdout.splitlines()
    assert table[0].split() == ["NAME", "ADDRESS", "CONNECTED", "IDLE", "MODE", "ACCOUNT"]
    assert table[1].split()[0::4] == ["alex", "text"]
    assert table[2].split()[0::4] == ["bot", "json"]
    assert [line.split()[-1] for line in table[1:]] == ["-", "-"]


async def test_kick_a_text_user(admin_server: Server) -> None:
    alex = await joined(admin_server.addresses[0], "alex")
    sam = await joined(admin_server.addresses[0], "sam")
    await alex.line()  # sam's join
    result = await run_cli(admin_server, "kick", "ALEX", "--reason", "spam")
    assert (result.returncode, result.stdout, result.stderr) == (0, "kicked alex\n", "")
    assert await alex.line() == "you were removed by an administrator: spam\n"
    assert await alex.eof()
    assert await sam.line() == f"[{alex.addr}]alex:user offline\n"


async def test_kick_a_json_user(admin_server: Server) -> None:
    bot = await LineClient.connect(admin_server.addresses[0])
    await bot.request(type="hello", name="bot")
    watcher = await joined(admin_server.addresses[0], "watcher")
    result = await run_cli(admin_server, "kick", "bot")
    assert result.returncode == 0
    assert await bot.json_of_type("bye") == {
        "type": "bye",
        "reason": "kicked",
        "message": "you were removed by an administrator",
    }
    assert await bot.eof()
    assert await watcher.line() == f"[{bot.addr}]bot:user offline\n"


async def test_kick_of_an_unknown_name_exits_1(admin_server: Server) -> None:
    result = await run_cli(admin_server, "kick", "ghost")
    assert result.returncode == 1
    assert result.stderr == "Error: no user named 'ghost' is online\n"


async def test_stats_count_what_happened(admin_server: Server) -> None:
    a = await joined(admin_server.addresses[0], "a")
    await joined(admin_server.addresses[0], "b")
    await a.send(b"one\ntwo\nto|b|three\n")
    await a.line_matching(":two$")
    assert answers.stats(admin_server)["messages_received"] == 3
    await run_cli(admin_server, "kick", "b")
    result = await run_cli(admin_server, "stats", "--json")
    counters = json.loads(result.stdout)
    assert counters["users_online"] == 1
    assert counters["connections_total"] == 2
    assert counters["messages_received"] == 3
    assert counters["messages_delivered"] == 5  # two public to both, one private
    assert counters["admin_kicks"] == 1
    assert counters["idle_kicks"] == counters["slow_consumers"] == 0
    assert counters["uptime_s"] > 0
    table = (await run_cli(admin_server, "stats")).stdout.splitlines()
    assert table[0].split() == ["COUNTER", "VALUE"]
    delivered = next(line for line in table if line.startswith("messages delivered"))
    assert delivered.split()[-1] == "5"


def test_second_server_on_a_live_socket_exits_1(short_dir: Path) -> None:
    path = short_dir / "admin.sock"
    first = start_server_process("--admin-socket", str(path))
    try:
        result = run_imkit("serve", "--port", "0", "--admin-socket", str(path))
        assert result.returncode == 1
        assert result.stderr == (
            f"Error: another imkit server is running with the admin socket {path}\n"
        )
    finally:
        first.stop()


def test_no_server_exits_3_naming_the_socket(short_dir: Path) -> None:
    path = short_dir / "none.sock"
    for command in (["who"], ["kick", "x"], ["stats"]):
        result = run_imkit(*command, "--admin-socket", str(path))
        assert result.returncode == 3
        assert result.stderr == (
            f"Error: no imkit server answers on {path} (is `imkit serve` running?)\n"
        )


def test_port_finds_the_default_socket(short_dir: Path) -> None:
    env = imkit_env(XDG_RUNTIME_DIR=str(short_dir))
    server = start_server_process(env=env)
    try:
        port = server.address.rsplit(":", 1)[1]
        result = run_imkit("stats", "--json", "--port", port, env=env)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["users_online"] == 0
    finally:
        server.stop()


def test_an_admin_socket_path_over_the_unix_limit_is_named_too_long(short_dir: Path) -> None:
    long_path = short_dir / ("x" * 120) / "admin.sock"
    served = run_imkit("serve", "--port", "0", "--admin-socket", str(long_path))
    assert served.returncode == 1
    assert "too long for a Unix socket" in served.stderr and "None" not in served.stderr
    assert "Traceback" not in served.stderr
    asked = run_imkit("who", "--admin-socket", str(long_path))
    assert asked.returncode == 1
    assert asked.stderr.count("\n") == 1 and "too long for a Unix socket" in asked.stderr
