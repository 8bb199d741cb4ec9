"""The chat server: the hub, its listeners, the flusher, the admin socket, the idle
sweep and shutdown, wired together (:class:`Server`; ``imkit serve`` runs it with its
signals in :mod:`imkit.server.run`).

How bytes leave (the hot path) is :mod:`imkit.transport.flusher`: one flush round per
round of the event loop writes every ready outbox with one non-blocking ``send``.

The transport itself (links, connections, accepting, backpressure, the flusher and its
write thread) is in :mod:`imkit.transport`; this module only decides what runs and when
it stops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import ssl
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from imkit.errors import ServeError
from imkit.hub.core import Hub
from imkit.hub.credentials import Logins, PasswordHasher
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.operator.admin_socket import AdminSocket
from imkit.protocol import Error, ServerConnection, json_line_limit
from imkit.protocol.admin import default_path
from imkit.rules.bans import Ban
from imkit.server.config import ServerConfig
from imkit.server.hooks import HookInbox
from imkit.server.outgoing_hooks import OutgoingDeliveries
from imkit.store import Store, open_store
from imkit.system import raise_open_file_limit
from imkit.transport.backpressure import Congestion
from imkit.transport.connection import Connection, TokenBucket
from imkit.transport.flusher import Flusher
from imkit.transport.limits import AddressLimits, IPAddress, peer_ip, within
from imkit.transport.links import Link, SocketLink, format_addr
from imkit.transport.listener import Acceptor, open_tls, parse_network, tcp_listener, tls_context
from imkit.transport.refusals import Refusals
from imkit.transport.writes import WriteThread, use_write_thread

if TYPE_CHECKING:
    from imkit.cluster.link import ClusterLink
    from imkit.server.irc_port import IrcPort
    from imkit.server.metrics import MetricsServer
    from imkit.web import WebSocketLink
    from imkit.web.port import WebPort


log = logging.getLogger("imkit.server")

# On SIGTERM every client gets this long to receive its bye before the server exits.
SHUTDOWN_GRACE = 3.0
# The idle sweep runs at least this often, so a kick comes at most this late.
MAX_SWEEP_INTERVAL = 1.0
# On shutdown, messages already delivered get this long to be stored, so that their
# senders get their ok before their bye; and closing the store at most this long more.
STORE_FLUSH_TIMEOUT = 2.0


class Server:
    """An imkit chat server. ``await Server(config).serve()`` runs it until :meth:`stop`."""

    def __init__(self, config: ServerConfig, hub: Hub | None = None) -> None:
        self.config = config
        self.cluster: ClusterLink | None = None  # --cluster: this node's link to Redis
        if hub is None:
            if config.cluster is None:
                hub = Hub(**config.hub_settings())
            else:
                hub = self._cluster_hub(config.cluster)
        self.hub = hub
        self.flusher = Flusher(hub)
        self.logins = Logins(
            hub, PasswordHasher(config.password_hash_cost), accounts_only=config.accounts_only
        )
        self.congestion = Congestion()
        if self.cluster is not None:  # the cluster's pace holds back the same readers
            self.cluster.pacer.attach(self.congestion)
        self.addresses: list[str] = []
        self.connections: set[Connection] = set()
        self._stop = anyio.Event()
        self.stopped = anyio.Event()  # set when serve() has finished
        self.started_at = time.monotonic()
        self._listener: MultiListener[anyio.abc.SocketStream] | None = None
        self._acceptors: list[Acceptor] = []  # the chat port's and the web port's
        self.web: WebPort | None = None  # --web: bound by listen()
        self.irc: IrcPort | None = None  # --irc: bound by listen()
        self.admin_socket: AdminSocket | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._rate_exempt = [parse_network(a) for a in config.rate_exempt]
        self._proxies = [parse_network(a) for a in config.proxy_protocol]
        self.limits = AddressLimits(
            config.max_per_ip, config.connect_rate, config.connect_period, self._rate_exempt
        )
        self.refusals = Refusals(self.hub.stats, self.limits, config.max_clients)
        self.store: Store | None = None  # opened by listen()
        self._clients: anyio.abc.TaskGroup | None = None  # connection tasks, in serve()
        self.metrics: MetricsServer | None = None  # --metrics: bound by listen()
        # Webhooks (docs/integrations.md): POST /hooks/KEY, posting as a hook, the list
        # (hooks); the POSTs of outgoing hooks, of every message published here.
        self.hooks = hooks = HookInbox(hub, config.max_line)
        self.deliveries = OutgoingDeliveries(hooks.outgoing, hooks.post_reply)
        hooks.status = lambda hook: self.deliveries.status(hook.name)
        hub.backend.on_published = self.deliveries.offer

    @property
    def web_addresses(self) -> list[str]:
        """Where the web port (--web) really listens."""
        return [] if self.web is None else self.web.addresses

    @property
    def connections_now(self) -> int:
        return len(self.connections)

    # ---------------------------------------------------------------- lifecycle

    def stop(self) -> None:
        """Ask :meth:`serve` to say goodbye to everyone and return. Accepting stops at
        once, here: the kernel refuses whatever its queue still holds (issue 26)."""
        self._stop.set()
        for acceptor in self._acceptors:
            acceptor.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def listen(self) -> None:
        """Bind the chat port and the admin socket; :class:`ServeError` when impossible.

        :meth:`serve` calls it when it was not called before; calling it first keeps a
        startup error out of the caller's task group.
        """
        config = self.config
        self._ssl_context = tls_context(config.tls_cert, config.tls_key)
        raise_open_file_limit(config.max_clients)
        # The store first: a file that must be refused (or is another server's) stops
        # the start before anything listens.
        store = await self._open_store()
        try:
            await self._bind()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await store.close()
            raise
        self.store = self.hub.store = store
        store.lobby = self.hub.lobby
        for fields in store.bans:  # kept from before the restart
            self.hub.bans.add(Ban.from_fields(fields))
        self.hub.replay = config.replay
        if self.metrics is not None:
            store.observe_commit = self.metrics.observe_commit
            self.flusher.observe_delivery = self.metrics.observe_delivery

    def _cluster_hub(self, url: str) -> Hub:
        """The one place that chooses the hub's backend: a hub whose shared decisions
        are Redis' (imkit.cluster.backend); without --cluster, the hub's own
        (imkit.hub.local, the default)."""
        # Imported only for --cluster: one node needs no Redis client.
        from imkit.cluster.backend import RedisBackend
        from imkit.cluster.link import ClusterLink

        config = self.config
        try:
            self.cluster = ClusterLink(
                url,
                name=config.cluster_name,
                node_timeout=config.node_timeout,
                info=self._node_info,
            )
        except ValueError as error:  # redis-py's word on a URL it cannot read
            raise ServeError(f"--cluster {url}: {error}") from None
        return Hub(**config.hub_settings(), backend=RedisBackend(self.cluster))

    async def _open_store(self) -> Store:
        config = self.config
        if self.cluster is None:
            return open_store(
                config.db,
                config.port,
                retain_days=config.retain_days,
                offline_days=config.offline_days,
                clock=self.hub.wall_clock,
                fsync=config.fsync,
            )
        from imkit.cluster.link import ClusterError
        from imkit.cluster.store import RedisHistory

        try:
            await self.cluster.connect()
        except (ClusterError, ValueError) as error:
            raise ServeError(str(error)) from None
        return RedisHistory(
            self.cluster,
            retain_days=config.retain_days,
            clock=self.hub.wall_clock,
            offline_days=config.offline_days,
        )

    def _node_info(self) -> dict[str, object]:
        """This node, as the others see it in `imkit stats` (sent with each heartbeat)."""
        stats = self.hub.stats
        return {
            "addr": ", ".join(self.addresses),
            "version": self.hub.server_name,
            "users": len(self.hub),
            "connections_now": self.connections_now,
            "messages_received": stats.messages_received,
            "messages_delivered": stats.messages_delivered,
        }

    async def _bind(self) -> None:
        host, port = self.config.host, self.config.port
        listener = await tcp_listener(host, port, self.addresses)
        web = None
        try:
            web = await self._bind_web()
            if self.config.irc:  # --irc: imported only then
                from imkit.server.irc_port import IrcPort

                self.irc = await IrcPort.bind(self.config, secure=self._ssl_context is not None)
        except BaseException:
            await listener.aclose()
            if web is not None:
                await web.aclose()
            raise
        real_port = listener.listeners[0].extra(SocketAttribute.local_port)
        path = self.config.admin_socket or default_path(real_port)
        admin_socket = AdminSocket(Path(path))
        try:
            await admin_socket.open()
            if self.config.metrics is not None:
                # Imported only when asked for: every imkit command imports this module.
                from imkit.server.metrics import open_metrics

                self.metrics = open_metrics(
                    self, self.config.metrics, max_clients=self.config.max_clients
                )
        except BaseException:
            admin_socket.close()
            await listener.aclose()
            if web is not None:
                await web.aclose()
            if self.irc is not None:
                await self.irc.aclose()
            raise
        self._listener, self.admin_socket = listener, admin_socket
        self.web = web

    async def _bind_web(self) -> WebPort | None:
        """--web HOST:PORT: the listener for the page and its WebSocket (and hooks');
        --hooks HOST:PORT: hooks' only."""
        config = self.config
        if config.web is None and not config.hooks:
            return None
        from imkit.web.port import WebPort  # only for --web: h11 and wsproto

        web = await WebPort.bind(
            config.web,
            config.web_origins,
            secure=self._ssl_context is not None,
            line_limit=json_line_limit(config.max_line),
            request_timeout=config.http_timeout,
            hooks=self.hooks,
            hooks_at=config.hooks,
        )
        self.hooks.urls = web.hook_urls  # what imkit hook add prints
        return web

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[list[str]] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until :meth:`stop`, then shut down gracefully.

        ``task_status.started`` receives the addresses really listened on (port 0 picks a
        free one), so ``await tg.start(server.serve)`` returns once clients can connect.
        """
        try:
            if self._listener is None:
                await self.listen()
            assert self._listener is not None and self.admin_socket is not None
            await self._serve(self._listener, self.admin_socket, task_status)
        finally:
            self.stopped.set()

    async def _serve(
        self,
        listener: MultiListener[anyio.abc.SocketStream],
        admin_socket: AdminSocket,
        task_status: anyio.abc.TaskStatus[list[str]],
    ) -> None:
        self.started_at = time.monotonic()
        shown = dataclasses.replace(self.config, password="***" if self.config.password else None)
        log.debug("configuration: %s", shown, extra={"event": "configuration"})
        threaded = self.config.write_thread
        if threaded is None:
            threaded = use_write_thread()
        if threaded:
            self.flusher.write_thread = WriteThread()
        store = self.store
        assert store is not None
        store.start()
        try:
            await self._serve_until_stopped(listener, admin_socket, store, task_status)
        finally:
            if self.flusher.write_thread is not None:
                self.flusher.write_thread.close()
                self.flusher.write_thread = None
            with anyio.CancelScope(shield=True):  # what was accepted is written, always
                try:
                    await store.close()
                    if self.cluster is not None:
                        await self.cluster.close()
                finally:
                    if self.metrics is not None:
                        await self.metrics.close()

    async def _serve_until_stopped(
        self,
        listener: MultiListener[anyio.abc.SocketStream],
        admin_socket: AdminSocket,
        store: Store,
        task_status: anyio.abc.TaskStatus[list[str]],
    ) -> None:
        async with listener, anyio.create_task_group() as clients:
            self._clients = clients
            async with anyio.create_task_group() as background:
                if self.cluster is not None:
                    background.start_soon(self.cluster.run)
                    log.info(
                        "cluster: node %s joined cluster %s on %s",
                        self.cluster.node,
                        self.cluster.name,
                        self.cluster.where,
                        extra={
                            "event": "cluster_joined",
                            "node": self.cluster.node,
                            "cluster": self.cluster.name,
                            "redis": self.cluster.where,
                        },
                    )
                background.start_soon(self.flusher.run)
                background.start_soon(self.deliveries.run)  # POSTs, apart from the chat
                background.start_soon(self.hooks.keep_fresh)
                # The hash a login for an unknown name is checked against, made now.
                background.start_soon(self.logins.hasher.prepare)
                background.start_soon(self._sweep_loop)
                background.start_soon(admin_socket.serve, self)
                self._acceptors = [
                    Acceptor(sub.extra(SocketAttribute.raw_socket), self._accepted)
                    for sub in listener.listeners
                ]
                if self.web is not None:
                    self._acceptors += [
                        Acceptor(sock, partial(self._accepted, kind=kind))
                        for sock, kind in self.web.sockets()
                    ]
                if self.irc is not None:  # its accept loops; it logs where it listens
                    self._acceptors += self.irc.acceptors(partial(self._accepted, kind="irc"))
                for acceptor in self._acceptors:
                    background.start_soon(acceptor.run)
                if self.web is not None:
                    self.web.log_listening()
                loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
                log.info(
                    "history: %s",
                    store.description,
                    extra={"event": "history", "store": store.description},
                )
                if self.metrics is not None:  # before "listening on": tests wait for that
                    self.metrics.start()
                    log.info(
                        "metrics on http://%s/metrics",
                        self.metrics.address,
                        extra={"event": "metrics_listening", "addr": self.metrics.address},
                    )
                log.info(
                    "imkit listening on %s (%s)",
                    ", ".join(self.addresses),
                    loop,
                    extra={"event": "listening", "addrs": self.addresses, "loop": loop},
                )
                log.info(
                    "admin socket: %s",
                    admin_socket.path,
                    extra={"event": "admin_socket", "path": str(admin_socket.path)},
                )
                task_status.started(self.addresses)
                await self._stop.wait()
                for acceptor in self._acceptors:  # stopped before they were made
                    acceptor.close()
                if self.cluster is not None:  # the others see this node's users leave now
                    with anyio.move_on_after(STORE_FLUSH_TIMEOUT):
                        await self.cluster.depart()
                # The admin socket closes and its file is removed (accepting stopped
                # at the signal: stop()).
                background.cancel_scope.cancel()
            if self.web is not None:  # page loads and kept-alive connections end
                await self.web.aclose()
            if self.irc is not None:
                await self.irc.aclose()
            # Messages delivered but not yet stored: their senders' oks go before the byes.
            await store.flush(STORE_FLUSH_TIMEOUT)
            log.info(
                "shutting down: saying goodbye to %d users",
                len(self.hub),
                extra={"event": "shutdown", "count": len(self.hub)},
            )
            self.hub.stats.shutdown_byes += sum(
                1 for connection in self.connections if not connection.outbox.closed
            )
            # Closing every outbox wakes every writer to send its bye; the flusher is
            # not needed for that. Clients still proving their password get no bye:
            # they are told nothing before they are in.
            self.hub.shutdown()
            for connection in list(self.connections):
                connection.outbox.close(drain=False)
            clients.cancel_scope.deadline = anyio.current_time() + SHUTDOWN_GRACE

    # -------------------------------------------------------------- connections

    def _accepted(self, sock: socket.socket, peer: object, kind: str = "chat") -> None:
        assert self._clients is not None
        self._clients.start_soon(self._run_connection, sock, peer, kind)

    async def _run_connection(self, sock: socket.socket, peer: object, kind: str) -> None:
        """One accepted connection, in this order: --max-clients, the PROXY header
        (--proxy-protocol), bans, the per-address limits; then the chat (or, on the web
        port, HTTP until a WebSocket).

        On the web port --max-clients is checked at the WebSocket's upgrade instead
        (:meth:`Refusals.full_websocket`): the page's files are no chat client, and a
        browser that cannot even load the page cannot say why."""
        addr, web, irc = format_addr(peer), kind in ("web", "hooks"), kind == "irc"
        self.hub.stats.connections_total += 1
        if self.stopping:  # accepted just before the signal: not let in to be sent away
            sock.close()
            return
        if not web and self._full():
            self.refusals.full(sock, addr, web, irc)
            return
        if self._proxies and within(peer, self._proxies):
            proxied = await self.refusals.user_behind_proxy(sock, peer, addr)
            if proxied is None:
                return
            peer, addr = proxied, format_addr(proxied)
        ban = self.hub.bans.match(addr, self.hub.wall_clock())
        if ban is not None:
            self.refusals.banned(sock, addr, ban, web, irc)
            return
        ip = peer_ip(peer)  # the one place the client's IP address comes from
        key = self.limits.key_for(ip)
        refusal = self.limits.admit(key)
        if refusal is not None:
            self.refusals.per_address(sock, addr, refusal, web, irc)
            return
        try:
            await self._serve_connection(sock, addr, ip, kind)
        finally:
            self.limits.release(key)

    async def _serve_connection(
        self, sock: socket.socket, addr: str, ip: IPAddress | None, kind: str
    ) -> None:
        link = await self._open_link(sock, addr)
        if link is None:
            self.hub.stats.refused_tls += 1
            return
        websocket: WebSocketLink | None = None
        web = kind in ("web", "hooks")
        if web:
            assert self.web is not None
            websocket = await self.web.serve_http(link, addr, page=kind == "web")
            if websocket is None:
                return
            if self._full():
                await self.refusals.full_websocket(websocket, addr)
                return
            link = websocket
        now = time.monotonic()
        wire: Any = ServerConnection(max_line=self.config.max_line, json=web)
        if kind == "irc" and self.irc is not None:
            wire = self.irc.wire(self.hub.shown_address(addr))
        member = self.hub.new_member(addr, wire, Outbox(self.config.max_queue), now)
        if websocket is not None:
            websocket.refuse = partial(_refuse_message, self.hub, member)
        connection = Connection(
            link,
            member,
            self.hub,
            schedule_flush=self.flusher.schedule,
            congestion=self.congestion,
            bucket=self._bucket_for(ip, now),
            password=self.config.password,
            auth_timeout=self.config.auth_timeout,
            logins=self.logins,
            join_at_hello=web,
        )
        self.connections.add(connection)
        over = {"web": " over WebSocket", "irc": " over IRC"}.get(kind, "")
        if member.shown_addr == addr:
            log.info(
                "%s: connected%s",
                addr,
                over,
                extra={"event": "connected", "addr": addr, "web": web},
            )
        else:  # --hide-addresses: the log says which address a pseudonym stands for
            log.info(
                "%s: connected%s, shown as %s",
                addr,
                over,
                member.shown_addr,
                extra={
                    "event": "connected",
                    "addr": addr,
                    "pseudonym": member.shown_addr,
                    "web": web,
                },
            )
        try:
            await connection.run()
        except Exception:  # pragma: no cover - only a bug: log it, keep serving everyone else
            log.exception(
                "%s: unexpected error", addr, extra={"event": "connection_error", "addr": addr}
            )
        finally:
            self.connections.discard(connection)
            if kind == "irc" and self.irc is not None:  # its nick, for WHOWAS
                wire.gone()
            who = addr if member.name == addr else f"{member.name} ({addr})"
            log.info(
                "%s: disconnected",
                who,
                extra={"event": "disconnected", "addr": addr, "user": member.name},
            )

    def _full(self) -> bool:
        """Whether --max-clients chat connections (of both ports) are open."""
        return len(self.connections) >= self.config.max_clients

    async def _open_link(self, sock: socket.socket, addr: str) -> Link | None:
        """A plain socket, or, with TLS, the stream after a bounded handshake."""
        if self._ssl_context is None:
            return SocketLink(sock)
        return await open_tls(sock, addr, self._ssl_context)

    def _bucket_for(self, ip: IPAddress | None, now: float) -> TokenBucket | None:
        if self.config.rate <= 0:
            return None
        if ip is not None and any(ip in network for network in self._rate_exempt):
            return None
        return TokenBucket(self.config.rate, self.config.burst, now)

    async def _sweep_loop(self) -> None:
        timeout = self.config.idle_timeout
        if timeout <= 0:
            return
        interval = min(MAX_SWEEP_INTERVAL, timeout / 4)
        while True:
            await anyio.sleep(interval)
            if self.irc is not None:  # IRC clients are PINGed before they are idle
                self.irc.keepalive(self.hub, time.monotonic(), timeout)
            for member in self.hub.expire_idle(time.monotonic() - timeout):
                log.info(
                    "%s (%s): idle for %gs, forced offline",
                    member.name,
                    member.addr,
                    timeout,
                    extra={
                        "event": "idle_kick",
                        "user": member.name,
                        "addr": member.addr,
                        "timeout_s": timeout,
                    },
                )


def _refuse_message(hub: Hub, member: Member, code: str, message: str) -> None:
    """A WebSocket message the link refused (binary, too long): an error reply."""
    hub.send(member, Error(None, code, message))
