"""The PROXY protocol: the user's address, from a load balancer in front of imkit.

Behind a TCP balancer every connection comes from the balancer. With
``--proxy-protocol CIDR``, a connection from those networks must begin with the header
the balancer writes first (HAProxy's ``send-proxy`` is version 1, text;
``send-proxy-v2`` version 2, binary), and the source address it carries is the user's
address everywhere in imkit. The header comes before anything else, TLS included.

The specification is haproxy.org's ``proxy-protocol.txt``. This is a small parser of
exactly what imkit needs (the source address of a TCP connection), written here rather
than taken from a package: none of the Python ones is maintained enough to depend on,
and the format is fixed. :func:`parse` is pure and tested on its own (valid headers of
both versions, every malformed form, any split into pieces).

Not trusted: a header from any other address is not parsed at all; its bytes reach the
chat as any client's bytes do (a text line starting with ``PROXY``).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

import anyio

# A connection from a trusted network whose header has not arrived by then is closed.
PROXY_TIMEOUT = 5.0

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest version 1 header, CRLF included (the specification's figure)
V2_FIXED = 16  # signature, version and command, family, length
V2_MAX_BODY = 4096  # addresses and TLVs; real balancers send far less

_V2_COMMAND_LOCAL, _V2_COMMAND_PROXY = 0x0, 0x1
_V2_TCP4, _V2_TCP6 = 0x11, 0x21


class ProxyHeaderError(ValueError):
    """The bytes are not a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A header parsed: its length in bytes and the user's ``(ip, port)``, or None when
    the balancer speaks for itself (v1 ``UNKNOWN``, v2 ``LOCAL``: a health check)."""

    length: int
    source: tuple[str, int] | None


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None while more bytes are needed.

    Raises :class:`ProxyHeaderError` as soon as the bytes cannot be the start of one.
    """
    if data[:1] == b"\r":
        return _parse_v2(data)
    if data[:1] == b"P":
        return _parse_v1(data)
    if data:
        raise ProxyHeaderError("no PROXY protocol header")
    return None


def _parse_v1(data: bytes) -> ProxyHeader | None:
    if not V1_PREFIX.startswith(data[: len(V1_PREFIX)]):
        raise ProxyHeaderError("no PROXY protocol header")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("version 1 header longer than 107 bytes")
        return None
    try:
        fields = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyHeaderError("version 1 header is not ASCII") from None
    length = end + 2
    if fields[1:2] == ["UNKNOWN"]:
        return ProxyHeader(length, None)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("version 1 header: expected PROXY TCP4|TCP6 SRC DST SPORT DPORT")
    _, family, source, destination, source_port, destination_port = fields
    version = 4 if family == "TCP4" else 6
    ip = _address(source, version)
    _address(destination, version)
    port = _port(source_port)
    _port(destination_port)
    return ProxyHeader(length, (ip, port))


def _address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"version 1 header: {text!r} is not an address") from None
    if address.version != version:
        raise ProxyHeaderError(f"version 1 header: {text!r} is not an IPv{version} address")
    return _shown(address)


def _shown(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The user's address as imkit shows it: an IPv4-mapped IPv6 address (a dual-stack
    balancer's IPv4 client) is the IPv4 address, as the limits and bans count it;
    Python before 3.13 would write ``::ffff:1.2.3.4`` as ``::ffff:102:304``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _port(text: str) -> int:
    # Decimal digits only, no sign, no leading zero (the specification's form).
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise ProxyHeaderError(f"version 1 header: {text!r} is not a port")
    port = int(text)
    if port > 65535:
        raise ProxyHeaderError(f"version 1 header: {text!r} is not a port")
    return port


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if not V2_SIGNATURE.startswith(data[: len(V2_SIGNATURE)]):
        raise ProxyHeaderError("no PROXY protocol header")
    if len(data) < V2_FIXED:
        return None
    version_command, family, body_length = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2:
        raise ProxyHeaderError("version 2 header with another version")
    command = version_command & 0x0F
    if command not in (_V2_COMMAND_LOCAL, _V2_COMMAND_PROXY):
        raise ProxyHeaderError("version 2 header with an unknown command")
    if body_length > V2_MAX_BODY:
        raise ProxyHeaderError("version 2 header longer than 4096 bytes")
    length = V2_FIXED + body_length
    if len(data) < length:
        return None
    if command == _V2_COMMAND_LOCAL:
        return ProxyHeader(length, None)
    body = data[V2_FIXED:length]
    if family == _V2_TCP4:
        if body_length < 12:
            raise ProxyHeaderError("version 2 header: TCP over IPv4 needs 12 bytes")
        source_ip, _, port, _ = struct.unpack("!4s4sHH", body[:12])
        return ProxyHeader(length, (str(ipaddress.IPv4Address(source_ip)), port))
    if family == _V2_TCP6:
        if body_length < 36:
            raise ProxyHeaderError("version 2 header: TCP over IPv6 needs 36 bytes")
        source_ip, _, port, _ = struct.unpack("!16s16sHH", body[:36])
        return ProxyHeader(length, (_shown(ipaddress.IPv6Address(source_ip)), port))
    # UNSPEC, UDP, Unix sockets: not a user's TCP connection; the balancer's own address.
    return ProxyHeader(length, None)


async def read_header(sock: socket.socket) -> ProxyHeader:
    """Read exactly the header from the front of ``sock`` (non-blocking), leaving what
    follows it unread; :class:`ProxyHeaderError` when it is invalid, the connection
    closes first, or it does not come within :data:`PROXY_TIMEOUT` seconds."""
    with anyio.move_on_after(PROXY_TIMEOUT):
        seen = b""
        while True:
            await anyio.wait_readable(sock)
            try:
                data = sock.recv(V2_FIXED + V2_MAX_BODY, socket.MSG_PEEK)
            except BlockingIOError:
                continue
            except OSError as error:
                raise ProxyHeaderError(f"connection lost: {error.strerror}") from None
            if not data:
                raise ProxyHeaderError("closed before its PROXY protocol header")
            if data == seen:  # nothing new yet (peeking does not consume)
                await anyio.sleep(0.01)
                continue
            seen = data
            header = parse(data)
            if header is not None:
                sock.recv(header.length)  # consume exactly the header; it is all there
                return header
    raise ProxyHeaderError(f"no PROXY protocol header within {PROXY_TIMEOUT:g} seconds")
