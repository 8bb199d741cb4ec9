"""PROXY protocol headers (v1 text, v2 binary) as a balancer sends them."""

from __future__ import annotations

import ipaddress
import struct

from imkit.transport.proxy import (
    V2_SIGNATURE,
)

V1 = b"PROXY TCP4 203.0.113.7 10.0.0.5 51000 8888\r\n"


def v2(
    source: str = "198.51.100.9",
    port: int = 4000,
    *,
    command: int = 0x21,
    tlv: bytes = b"",
) -> bytes:
    """A version 2 header as HAProxy's send-proxy-v2 writes it."""
    ip = ipaddress.ip_address(source)
    if ip.version == 4:
        body = struct.pack("!4s4sHH", ip.packed, bytes([10, 0, 0, 5]), port, 8888)
        family = 0x11
    else:
        body = struct.pack("!16s16sHH", ip.packed, bytes(16), port, 8888)
        family = 0x21
    body += tlv
    return V2_SIGNATURE + struct.pack("!BBH", command, family, len(body)) + body
