"""Bans and mutes (issue 14, points 1, 2 and 7) over real TCP: clients come from their
own loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a ban can hit one and not
another. A ban removes the matching users at once and refuses them at connect, lasts
across a restart, ends by itself (an injected clock), and is lifted by unban; a guest's
name bans its address. A mute refuses messages and renames in both modes. In a cluster
a ban made on one node removes a user of the other, and a mute reaches any node.

Here the tests that run imkit subprocesses; the others are in
cluster/test_moderation.py, server/test_moderation.py, unit/test_moderation.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import pytest

from imkit.server import Server
from tests.support import (
    close_open_clients,
    joined,
    proxied,
    run_imkit,
    start_server_process,
)
from tests.support.accounts import start_accounts_server


@pytest.fixture
def server(moderation_server: Server) -> Server:
    """This file's server: tests/conftest.py's moderation_server."""
    return moderation_server


# ------------------------------------------------------------------ over real TCP


async def imkit(*args: str) -> tuple[int, str]:
    done = await anyio.to_thread.run_sync(lambda: run_imkit(*args))
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


# ---------------------------------------------------------------------- a cluster


async def test_bans_survive_a_restart_and_the_cli_shows_them(short_dir: Path) -> None:
    db = short_dir / "m.db"
    sock = short_dir / "m.sock"
    args = ("--db", str(db), "--admin-socket", str(sock))
    first = start_server_process(*args)
    try:
        banned = run_imkit(
            "ban", "203.0.113.0/24", "--for", "2h", "--reason", "spam", "--admin-socket", str(sock)
        )
        assert banned.returncode == 0, banned.stderr
        assert banned.stdout.startswith("banned 203.0.113.0/24 until ")
        assert banned.stdout.endswith("; 0 users removed\n")
    finally:
        first.stop()
    assert "ban on 203.0.113.0/24 by uid" in first.stderr()
    second = start_server_process(*args)
    try:
        table = run_imkit("bans", "--admin-socket", str(sock))
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()
        assert header.split() == ["TARGET", "KIND", "UNTIL", "REASON", "BY"]
        assert row.split()[:2] == ["203.0.113.0/24", "network"] and "spam" in row
        listed = json.loads(run_imkit("bans", "--json", "--admin-socket", str(sock)).stdout)
        assert [b["target"] for b in listed] == ["203.0.113.0/24"]
        gone = run_imkit("unban", "203.0.113.9", "--admin-socket", str(sock))
        assert gone.returncode == 1 and "no ban on 203.0.113.9" in gone.stderr
        bad = run_imkit("ban", "x", "--for", "forever", "--admin-socket", str(sock))
        assert bad.returncode == 2 and "not a duration" in bad.stderr
        lifted = run_imkit("unban", "203.0.113.0/24", "--admin-socket", str(sock))
        assert lifted.returncode == 0 and lifted.stdout == "unbanned 203.0.113.0/24\n"
    finally:
        second.stop()


async def test_a_ban_of_an_ipv6_address_covers_its_64(short_dir: Path) -> None:
    """Issue 25, item 6, on real connections: the users' IPv6 addresses come in PROXY
    headers (the only way to have many on a loopback), and `imkit ban` says what it
    covers."""
    sock = str(short_dir / "m.sock")
    server = start_server_process("--admin-socket", sock, "--proxy-protocol", "127.0.0.0/8")
    try:
        one = await proxied(server.address, "2001:db8::1")
        two = await proxied(server.address, "2001:db8::2")
        next_door = await proxied(server.address, "2001:db8:0:1::1")
        for client in (one, two, next_door):
            assert (await client.line()).endswith(":user is online\n")
        banned = await imkit("ban", "2001:db8::1", "--admin-socket", sock)
        assert banned == (0, "banned 2001:db8::/64 (the /64 of 2001:db8::1); 2 users removed\n")
        for client in (one, two):
            assert await client.line_matching("you are banned")
        late = await proxied(server.address, "2001:db8::abcd")
        assert await late.line() == "you are banned\n"
        assert await late.eof()
        await next_door.send("still here\n")
        assert await next_door.line_matching(r"^\[\[2001:db8:0:1::1\]:40000\].*:still here$")

        exact = await imkit("ban", "2001:db8:0:1::1/128", "--admin-socket", sock)
        assert exact == (0, "banned 2001:db8:0:1::1/128; 1 user removed\n")
        neighbour = await proxied(server.address, "2001:db8:0:1::2")
        assert (await neighbour.line()).endswith(":user is online\n")
        listed = await imkit("bans", "--json", "--admin-socket", sock)
        assert [(b["target"], b["kind"]) for b in json.loads(listed[1])] == [
            ("2001:db8::/64", "network"),
            ("2001:db8:0:1::1/128", "address"),
        ]
        lifted = await imkit("unban", "2001:db8::77", "--admin-socket", sock)
        assert lifted == (0, "unbanned 2001:db8::/64\n")
        mapped = await imkit("ban", "::ffff:198.51.100.9", "--admin-socket", sock)
        assert mapped == (0, "banned 198.51.100.9; 0 users removed\n")
    finally:
        await close_open_clients()
        server.stop()


async def test_imkit_mute_says_when_the_mute_ends(short_dir: Path) -> None:
    """Issue 25, item 8: a guest's mute ends with its connection (--for or not); an
    account's holds across reconnects (without --for, until unmute)."""
    real = start_accounts_server(short_dir)
    sock = str(real.admin_socket)
    try:
        guest = await joined(real.address, "sam")
        real.add("alex")
        quiet = await imkit("mute", "sam", "--admin-socket", sock)
        assert quiet == (0, "muted sam until it disconnects\n")
        status, out = await imkit("mute", "sam", "--for", "1h", "--admin-socket", sock)
        assert status == 0
        assert re.fullmatch(r"muted sam until \S+Z or until it disconnects\n", out), out
        forever = await imkit("mute", "Alex", "--admin-socket", sock)
        assert forever == (0, "muted alex until unmuted, also after reconnects (an account)\n")
        status, out = await imkit("mute", "alex", "--for", "1h", "--admin-socket", sock)
        assert status == 0
        assert re.fullmatch(r"muted alex until \S+Z, also after reconnects \(an account\)\n", out)
        # What it says is what happens: the guest speaks again once it has reconnected.
        await guest.aclose()
        back = await joined(real.address, "sam")
        await back.send("free again\n")
        assert (await back.line()).endswith("]sam:free again\n")
    finally:
        await close_open_clients()
        real.stop()
