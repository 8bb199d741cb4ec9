"""The PROXY protocol (``--proxy-protocol CIDR``): the parser on its own (both versions,
every malformed form, any split), then over real TCP: the carried address is the user's
in presence lines, default names and ``imkit who``; a trusted connection without a valid
header is closed; a header from an untrusted address is only chat text; and in a cluster
of two nodes, the other node's users see the carried address too.

Here the tests that need no sockets and no subprocesses; the others are in
cluster/test_proxy_protocol.py, server/test_proxy_protocol.py."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imkit.transport.proxy import (
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    parse,
)
from tests.support.proxy_protocol import V1, v2

V1_IPV6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 8888\r\n"


# ---------------------------------------------------------------------- a cluster


def test_version_1_headers() -> None:
    assert parse(V1 + b"who\n") == ProxyHeader(len(V1), ("203.0.113.7", 51000))
    assert parse(V1_IPV6) == ProxyHeader(len(V1_IPV6), ("2001:db8::7", 40000))
    unknown = b"PROXY UNKNOWN\r\n"
    assert parse(unknown) == ProxyHeader(len(unknown), None)
    with_addresses = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"  # allowed, and ignored
    assert parse(with_addresses) == ProxyHeader(len(with_addresses), None)


def test_version_2_headers() -> None:
    header = v2()
    assert parse(header + b"who\n") == ProxyHeader(len(header), ("198.51.100.9", 4000))
    six = v2("2001:db8::9", 443)
    assert parse(six) == ProxyHeader(len(six), ("2001:db8::9", 443))
    with_tlv = v2(tlv=b"\x04\x00\x03abc")  # a TLV after the addresses is skipped
    assert parse(with_tlv) == ProxyHeader(len(with_tlv), ("198.51.100.9", 4000))
    local = V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, 0)  # a balancer's health check
    assert parse(local) == ProxyHeader(16, None)
    unspec = V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x00, 0)
    assert parse(unspec) == ProxyHeader(16, None)


def test_an_ipv4_mapped_source_is_the_ipv4_address() -> None:
    """Issue 25, item 8: a dual-stack balancer's IPv4 client, not ``::ffff:cb00:7107``."""
    header = v2("::ffff:203.0.113.7", 4000)
    assert parse(header) == ProxyHeader(len(header), ("203.0.113.7", 4000))
    text = b"PROXY TCP6 ::ffff:203.0.113.7 ::ffff:10.0.0.5 51000 8888\r\n"
    assert parse(text) == ProxyHeader(len(text), ("203.0.113.7", 51000))


@pytest.mark.parametrize(
    "data",
    [
        b"hello\r\n",
        b"GET / HTTP/1.1\r\n",
        b"PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n",
        b"PROXY TCP4 1.2.3 1.2.3.5 1 2\r\n",
        b"PROXY TCP4 2001:db8::1 1.2.3.5 1 2\r\n",
        b"PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 -1 2\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 \xd9\xa1 2\r\n",
        b"PROXY TCP4  1.2.3.4 1.2.3.5 1 2\r\n",
        b"PROXY " + b"A" * 120,
        b"\r\n\r\n\x00\r\nQUIX\n" + bytes(4),
        V2_SIGNATURE + struct.pack("!BBH", 0x11, 0x11, 12) + bytes(12),  # version 1 in v2
        V2_SIGNATURE + struct.pack("!BBH", 0x2F, 0x11, 12) + bytes(12),  # command 15
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 8) + bytes(8),  # IPv4 too short
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x21, 20) + bytes(20),  # IPv6 too short
        V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 5000),  # longer than allowed
    ],
)
def test_malformed_headers_are_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


@given(st.sampled_from([V1, V1_IPV6, v2(), v2("2001:db8::9", 443)]), st.data())
def test_any_prefix_of_a_header_asks_for_more(header: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(header) - 1))
    assert parse(header[:cut]) is None
    assert parse(header) is not None


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_cleanly(data: bytes) -> None:
    try:
        header = parse(data)
    except ProxyHeaderError:
        return
    if header is not None:
        assert 0 < header.length <= len(data)
