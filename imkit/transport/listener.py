"""Accepting connections: a fair accept loop, TLS, and the process limits it needs."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Callable

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener
from anyio.streams.tls import TLSStream

from imkit.errors import ServeError
from imkit.transport.links import LINK_ERRORS, LoopReadable, StreamLink, format_addr, wait_readable

log = logging.getLogger("imkit.server")

# Connections taken from the kernel's queue per wake-up of the accept loop. The loop
# then waits for readiness again, which lets every other ready task run first: in a
# reconnect storm the queue is never empty, and accepting until it was starved the
# handling of everything else, signals included (hundreds of clients' EOFs unread, a
# SIGTERM handled half a minute late). 16 at a time fell behind 1,000 new clients a
# second once thousands were online, until the kernel's queue (somaxconn, 4,096 here)
# overflowed and new clients timed out; 64, with their joins announced together
# (Hub.announce_joins), keeps up with 10,000 (docs/performance.md).
ACCEPT_BATCH = 64
# A TLS client that has not finished its handshake by then is closed.
TLS_HANDSHAKE_TIMEOUT = 10.0
# The accept queue asked of the kernel (which caps it at somaxconn), as anyio asks.
LISTEN_BACKLOG = 65535


async def open_tcp_listener(host: str, port: int) -> MultiListener[anyio.abc.SocketStream]:
    """A listener on ``host``:``port`` (OSError when it cannot be bound). ``::`` takes
    IPv4 clients too (:func:`_dual_stack_listener`)."""
    if _is_ipv6_any(host):
        return MultiListener([await _dual_stack_listener(port)])
    return await anyio.create_tcp_listener(local_host=host, local_port=port)


def _is_ipv6_any(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.IPv6Address("::")
    except ValueError:
        return False


async def _dual_stack_listener(port: int) -> anyio.abc.SocketListener:
    """A listener on ``::`` that takes IPv4 clients too, as people expect of ``::``
    (nginx's ``[::]:80 ipv6only=off``); anyio sets IPV6_V6ONLY on every IPv6 listener,
    which made ``--host ::`` IPv6 only. An IPv4 client's address comes as
    ``::ffff:a.b.c.d``: shown, counted and banned as the IPv4 address (format_addr,
    peer_ip)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        return await anyio.abc.SocketListener.from_socket(sock)
    except BaseException:
        sock.close()
        raise


async def accept_loop(
    listening: socket.socket, on_accept: Callable[[socket.socket, object], None]
) -> None:
    """Accept connections on ``listening`` until cancelled (see :class:`Acceptor`)."""
    await Acceptor(listening, on_accept).run()


class Acceptor:
    """Accepts connections on one listening socket, a fair share at a time, and hands
    each ready socket (non-blocking, TCP_NODELAY) to ``on_accept``, until :meth:`close`.

    A shutdown closes it rather than only cancelling its task: in a connection storm
    the queue is never empty, so the wait for it is over before anyio looks at it, and
    anyio only delivers a cancellation to a task whose wait is not over yet. Cancelled
    alone, the loop went on accepting until the storm ended (issue 26, item 1).
    """

    __slots__ = ("_listening", "_on_accept", "_readable", "_scope", "closed")

    def __init__(
        self, listening: socket.socket, on_accept: Callable[[socket.socket, object], None]
    ) -> None:
        self._listening = listening
        self._on_accept = on_accept
        self._readable: LoopReadable | None = None
        self._scope = anyio.CancelScope()
        self.closed = False

    def close(self) -> None:
        """Stop accepting now: nothing more is handed on, and the listening socket is
        closed, so that the kernel refuses whatever its queue still holds (a reset)
        and every later connection. Synchronous: a signal handler may call it."""
        if self.closed:
            return
        self.closed = True
        self._scope.cancel()
        if self._readable is not None:
            self._readable.close()  # off the loop before its descriptor goes
        else:  # pragma: no cover - not asyncio: CI tests the asyncio backend only
            anyio.notify_closing(self._listening)
        self._listening.close()

    async def run(self) -> None:
        listening, on_accept = self._listening, self._on_accept
        readable = self._readable = LoopReadable.for_socket(listening)
        try:
            with self._scope:
                while not self.closed:
                    await wait_readable(listening, readable)
                    for _ in range(ACCEPT_BATCH):
                        if self.closed:  # closed while this task was waking up
                            return
                        try:
                            sock, peer = listening.accept()
                        except BlockingIOError:
                            break
                        except OSError as error:  # out of file descriptors, most likely
                            log.warning(
                                "accept failed: %s",
                                error,
                                extra={"event": "accept_failed", "reason": str(error)},
                            )
                            await anyio.sleep(0.1)
                            break
                        if _set_up(sock, peer):
                            on_accept(sock, peer)
                    # Where a cancellation of this task lands (see the class docstring).
                    await anyio.lowlevel.checkpoint_if_cancelled()
        finally:
            if readable is not None:
                readable.close()


def _set_up(sock: socket.socket, peer: object) -> bool:
    """Make an accepted socket non-blocking (and TCP_NODELAY); False, and closed, when
    the client is gone already."""
    try:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as error:  # pragma: no cover - a race: the client reset first
        # Gone already: never let one client stop accepts.
        addr = format_addr(peer)
        log.info(
            "%s: setting up the socket failed: %s",
            addr,
            error,
            extra={"event": "socket_failed", "addr": addr, "reason": str(error)},
        )
        sock.close()
        return False
    return True


async def tcp_listener(
    host: str, port: int, addresses: list[str], what: str = ""
) -> MultiListener[anyio.abc.SocketStream]:
    """A listener on ``host``:``port``; the addresses really listened on are appended
    to ``addresses``. ServeError when it cannot be bound."""
    try:
        listener = await open_tcp_listener(host, port)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ServeError(f"cannot listen on {host}:{port}{what}: {reason}") from None
    for sub in listener.listeners:
        addresses.append(format_addr(sub.extra(SocketAttribute.local_address)))
    return listener


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An address (``127.0.0.1``) or a network (``10.0.0.0/8``); ValueError otherwise."""
    return ipaddress.ip_network(text.strip(), strict=False)


def tls_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """The server's TLS context, or None without a certificate; ServeError when unusable."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ServeError("TLS needs both --tls-cert and --tls-key")
    for path in (cert, key):
        if not os.path.isfile(path):
            raise ServeError(f"cannot read TLS file {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ServeError(f"cannot load the TLS certificate {cert} and key {key}: {error}") from None
    return context


async def open_tls(sock: socket.socket, addr: str, context: ssl.SSLContext) -> StreamLink | None:
    """The TLS stream over ``sock`` after a bounded handshake; None when it failed."""
    try:
        stream = await anyio.abc.SocketStream.from_socket(sock)
    except OSError:
        sock.close()
        return None
    # From here the stream owns the descriptor: closing `sock` as well would close a
    # number the next accepted client may already have been given.
    try:
        with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT):
            tls = await TLSStream.wrap(
                stream, server_side=True, ssl_context=context, standard_compatible=False
            )
    except (TimeoutError, ssl.SSLError, *LINK_ERRORS) as error:
        reason = _tls_reason(error)
        log.info(
            "%s: TLS handshake failed: %s",
            addr,
            reason,
            extra={"event": "tls_failed", "addr": addr, "reason": reason},
        )
        await anyio.aclose_forcefully(stream)
        return None
    return StreamLink(tls)


def _tls_reason(error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error, anyio.BrokenResourceError) else error
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    return "timed out" if isinstance(error, TimeoutError) else str(cause or error) or "closed"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT``) as ``(host, port)``; ValueError saying what is wrong.

    Port 0 picks a free port (the log says which).
    """
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:9464)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, as in [::1]:9464")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"{text!r} is not HOST:PORT (for example 127.0.0.1:9464)")
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port)
