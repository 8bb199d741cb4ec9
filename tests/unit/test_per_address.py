"""Per-address limits (issue 14, requirement 3): ``--max-per-ip`` and ``--connect-rate``.

The rules of :mod:`imkit.transport.limits` with a fake clock, then over real TCP: clients
bind their socket to 127.0.0.2 (127.0.0.1 and ::1 are exempt), against an in-process
server, a real ``imkit serve`` and a two-node cluster."""

from __future__ import annotations

import ipaddress
import json
import logging
from functools import partial
from pathlib import Path

import anyio
import pytest

from imkit.client import admin as admin_client
from imkit.client.library import connect
from imkit.errors import Disconnected
from imkit.operator import answers
from imkit.server import ServerConfig
from imkit.transport.limits import (
    LOG_INTERVAL,
    AddressLimits,
    address_key,
    format_connect_rate,
    parse_connect_rate,
    peer_ip,
)
from tests.conftest import run_server
from tests.redis_support import Cluster, needs_redis
from tests.support import (
    Clock,
    LineClient,
    imkit_env,
    run_imkit,
    split_addr,
    start_server_process,
)
from tests.test_metrics import Scraper, value

ip = ipaddress.ip_address
net = ipaddress.ip_network

TOO_MANY_16 = "too many connections from your address (16 at most)\n"


# --------------------------------------------------------------- the rules, pure


def test_what_one_address_is() -> None:
    assert address_key(ip("203.0.113.7")) == ip("203.0.113.7")
    # IPv6: the /64 network; a neighbouring /64 is another address
    assert address_key(ip("2001:db8:1:2:aaaa::1")) == net("2001:db8:1:2::/64")
    assert address_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")) == net("2001:db8:1:2::/64")
    assert address_key(ip("2001:db8:1:3::1")) == net("2001:db8:1:3::/64")
    # IPv4-mapped IPv6 (a dual-stack listener's IPv4 client) is the IPv4 address
    assert address_key(ip("::ffff:203.0.113.7")) == ip("203.0.113.7")


def test_peer_ip_reads_what_accept_returned() -> None:
    assert peer_ip(("127.0.0.2", 5000)) == ip("127.0.0.2")
    assert peer_ip(("::ffff:10.1.2.3", 5000, 0, 0)) == ip("10.1.2.3")
    assert peer_ip(("fe80::1%eth0", 5000, 0, 2)) == ip("fe80::1")
    assert peer_ip(("2001:db8::5", 1, 0, 0)) == ip("2001:db8::5")
    assert peer_ip("/run/imkit.sock") is None
    assert peer_ip(("not an address", 1)) is None
    assert peer_ip(()) is None


def test_connect_rate_option_values() -> None:
    assert parse_connect_rate("32/10m") == (32, 600.0)
    assert parse_connect_rate(" 3/90s ") == (3, 90.0)
    assert parse_connect_rate("100/1h") == (100, 3600.0)
    assert parse_connect_rate("5/1d") == (5, 86400.0)
    assert parse_connect_rate("0") == parse_connect_rate("0/10m") == (0, 0.0)
    for bad in ("", "32", "32/10", "32/10x", "-1/10m", "3/0s", "3/8d", "2000000/1s", "a/b"):
        with pytest.raises(ValueError):
            parse_connect_rate(bad)
    assert format_connect_rate(32, 600.0) == "32/10m"
    assert format_connect_rate(3, 90.0) == "3/90s"
    assert format_connect_rate(1, 7200.0) == "1/2h"


def test_the_bye_sentences() -> None:
    limits = AddressLimits(16, 32, 600.0)
    assert limits.messages["max_per_ip"] == TOO_MANY_16.rstrip("\n")
    assert limits.messages["connect_rate"] == (
        "too many new connections from your address: at most 32 every 10 minutes"
    )
    assert AddressLimits(1, 3, 60.0).messages["connect_rate"].endswith("at most 3 every minute")
    assert AddressLimits(1, 3, 90.0).messages["connect_rate"].endswith("3 every 90 seconds")
    assert AddressLimits(1, 3, 3600.0).messages["connect_rate"].endswith("3 every hour")
    assert AddressLimits(1, 3, 1.0).messages["connect_rate"].endswith("3 every second")
    assert AddressLimits(1, 3, 7200.0).messages["connect_rate"].endswith("3 every 2 hours")


