"""Per-address limits (issue 14, requirement 3): ``--max-per-ip`` and ``--connect-rate``.

The rules of :mod:`imkit.transport.limits` with a fake clock, then over real TCP: clients
bind their socket to 127.0.0.2 (127.0.0.1 and ::1 are exempt), against an in-process
server, a real ``imkit serve`` and a two-node cluster.

Here the tests that need no sockets and no subprocesses; the others are in
cluster/test_per_address.py, process/test_per_address.py, server/test_per_address.py."""

from __future__ import annotations

import ipaddress

import pytest

from imkit.transport.limits import (
    LOG_INTERVAL,
    AddressLimits,
    address_key,
    format_connect_rate,
    parse_connect_rate,
    peer_ip,
)
from tests.support import (
    Clock,
)
from tests.support.per_address import TOO_MANY_16

ip = ipaddress.ip_address
net = ipaddress.ip_network


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
