"""Per-address limits (issue 14, requirement 3): ``--max-per-ip`` and ``--connect-rate``.

The rules of :mod:`imkit.transport.limits` with a fake clock, then over real TCP: clients
bind their socket to 127.0.0.2 (127.0.0.1 and ::1 are exempt), against an in-process
server, a real ``imkit serve`` and a two-node cluster.

Here the tests that need an in-process server on loopback; the others are in
cluster/test_per_address.py, process/test_per_address.py, unit/test_per_address.py."""

from __future__ import annotations

import logging
from functools import partial

import anyio
import pytest

from imkit.client.library import connect
from imkit.errors import Disconnected
from imkit.operator import answers
from imkit.server import ServerConfig
from imkit.transport.limits import (
    LOG_INTERVAL,
)
from tests.support import (
    Clock,
    LineClient,
    run_server,
    split_addr,
)
from tests.support.metrics import Scraper, value
from tests.support.per_address import TOO_MANY_16, connect_from, online_from, refused

# ------------------------------------------------------------------ over real TCP


def config(**overrides: object) -> ServerConfig:
    return ServerConfig(**{"port": 0, "idle_timeout": 0, **overrides})  # type: ignore[arg-type]


def refusal_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "too_many_connections"]


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