def test_open_connections_per_address_and_what_is_exempt() -> None:
    limits = AddressLimits(2, 0, 0.0, [net("10.9.0.0/16"), net("2001:db8:9::/48")])
    key = limits.key_for(ip("127.0.0.2"))  # other loopback addresses are not exempt
    assert limits.admit(key) is None and limits.admit(key) is None
    refusal = limits.admit(key)
    assert refusal is not None
    assert (refusal.key, refusal.reason) == (ip("127.0.0.2"), "max_per_ip")
    assert refusal.message == "too many connections from your address (2 at most)"
    limits.release(key)  # closing one frees a place
    assert limits.admit(key) is None
    assert limits.admit(key) is not None
    # the same count, written as IPv4-mapped IPv6
    assert limits.admit(limits.key_for(ip("::ffff:127.0.0.2"))) is not None
    # IPv6 counts per /64
    first, same_64, other_64 = (
        limits.key_for(ip(a)) for a in ("2001:db8::1", "2001:db8::2:3", "2001:db8:0:1::1")
    )
    assert first == same_64 != other_64
    assert limits.admit(first) is None and limits.admit(same_64) is None
    assert limits.admit(first) is not None
    assert limits.admit(other_64) is None
    # exempt: never counted, never refused
    for exempt in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.9.8.7", "2001:db8:9:1::5"):
        assert limits.key_for(ip(exempt)) is None
        assert all(limits.admit(limits.key_for(ip(exempt))) is None for _ in range(10))
    assert limits.key_for(None) is None
    limits.release(None)  # an exempt connection ends: nothing to do


def test_zero_turns_each_limit_off() -> None:
    off = AddressLimits(0, 0, 0.0)
    assert not off.enabled
    assert off.key_for(ip("127.0.0.2")) is None
    only_rate = AddressLimits(0, 2, 60.0)
    key = only_rate.key_for(ip("192.0.2.1"))
    assert only_rate.admit(key) is None and only_rate.admit(key) is None
    assert only_rate.admit(key) is not None  # the rate, not the count
    only_count = AddressLimits(3, 0, 60.0)
    key = only_count.key_for(ip("192.0.2.1"))
    for _ in range(100):
        assert only_count.admit(key) is None
        only_count.release(key)


def test_connect_rate_is_a_token_bucket_and_a_refusal_takes_no_token() -> None:
    clock = Clock(1000.0)
    limits = AddressLimits(0, 3, 60.0, clock=clock)
    key = limits.key_for(ip("192.0.2.1"))
    for _ in range(3):
        assert limits.admit(key) is None
        limits.release(key)
    refusal = limits.admit(key)
    assert refusal is not None and refusal.reason == "connect_rate"
    other = limits.key_for(ip("192.0.2.2"))
    assert limits.admit(other) is None  # another address has its own bucket
    clock.now += 19.0
    assert limits.admit(key) is not None  # not quite one token back (20 s)
    clock.now += 1.0
    assert limits.admit(key) is None  # one back; the refusals took none
    assert limits.admit(key) is not None
    clock.now += 60.0  # full again, and no more than full
    assert [limits.admit(key) for _ in range(4)].count(None) == 3


def test_refusals_of_one_address_are_logged_once_a_minute() -> None:
    clock = Clock(1000.0)
    limits = AddressLimits(1, 0, 0.0, clock=clock)
    a, b = limits.key_for(ip("192.0.2.1")), limits.key_for(ip("192.0.2.2"))
    assert limits.admit(a) is None and limits.admit(b) is None
    first = limits.admit(a)
    assert first is not None and first.log and first.unlogged == 1
    for _ in range(5):
        clock.now += 1
        later = limits.admit(a)
        assert later is not None and not later.log
    other = limits.admit(b)
    assert other is not None and other.log  # each address has its own minute
    clock.now += LOG_INTERVAL
    again = limits.admit(a)
    assert again is not None and again.log and again.unlogged == 6  # 5 unlogged, and this


