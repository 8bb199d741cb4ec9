"""The IRC port as the server runs it (``--irc HOST:PORT``, docs/irc.md): its listeners,
the addresses really listened on, and the protocol state of each IRC client
(:class:`~imkit.irc.wire.IrcConnection`) with what every one of them is told alike (the
server's name, the MOTD). The connections themselves are chat connections: the server
runs them as the chat port's (limits, TLS, the hub), with this state as their wire."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from imkit import __version__
from imkit.errors import ServeError
from imkit.hub.core import Hub
from imkit.irc.names import host
from imkit.irc.whowas import Whowas
from imkit.irc.wire import IrcConnection, Lines
from imkit.server.config import ServerConfig
from imkit.transport.listener import Acceptor, parse_address, tcp_listener

log = logging.getLogger("imkit.server")


def _read_motd(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text(errors="replace").splitlines())
    except OSError as error:
        raise ServeError(f"--motd {path}: {error.strerror}") from None


class IrcPort:
    """The bound IRC port; :meth:`bind` makes one, :meth:`aclose` ends it."""

    def __init__(
        self,
        listeners: list[MultiListener[anyio.abc.SocketStream]],
        addresses: list[str],
        config: ServerConfig,
        motd: tuple[str, ...] | None,
        secure: bool,
    ) -> None:
        self.listeners = listeners
        self.addresses = addresses
        self.server_name = config.server_name or socket.gethostname() or "imkit"
        self.lobby = config.lobby
        self.max_line = config.max_line
        self.motd = motd
        self.secure = secure
        self.created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.operators = dict(entry.split(":", 1) for entry in config.irc_operators)
        self.whowas = Whowas()  # the nicks this node's IRC users left (WHOWAS)

    @classmethod
    async def bind(cls, config: ServerConfig, *, secure: bool) -> IrcPort:
        """Listen on each of ``config.irc``; :class:`ServeError` when one cannot be, or
        the MOTD file cannot be read."""
        motd = None if config.motd is None else _read_motd(config.motd)
        listeners: list[MultiListener[anyio.abc.SocketStream]] = []
        addresses: list[str] = []
        try:
            for address in config.irc:
                try:
                    host_, port = parse_address(address)
                except ValueError as error:
                    raise ServeError(f"--irc: {error}") from None
                listeners.append(await tcp_listener(host_, port, addresses, " (--irc)"))
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
        return cls(listeners, addresses, config, motd, secure)

    def acceptors(self, accepted: Callable[[socket.socket, object], None]) -> list[Acceptor]:
        """The accept loops of the listening sockets, each handing ``accepted`` what it
        accepts; and the log line that says where IRC clients connect."""
        self.log_listening()
        return [
            Acceptor(sub.extra(SocketAttribute.raw_socket), accepted)
            for listener in self.listeners
            for sub in listener.listeners
        ]

    def wire(self, shown_addr: str) -> IrcConnection:
        """A new IRC client's protocol state; ``shown_addr``: its address as others
        see it (a pseudonym with --hide-addresses, its own included)."""
        return IrcConnection(
            server_name=self.server_name,
            lobby=self.lobby,
            host=host(shown_addr),
            version=f"imkit-{__version__}",
            created=self.created,
            motd=self.motd,
            max_line=self.max_line,
            operators=self.operators,
            whowas=self.whowas,
        )

    def keepalive(self, hub: Hub, now: float, timeout: float) -> None:
        """--idle-timeout for IRC clients: one quiet for ``timeout`` is sent a PING and
        counts as active again, so that it is dropped (idle) only when it has not
        answered within the next ``timeout``; any line it sends counts as the answer."""
        cutoff = now - timeout
        for member in hub.local_members():
            wire = member.wire
            if not isinstance(wire, IrcConnection) or member.last_active >= cutoff:
                continue
            if not wire.pinged:
                wire.pinged = True
                member.last_active = now
                hub.send(member, Lines(f"PING :{self.server_name}\r\n"))

    def log_listening(self) -> None:
        scheme = "ircs" if self.secure else "irc"
        urls = [f"{scheme}://{addr}" for addr in self.addresses]
        log.info(
            "IRC on %s as %s",
            ", ".join(urls),
            self.server_name,
            extra={"event": "irc_listening", "urls": urls, "server_name": self.server_name},
        )

    async def aclose(self) -> None:
        for listener in self.listeners:
            await listener.aclose()
