"""The web port as the server runs it (``--web HOST:PORT``): its listener and the
addresses really listened on, what it serves, and the HTTP exchanges going on, which
the shutdown cancels. The chat's own wiring (limits, the WebSocket as a chat
connection) stays in :mod:`imkit.server`."""

from __future__ import annotations

import logging
import socket

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from imkit.errors import ServeError
from imkit.transport.links import Link
from imkit.transport.listener import parse_address, tcp_listener
from imkit.web.http import WebConfig, load_static, origin_key, serve_http
from imkit.web.link import WebSocketLink

log = logging.getLogger("imkit.server")


class WebPort:
    """The bound web port; :meth:`bind` makes one, :meth:`aclose` ends it."""

    def __init__(
        self, listener: MultiListener[anyio.abc.SocketStream], addresses: list[str], web: WebConfig
    ) -> None:
        self.listener = listener
        self.addresses = addresses
        self.config = web
        self._http_scopes: set[anyio.CancelScope] = set()  # page loads, kept-alive
        self._closed = False

    @classmethod
    async def bind(
        cls,
        address: str,
        origins: tuple[str, ...],
        *,
        secure: bool,
        line_limit: int,
        request_timeout: float,
    ) -> WebPort:
        """Listen on ``address`` (HOST:PORT); :class:`ServeError` when it cannot be, or
        when an origin (--web-origin) is not an http(s) origin."""
        try:
            host, port = parse_address(address)
        except ValueError as error:
            raise ServeError(f"--web: {error}") from None
        keys = set()
        for origin in origins:
            key = origin_key(origin)
            if key is None:
                raise ServeError(f"--web-origin {origin!r} is not an http(s) origin")
            keys.add(key)
        web = WebConfig(
            static=load_static(),
            origins=frozenset(keys),
            secure=secure,
            line_limit=line_limit,
            request_timeout=request_timeout,
        )
        addresses: list[str] = []
        listener = await tcp_listener(host, port, addresses, " (--web)")
        return cls(listener, addresses, web)

    def sockets(self) -> list[socket.socket]:
        """The listening sockets, for the server's accept loops."""
        return [sub.extra(SocketAttribute.raw_socket) for sub in self.listener.listeners]

    def log_listening(self) -> None:
        scheme = "https" if self.config.secure else "http"
        urls = [f"{scheme}://{addr}/" for addr in self.addresses]
        log.info("web on %s", ", ".join(urls), extra={"event": "web_listening", "urls": urls})

    async def serve_http(self, link: Link, addr: str) -> WebSocketLink | None:
        """Files until the connection asks for the WebSocket; None when it ended, or
        the shutdown (:meth:`aclose`) ended it, before that."""
        with anyio.CancelScope() as scope:
            self._http_scopes.add(scope)
            try:
                if self._closed:
                    scope.cancel()
                return await serve_http(link, addr, self.config)
            except Exception:  # pragma: no cover - only a bug: log it, keep serving
                log.exception(
                    "%s: unexpected error in HTTP",
                    addr,
                    extra={"event": "http_error", "addr": addr},
                )
            finally:
                self._http_scopes.discard(scope)
        await link.aclose(0)  # cancelled by the shutdown, or a bug
        return None

    async def aclose(self) -> None:
        """Stop listening, and end every HTTP exchange going on (WebSockets are chat
        connections: the shutdown says goodbye to them with the others)."""
        self._closed = True
        await self.listener.aclose()
        for scope in self._http_scopes:
            scope.cancel()