def test_quiet_addresses_are_forgotten_and_memory_is_bounded() -> None:
    clock = Clock(1000.0)
    limits = AddressLimits(16, 32, 600.0, clock=clock, max_tracked=1000)
    held = limits.key_for(ip("198.51.100.1"))
    assert limits.admit(held) is None  # stays open throughout: never forgotten
    for n in range(5000):  # a storm of addresses, each connecting once and leaving
        key = limits.key_for(ipaddress.IPv4Address(0x0A000000 + n))
        assert limits.admit(key) is None
        limits.release(key)
        clock.now += 0.001
        assert len(limits) <= 1000 + 5
    clock.now += 600.0  # all quiet for a period: their buckets are full again
    for n in range(10):
        key = limits.key_for(ip(f"192.0.2.{n}"))
        assert limits.admit(key) is None
        limits.release(key)
    assert len(limits) < 1000  # the old ones are going, a few at each admission
    for n in range(300):  # one new address a second
        key = limits.key_for(ipaddress.IPv4Address(0xC6336400 + n))
        assert limits.admit(key) is None
        limits.release(key)
        clock.now += 1.0
    # what is left: the held address and those seen in the last 10 minutes
    assert len(limits) <= 1 + 10 + 300
    for _ in range(15):  # the held connection's count was kept: 15 more, not 16
        assert limits.admit(held) is None
    assert limits.admit(held) is not None


# ------------------------------------------------------------------ over real TCP


def config(**overrides: object) -> ServerConfig:
    return ServerConfig(**{"port": 0, "idle_timeout": 0, **overrides})  # type: ignore[arg-type]


async def connect_from(source: str, address: str) -> LineClient:
    """A raw client whose socket is bound to ``source`` (127.0.0.2 ...)."""
    host, port = split_addr(address)
    return LineClient(await anyio.connect_tcp(host, port, local_host=source))


async def online_from(source: str, address: str) -> LineClient:
    client = await connect_from(source, address)
    assert await client.line() == f"[{client.addr}]{client.addr}:user is online\n"
    return client


async def refused(client: LineClient, line: str) -> None:
    assert await client.line() == line
    assert await client.eof()
    await client.aclose()


def refusal_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "too_many_connections"]


@pytest.mark.anyio
async def test_the_17th_connection_from_one_address_is_refused_in_both_modes(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="imkit.server")
    async with run_server(config(metrics="127.0.0.1:0")) as server:  # the defaults: 16
        address = server.addresses[0]
        sixteen = [await online_from("127.0.0.2", address) for _ in range(16)]
        # a text client (netcat) gets one line, before anything else, and is closed
        await refused(await connect_from("127.0.0.2", address), TOO_MANY_16)
        # a JSON client too: the refusal comes before its hello is read (as server_full)
        json_client = await connect_from("127.0.0.2", address)
        await json_client.send('{"type":"hello","v":1,"id":1}\n')
        await refused(json_client, TOO_MANY_16)
        # imkit.client reports the sentence as why it was disconnected
        host, port = split_addr(address)
        with monkeypatch.context() as patch:
            patch.setattr(anyio, "connect_tcp", partial(anyio.connect_tcp, local_host="127.0.0.2"))
            with pytest.raises(Disconnected, match="^too many connections from your address"):
                async with connect(host, port):  # pragma: no cover - refused
                    pass
        # 127.0.0.1 is exempt: a local proxy or load generator
        local = [await online_from("127.0.0.1", address) for _ in range(20)]
        assert len(server.hub) == 36
        # those in are unaffected; closing one frees a place
        await sixteen[0].send(b"still here\n")
        assert (await sixteen[1].line_matching("still here")).endswith(":still here\n")
        await sixteen[0].aclose()
        with anyio.fail_after(10):
            while len(server.hub) > 35:
                await anyio.sleep(0.02)
        sixteen[0] = await online_from("127.0.0.2", address)
        await refused(await connect_from("127.0.0.2", address), TOO_MANY_16)

        assert server.hub.stats.refused_per_address == 4
        samples = await Scraper(server).metrics()
        assert value(samples, "imkit_connections_refused_total", reason="per_address") == 4
        assert value(samples, "imkit_connections_refused_total", reason="full") == 0
        # four refusals of one address within a minute: one log line
        [record] = refusal_records(caplog)
        assert record.levelno == logging.WARNING
        fields = record.__dict__
        assert fields["network"] == "127.0.0.2" and fields["addr"].startswith("127.0.0.2:")
        assert (fields["reason"], fields["limit"], fields["refused"]) == ("max_per_ip", 16, 1)
        assert record.getMessage() == (
            f"{fields['addr']}: refused: too many connections from 127.0.0.2 (--max-per-ip 16); "
            "refusals of one address are logged at most once a minute"
        )
        for client in sixteen + local:
            await client.aclose()


