"""Bans and mutes (issue 14, points 1, 2 and 7) over real TCP: clients come from their
own loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a ban can hit one and not
another. A ban removes the matching users at once and refuses them at connect, lasts
across a restart, ends by itself (an injected clock), and is lifted by unban; a guest's
name bans its address. A mute refuses messages and renames in both modes. In a cluster
a ban made on one node removes a user of the other, and a mute reaches any node.

Here the tests that need no sockets and no subprocesses; the others are in
cluster/test_moderation.py, process/test_moderation.py, server/test_moderation.py."""

from __future__ import annotations

import pytest

from imkit.rules.bans import Ban, Bans, parse_duration, parse_target, shown, widened
from imkit.rules.names import name_problem

# --------------------------------------------------------------------- pure rules


def test_durations_and_targets() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400
    for bad in ("", "10", "m", "1x", "-5m", "0s", "10m ", "99999d"):
        with pytest.raises(ValueError):
            parse_duration(bad if bad != "10m " else "10 m")
    assert str(parse_target("203.0.113.7")) == "203.0.113.7/32"
    assert str(parse_target("198.51.100.0/24")) == "198.51.100.0/24"
    assert str(parse_target("2001:db8::/64")) == "2001:db8::/64"
    assert str(parse_target("::ffff:203.0.113.7")) == "203.0.113.7/32"
    assert parse_target("alex") is None


def test_an_ipv6_address_stands_for_its_64() -> None:
    """Issue 25, item 6: as in the per-address limits, one IPv6 host is its /64."""
    assert str(parse_target("2001:db8::1")) == "2001:db8::/64"
    assert str(parse_target(" 2001:db8:0:0:ffff::1 ")) == "2001:db8::/64"
    assert str(parse_target("2001:db8::1/128")) == "2001:db8::1/128"  # a prefix given
    assert str(parse_target("2001:db8::1/96")) == "2001:db8::/96"
    assert str(parse_target("::ffff:203.0.113.7")) == "203.0.113.7/32"  # IPv4, as limits
    for target in ("2001:db8::1", "2001:db8::1/128", "203.0.113.7", "2001:db8::/48"):
        network = parse_target(target)
        assert network is not None and parse_target(shown(network)) == network
    assert widened("2001:db8::1", parse_target("2001:db8::1")) == "2001:db8::1"  # type: ignore[arg-type]
    assert widened("2001:db8::1/128", parse_target("2001:db8::1/128")) is None  # type: ignore[arg-type]
    bans = Bans()
    bans.add(Ban("2001:db8::1", None, None, "uid 0", 0.0))  # as kept before this rule
    assert bans.match("[2001:db8::2]:1", 1.0) is not None
    assert bans.match("[2001:db8:0:1::1]:1", 1.0) is None


def test_names_that_are_ipv4_targets_are_not_names() -> None:
    assert name_problem("203.0.113.7") == "a name cannot be an IPv4 address or network"
    assert name_problem("10.0.0.0/8") == "a name cannot be an IPv4 address or network"
    assert name_problem("1.2.3") is None  # not an address
    assert name_problem("2024") is None


def test_a_ban_matches_its_network_and_ends() -> None:
    bans = Bans()
    bans.add(Ban("198.51.100.0/24", 100.0, "spam", "uid 0", 0.0))
    bans.add(Ban("2001:db8::/64", None, None, "uid 0", 1.0))
    assert bans.match("198.51.100.9:4000", 50.0) is not None
    assert bans.match("198.51.101.9:4000", 50.0) is None
    assert bans.match("198.51.100.9:4000", 100.0) is None  # ended
    assert bans.match("[2001:db8::7]:443", 1e12) is not None  # permanent
    assert bans.match("[::ffff:198.51.100.9]:1", 50.0) is not None  # IPv4-mapped
    assert [b.target for b in bans.in_force(200.0)] == ["2001:db8::/64"]
