"""Turning a connection away before it is a client: the server is full, its address
is banned or over its per-address limits, its PROXY header is missing or malformed.
Each refusal is counted (imkit stats, metrics), logged, and said in one line (a bye)
before the socket is closed; on the web port, where a text line is not HTTP, the socket
is only closed, except for a full server, which is told over the WebSocket."""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Protocol

import anyio

from imkit.hub.members import ban_bye
from imkit.hub.stats import Stats
from imkit.protocol import Bye, encode_json, encode_text, one_line
from imkit.rules.bans import Ban
from imkit.transport.limits import AddressLimits, Refusal, format_connect_rate
from imkit.transport.links import LINK_ERRORS, Link
from imkit.transport.proxy import ProxyHeaderError, read_header

log = logging.getLogger("imkit.server")

# A WebSocket opened on a full server: its bye, then the close frame 1013 (try again
# later), each given this long at most; then this long for the client to close.
TRY_AGAIN_LATER = 1013
FULL_CLOSE_TIMEOUT = 1.0
FULL_CLOSE_LINGER = 1.0


class Refusals:
    """The server's refusals; see the module docstring."""

    def __init__(self, stats: Stats, limits: AddressLimits, max_clients: int) -> None:
        self.stats = stats
        self.limits = limits
        self.max_clients = max_clients

    async def user_behind_proxy(self, sock: socket.socket, peer: object, addr: str) -> object:
        """The user's address from the balancer's PROXY header (the balancer's own for a
        health check); None, the socket closed, when there is no valid header."""
        try:
            header = await read_header(sock)
        except ProxyHeaderError as error:
            self.stats.refused_proxy_header += 1
            log.warning(
                "%s: closed: %s",
                addr,
                error,
                extra={"event": "proxy_header_invalid", "addr": addr, "reason": str(error)},
            )
            sock.close()
            return None
        return peer if header.source is None else header.source

    def full_bye(self, addr: str) -> Bye:
        """Count and log a refusal for --max-clients; the bye that says so."""
        self.stats.refused_full += 1
        log.warning(
            "%s: refused: the server is full (%d clients)",
            addr,
            self.max_clients,
            extra={"event": "server_full", "addr": addr, "count": self.max_clients},
        )
        return Bye("server_full", f"the server is full ({self.max_clients} clients)")

    def full(self, sock: socket.socket, addr: str, web: bool = False, irc: bool = False) -> None:
        self._bye_and_close(sock, self.full_bye(addr), web, irc)

    async def full_websocket(self, websocket: WebSocket, addr: str) -> None:
        """A WebSocket opened on a full server: the JSON bye ``server_full``, then the
        close frame 1013 (try again later), so that the page can say why."""
        bye = self.full_bye(addr)
        websocket.close_code = TRY_AGAIN_LATER
        with anyio.move_on_after(FULL_CLOSE_TIMEOUT):
            with contextlib.suppress(*LINK_ERRORS):
                await websocket.write(encode_json(bye))
        await websocket.aclose(FULL_CLOSE_LINGER)

    def per_address(
        self, sock: socket.socket, addr: str, refusal: Refusal, web: bool = False, irc: bool = False
    ) -> None:
        self.stats.refused_per_address += 1
        if refusal.log:
            self._log_refusal(addr, refusal)
        self._bye_and_close(sock, Bye("too_many_connections", refusal.message), web, irc)

    def _log_refusal(self, addr: str, refusal: Refusal) -> None:
        limits, network = self.limits, str(refusal.key)
        if refusal.reason == "max_per_ip":
            limit: object = limits.max_open
            why = f"too many connections from {network} (--max-per-ip {limit})"
        else:
            limit = format_connect_rate(limits.rate, limits.period)
            why = f"too many new connections from {network} (--connect-rate {limit})"
        unlogged = refusal.unlogged - 1  # refused since the last line, not logged
        more = f", and {unlogged} more since the last line" if unlogged else ""
        log.warning(
            "%s: refused: %s%s; refusals of one address are logged at most once a minute",
            addr,
            why,
            more,
            extra={
                "event": "too_many_connections",
                "addr": addr,
                "network": network,
                "reason": refusal.reason,
                "limit": limit,
                "refused": refusal.unlogged,
            },
        )

    def _bye_and_close(
        self, sock: socket.socket, bye: Bye, web: bool = False, irc: bool = False
    ) -> None:
        """A refusal before anything else: one text line, one try (it waits for nobody);
        on the IRC port an IRC ``ERROR`` line. On the web port the connection is only
        closed: a text line is not HTTP."""
        if not web:
            line = f"ERROR :{one_line(bye.message)}\r\n".encode() if irc else encode_text(bye)
            with contextlib.suppress(OSError):
                self.stats.bytes_out += sock.send(line)
        sock.close()

    def banned(
        self, sock: socket.socket, addr: str, ban: Ban, web: bool = False, irc: bool = False
    ) -> None:
        self.stats.refused_banned += 1
        log.info(
            "%s: refused: banned (%s)",
            addr,
            ban.target,
            extra={"event": "refused_banned", "addr": addr, "target": ban.target},
        )
        self._bye_and_close(sock, ban_bye(ban), web, irc)  # one line, one try, as for a full server


class WebSocket(Link, Protocol):
    """What a full server's refusal needs of a WebSocket link (imkit.web.link): the
    transport package does not import the web package."""

    close_code: int