@pytest.mark.anyio
async def test_host_any_ipv6_takes_ipv4_clients_as_ipv4() -> None:
    """Issue 25, item 8: ``--host ::`` listens for IPv4 too (dual-stack, as people
    expect of ``::``), and an IPv4 client is shown, counted and banned as its IPv4
    address, not as ``::ffff:127.0.0.2``."""
    config = ServerConfig(host="::", port=0, db="none", idle_timeout=0, max_per_ip=1)
    async with run_server(config) as server:
        port = split_addr(server.addresses[0])[1]
        assert server.addresses == [f"[::]:{port}"]
        four = LineClient(await anyio.connect_tcp("127.0.0.1", port, local_host="127.0.0.2"))
        assert await four.line() == f"[{four.addr}]{four.addr}:user is online\n"
        assert four.addr.startswith("127.0.0.2:")
        six = LineClient(await anyio.connect_tcp("::1", port))
        six_addr = f"[::1]:{six.addr.rsplit(':', 1)[1]}"  # LineClient.addr has no brackets
        assert await six.line() == f"[{six_addr}]{six_addr}:user is online\n"
        again = LineClient(await anyio.connect_tcp("127.0.0.1", port, local_host="127.0.0.2"))
        assert await again.line() == "too many connections from your address (1 at most)\n"
        users = await answers.answer(server, b'{"type":"who"}')
        assert [u["addr"] for u in users["users"]] == [four.addr, six_addr]
        reply = await answers.answer(server, b'{"type":"ban","target":"127.0.0.2"}')
        assert reply["removed"] == 1
        assert await four.line_matching("you are banned")


@pytest.mark.anyio
async def test_rate_exempt_addresses_and_zero(caplog: pytest.LogCaptureFixture) -> None:
    async with run_server(config(max_per_ip=2, rate_exempt=("127.0.0.3",))) as server:
        address = server.addresses[0]
        exempt = [await online_from("127.0.0.3", address) for _ in range(5)]
        counted = [await online_from("127.0.0.2", address) for _ in range(2)]
        line = "too many connections from your address (2 at most)\n"
        await refused(await connect_from("127.0.0.2", address), line)
        for client in exempt + counted:
            await client.aclose()
    async with run_server(config(max_per_ip=0, connect_rate=0)) as server:
        many = [await online_from("127.0.0.2", server.addresses[0]) for _ in range(40)]
        assert server.hub.stats.refused_per_address == 0
        for client in many:
            await client.aclose()


@pytest.mark.anyio
async def test_connect_rate_refusals_are_logged_again_a_minute_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="imkit.server")
    line = "too many new connections from your address: at most 2 every hour\n"
    async with run_server(config(connect_rate=2, connect_period=3600.0)) as server:
        clock = server.limits.clock = Clock(1000.0)  # the minute between log lines, at once
        address = server.addresses[0]
        for _ in range(2):
            await (await online_from("127.0.0.2", address)).aclose()
        for _ in range(3):
            await refused(await connect_from("127.0.0.2", address), line)
        clock.now += LOG_INTERVAL
        await refused(await connect_from("127.0.0.2", address), line)
        assert server.hub.stats.refused_per_address == 4
    first, second = refusal_records(caplog)
    assert (first.__dict__["reason"], first.__dict__["limit"]) == ("connect_rate", "2/1h")
    assert "too many new connections from 127.0.0.2 (--connect-rate 2/1h);" in first.getMessage()
    assert second.__dict__["refused"] == 3  # two not logged, and this one
    assert "(--connect-rate 2/1h), and 2 more since the last line;" in second.getMessage()


