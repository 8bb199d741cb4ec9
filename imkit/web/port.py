"""The web port as the server runs it (``--web HOST:PORT``): its listener and the
addresses really listened on, what it serves, and the HTTP exchanges going on, which
the shutdown cancels; and the ``--hooks HOST:PORT`` listeners, the same HTTP serving
only incoming webhooks. The chat's own wiring (limits, the WebSocket as a chat
connection) stays in :mod:`imkit.server`."""

from __future__ import annotations

import logging
import socket
from dataclasses import replace

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from imkit.errors import ServeError
from imkit.transport.links import Link
from imkit.transport.listener import parse_address, tcp_listener
from imkit.web.hooks import HookReceiver
from imkit.web.http import WebConfig, load_static, origin_key, serve_http
from imkit.web.link import WebSocketLink

log = logging.getLogger("imkit.server")


class WebPort:
    """The bound web port; :meth:`bind` makes one, :meth:`aclose` ends it."""

    def __init__(
        self,
        listeners: list[MultiListener[anyio.abc.SocketStream]],
        addresses: list[str],
        web: WebConfig,
        hook_addresses: list[str],
        page: bool = True,
    ) -> None:
        self.listeners = listeners  # the page's first (when page), then the --hooks ones
        self.addresses = addresses  # the page's (--web); empty without one
        self.hook_addresses = hook_addresses  # --hooks'
        self.config = web
        self.hooks_config = replace(web, page=False)
        self.page = page
        self._http_scopes: set[anyio.CancelScope] = set()  # page loads, kept-alive
        self._closed = False

    @classmethod
    async def bind(
        cls,
        address: str | None,
        origins: tuple[str, ...],
        *,
        secure: bool,
        line_limit: int,
        request_timeout: float,
        hooks: HookReceiver | None = None,
        hooks_at: tuple[str, ...] = (),
    ) -> WebPort:
        """Listen on ``address`` (HOST:PORT; None: no page) and each of ``hooks_at``
        (--hooks); :class:`ServeError` when one cannot be, or when an origin
        (--web-origin) is not an http(s) origin. ``hooks`` takes POST /hooks/KEY."""
        try:
            places = [parse_address(a) for a in ((address,) if address else ()) + hooks_at]
        except ValueError as error:
            raise ServeError(f"--web/--hooks: {error}") from None
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
            hooks=hooks,
        )
        addresses: list[str] = []
        hook_addresses: list[str] = []
        listeners: list[MultiListener[anyio.abc.SocketStream]] = []
        try:
            for n, (host, port) in enumerate(places):
                page = n == 0 and address is not None
                into, flag = (addresses, " (--web)") if page else (hook_addresses, " (--hooks)")
                listeners.append(await tcp_listener(host, port, into, flag))
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
        return cls(listeners, addresses, web, hook_addresses, page=address is not None)

    def sockets(self) -> list[tuple[socket.socket, str]]:
        """The listening sockets, for the server's accept loops, each with its kind:
        ``web`` (the page's) or ``hooks`` (--hooks)."""
        found = []
        for n, listener in enumerate(self.listeners):
            kind = "web" if n == 0 and self.page else "hooks"
            found += [(sub.extra(SocketAttribute.raw_socket), kind) for sub in listener.listeners]
        return found

    def hook_urls(self) -> list[str]:
        """The base URLs incoming webhooks are served at (``.../hooks/``)."""
        scheme = "https" if self.config.secure else "http"
        places = self.addresses + self.hook_addresses
        return [f"{scheme}://{addr}/hooks/" for addr in places] if self.config.hooks else []

    def log_listening(self) -> None:
        scheme = "https" if self.config.secure else "http"
        urls = [f"{scheme}://{addr}/" for addr in self.addresses]
        if urls:
            log.info("web on %s", ", ".join(urls), extra={"event": "web_listening", "urls": urls})
        hooks = [f"{scheme}://{addr}/hooks/" for addr in self.hook_addresses]
        if hooks:
            log.info(
                "hooks on %s", ", ".join(hooks), extra={"event": "hooks_listening", "urls": hooks}
            )

    async def serve_http(self, link: Link, addr: str, page: bool = True) -> WebSocketLink | None:
        """Files until the connection asks for the WebSocket; None when it ended, or
        the shutdown (:meth:`aclose`) ended it, before that. ``page`` False: a --hooks
        port's connection (only /hooks/KEY; never a WebSocket)."""
        with anyio.CancelScope() as scope:
            self._http_scopes.add(scope)
            try:
                if self._closed:
                    scope.cancel()
                return await serve_http(link, addr, self.config if page else self.hooks_config)
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
        for listener in self.listeners:
            await listener.aclose()
        for scope in self._http_scopes:
            scope.cancel()