@pytest.mark.anyio
async def test_a_failed_tls_handshake_gives_its_place_back(tls_files: dict[str, str]) -> None:
    tls = {"tls_cert": tls_files["cert"], "tls_key": tls_files["key"]}
    async with run_server(config(max_per_ip=1, **tls)) as server:
        address = server.addresses[0]
        for _ in range(3):  # plain text to a TLS port: the handshake fails
            plain = await connect_from("127.0.0.2", address)
            await plain.send(b"hello\n")
            assert await plain.eof()
            await plain.aclose()
        with anyio.fail_after(10):
            while server.hub.stats.refused_tls < 3:
                await anyio.sleep(0.02)
        assert server.hub.stats.refused_per_address == 0


def test_connect_rate_through_imkit_serve_its_log_and_stats(short_dir: Path) -> None:
    socket_path = str(short_dir / "admin.sock")
    process = start_server_process(
        *("--idle-timeout", "0", "--max-per-ip", "2", "--log-format", "json"),
        *("--admin-socket", socket_path),
        env=imkit_env(IMKIT_CONNECT_RATE="3/60s"),
    )
    try:

        async def connections_down_to(count: int) -> None:
            """Until the server has seen the closed connections go (a machine under
            load may take a while; a fixed sleep was flaky)."""
            with anyio.fail_after(10):
                while True:
                    reply = await admin_client.request(Path(socket_path), {"type": "stats"})
                    if reply["connections_now"] <= count:
                        return
                    await anyio.sleep(0.05)

        async def scenario() -> None:
            address = process.address
            a = await online_from("127.0.0.2", address)
            b = await online_from("127.0.0.2", address)  # two of three new connections
            await refused(
                await connect_from("127.0.0.2", address),
                "too many connections from your address (2 at most)\n",
            )  # the refusal took no token
            await a.aclose()
            await connections_down_to(1)  # the server has seen a leave
            c = await online_from("127.0.0.2", address)  # the third
            await b.aclose()
            await c.aclose()
            await connections_down_to(0)  # not refused for max-per-ip: both are gone
            for _ in range(3):  # both closed; but three in a minute is all
                await refused(
                    await connect_from("127.0.0.2", address),
                    "too many new connections from your address: at most 3 every minute\n",
                )
            local = [await online_from("127.0.0.1", address) for _ in range(5)]  # exempt
            for client in local:
                await client.aclose()

        anyio.run(scenario)
        stats = run_imkit("stats", "--json", "--admin-socket", socket_path)
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["refused_per_address"] == 4
        table = run_imkit("stats", "--admin-socket", socket_path).stdout.splitlines()
        row = next(line for line in table if line.startswith("refused: too many from one"))
        assert row.split()[-1] == "4"
    finally:
        assert process.stop() == 0
    logged = [json.loads(line) for line in process.log if line.startswith("{")]
    refusals = [entry for entry in logged if entry["event"] == "too_many_connections"]
    assert len(refusals) == 1, refusals  # four refusals of one address in a minute
    [entry] = refusals
    assert (entry["network"], entry["reason"], entry["limit"]) == ("127.0.0.2", "max_per_ip", 2)
    assert entry["level"] == "warning" and entry["addr"].startswith("127.0.0.2:")


@needs_redis
@pytest.mark.anyio
async def test_the_limit_is_per_node_in_a_cluster(cluster: Cluster) -> None:
    one, two = await anyio.to_thread.run_sync(lambda: cluster.start_nodes(2, "--max-per-ip", "2"))
    on_one = [await online_from("127.0.0.2", one.address) for _ in range(2)]
    line = "too many connections from your address (2 at most)\n"
    await refused(await connect_from("127.0.0.2", one.address), line)
    # node 2 has its own count: the two on node 1 do not count there
    on_two = [await online_from("127.0.0.2", two.address) for _ in range(2)]
    await refused(await connect_from("127.0.0.2", two.address), line)
    for client in on_one + on_two:
        await client.aclose()
