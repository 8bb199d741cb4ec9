"""``imkit serve --metrics HOST:PORT``: Prometheus metrics and a health check over HTTP.

Two paths on one port, served by the standard library's WSGI server in a thread of its
own, so that a scrape never waits for the chat and the chat never waits for a scrape:

* ``GET /metrics``: the Prometheus text format, made by ``prometheus_client`` from a
  registry of this server's own. Most values are counters the server keeps anyway
  (:class:`~imkit.hub.stats.Stats`, backpressure, the store): they are read at scrape time by
  a custom collector, so they cost the chat nothing more than the integer additions it
  already does. Two histograms are observed as things happen, each once per batch,
  never per delivery: the delivery latency once per flusher round, the store's commit
  duration once per transaction (in its writer thread; ``prometheus_client`` is
  thread-safe).
* ``GET /healthz``: 200 and ``{"status": "ok", ...}`` while the node accepts users; 503
  and ``{"status": "unavailable", "reason": ..., "message": ...}`` while it shuts down,
  is full, cannot store public messages, or its event loop does not answer.

docs/metrics.md lists every metric and says exactly what the latency histogram measures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIEnvironment

import anyio
from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from imkit import __version__
from imkit.cluster import FULL
from imkit.errors import ServeError
from imkit.hub.core import Hub
from imkit.hub.stats import Stats
from imkit.server.hook_metrics import hook_families
from imkit.server.outgoing_hooks import HookCounts, OutgoingDeliveries
from imkit.transport.backpressure import Congestion
from imkit.transport.connection import Connection
from imkit.transport.links import format_addr
from imkit.transport.listener import parse_address

__all__ = [
    "MetricsServer",
    "Observed",
    "Snapshot",
    "Unanswered",
    "open_metrics",
    "take_snapshot",
]

log = logging.getLogger("imkit.server")

# How long a scrape or a health check waits for the event loop to take its snapshot.
# Less than a load balancer's usual check timeout (HAProxy: 2 s), so that a node whose
# loop is stuck answers 503 rather than nothing.
SNAPSHOT_TIMEOUT = 1.0
# A client of the metrics port that sends nothing for this long is disconnected.
REQUEST_TIMEOUT = 10.0
# How often the HTTP thread checks whether it should stop: what closing it may take.
POLL_INTERVAL = 0.1


def _buckets(low: float, high: float) -> tuple[float, ...]:
    """Histogram bounds 1, 2.5, 5 times each power of ten, from ``low`` to ``high``."""
    bounds = (round(step * 10.0**exponent, 10) for exponent in range(-6, 3) for step in (1, 2.5, 5))
    return tuple(b for b in bounds if low <= b <= high)


# Flusher rounds take from tens of microseconds to, on an overloaded server, seconds.
LATENCY_BUCKETS = _buckets(0.0001, 5.0)
# A commit is an append to the WAL (--fsync: a disk flush too), or a disk in trouble.
COMMIT_BUCKETS = _buckets(0.0005, 10.0)


# ------------------------------------------------------------------ the snapshot


class ClusterState(Protocol):
    """What the metrics read of a cluster node's link to Redis (imkit.cluster.link)."""

    problem: str | None
    outages: int
    full_outages: int
    data_lost: int
    missed: int


class Observed(Protocol):
    """What the metrics need of the server they report on (imkit.server.Server)."""

    hub: Hub
    congestion: Congestion
    deliveries: OutgoingDeliveries

    @property
    def cluster(self) -> ClusterState | None: ...

    @property
    def connections(self) -> Collection[Connection]: ...

    @property
    def stopping(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The server's state at one instant on the event loop, for one scrape or check."""

    stats: Stats  # a copy
    users: int
    connections: int
    queued_bytes: int
    backpressure_pauses: int
    backpressure_given_up: int
    stopping: bool
    store_problem: str | None
    store_failed_batches: int
    # Rooms: on one server all of them (registered ones without members too), on a
    # cluster node those with members here; the rooms this node's users are in, added up.
    rooms: int = 0
    room_members: int = 0
    users_irc: int = 0  # of the users here, those on the IRC port (--irc)
    # --cluster: (why Redis cannot be used now or None, outages, of them while Redis was
    # full, times found empty, messages_missed notices)
    cluster: tuple[str | None, int, int, int, int] | None = None
    hooks: tuple[HookCounts, ...] = ()  # outgoing webhooks that had a message here


def take_snapshot(server: Observed) -> Snapshot:
    """Read everything a scrape reports; on the event loop's thread only."""
    hub, connections = server.hub, server.connections
    return Snapshot(
        stats=dataclasses.replace(hub.stats),
        users=len(hub),
        connections=len(connections),
        queued_bytes=sum(connection.outbox.size for connection in connections),
        backpressure_pauses=server.congestion.pauses,
        backpressure_given_up=server.congestion.given_up,
        stopping=server.stopping,
        store_problem=hub.store.problem,
        store_failed_batches=hub.store.failed_batches,
        rooms=len(hub.rooms) if (held := hub.directory.rooms_held()) is None else held,
        room_members=sum(len(member.rooms) for member in hub.local_members()),
        users_irc=sum(1 for member in hub.local_members() if member.mode.value == "irc"),
        cluster=None if (c := server.cluster) is None else _cluster_state(c),
        hooks=tuple(server.deliveries.counts()),
    )


def _cluster_state(link: ClusterState) -> tuple[str | None, int, int, int, int]:
    return (link.problem, link.outages, link.full_outages, link.data_lost, link.missed)


class Unanswered(Exception):
    """The event loop did not take the snapshot in time (or has stopped)."""


class LoopReader:
    """Takes snapshots on the event loop for the HTTP threads.

    The HTTP threads must not read the server's state themselves: the sets and dicts
    they would iterate (the connections, their outboxes) are changed by the event loop
    at any moment ("set changed size during iteration"), and counters read one by one
    while the loop runs would not add up. So a thread asks the loop, with
    ``call_soon_threadsafe``, to take a :class:`Snapshot` between two of its callbacks,
    and waits for it on a ``concurrent.futures.Future``, at most ``timeout`` seconds: a
    loop that does not answer by then is reported (503), never waited for. That costs
    the chat one callback per scrape, and nothing between scrapes.
    """

    def __init__(
        self, server: Observed, loop: asyncio.AbstractEventLoop, timeout: float = SNAPSHOT_TIMEOUT
    ) -> None:
        self.server = server
        self.loop = loop
        self.timeout = timeout

    def snapshot(self) -> Snapshot:
        timeout = self.timeout
        future: concurrent.futures.Future[Snapshot] = concurrent.futures.Future()

        def take() -> None:
            if not future.set_running_or_notify_cancel():
                return  # the thread gave up waiting: nobody wants it any more
            try:
                future.set_result(take_snapshot(self.server))
            except BaseException as error:  # pragma: no cover - only a bug
                future.set_exception(error)

        try:
            self.loop.call_soon_threadsafe(take)
        except RuntimeError:  # the loop is closed
            raise Unanswered("the server has stopped") from None
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Unanswered(f"the event loop did not answer within {timeout:g} s") from None


# ------------------------------------------------------------------ the metrics


class ServerCollector(Collector):
    """The server's own counters, read from a snapshot at each scrape."""

    def __init__(self, reader: LoopReader) -> None:
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        snap = self.reader.snapshot()  # Unanswered: the scrape fails with a 503
        stats = snap.stats
        yield _gauge("imkit_users_online", "Users online (joined, past the password).", snap.users)
        yield _gauge("imkit_users_irc", "Users here on the IRC port (--irc).", snap.users_irc)
        yield _gauge(
            "imkit_connections_open",
            "Client connections open: users, clients still proving their password, and "
            "connections being closed.",
            snap.connections,
        )
        yield _counter(
            "imkit_connections_accepted_total",
            "Client connections accepted from the kernel.",
            stats.connections_total,
        )
        yield _by_label(
            CounterMetricFamily,
            "imkit_connections_refused_total",
            "Connections refused: the server was full, too many from one address, no (or a "
            "wrong) password, the TLS handshake failed, a --proxy-protocol balancer sent "
            "no valid header, or the address is banned.",
            "reason",
            {
                "full": stats.refused_full,
                "per_address": stats.refused_per_address,
                "unauthorized": stats.refused_unauthorized,
                "tls_handshake": stats.refused_tls,
                "proxy_header": stats.refused_proxy_header,
                "banned": stats.refused_banned,
            },
        )
        yield _by_label(
            CounterMetricFamily,
            "imkit_disconnects_total",
            "Connections that ended after they were accepted, by why: the client closed "
            "it (or it broke), idle timeout, kicked by an administrator, slow consumer, "
            "server shutdown, a ban.",
            "reason",
            {
                "closed": stats.closed_by_client,
                "idle": stats.idle_kicks,
                "kicked": stats.admin_kicks,
                "slow_consumer": stats.slow_consumers,
                "shutdown": stats.shutdown_byes,
                "banned": stats.banned,
            },
        )
        yield _by_label(
            CounterMetricFamily,
            "imkit_messages_received_total",
            "Chat messages accepted, by kind.",
            "kind",
            {"public": stats.public_received, "private": stats.private_received},
        )
        yield _by_label(
            CounterMetricFamily,
            "imkit_messages_refused_total",
            "Public messages refused because the store could not write.",
            "reason",
            {"unavailable": stats.refused_unavailable},
        )
        yield _counter(
            "imkit_room_messages_total",
            "Of the public messages accepted, those sent to a room (not the lobby).",
            stats.room_messages,
        )
        yield _gauge(
            "imkit_rooms",
            "Rooms: on one server every room (registered ones without members too); on a "
            "cluster node, the rooms with members on this node.",
            snap.rooms,
        )
        yield _gauge(
            "imkit_room_members",
            "Room memberships of this node's users (a user in 3 rooms is 3; the lobby is "
            "not counted).",
            snap.room_members,
        )
        yield _counter(
            "imkit_deliveries_total",
            "Copies of chat messages queued for a recipient.",
            stats.messages_delivered,
        )
        yield _counter(
            "imkit_received_bytes_total",
            "Bytes read from client connections (TLS: after decryption).",
            stats.bytes_in,
            unit="bytes",
        )
        yield _counter(
            "imkit_sent_bytes_total",
            "Bytes handed to the kernel for client connections (TLS: before encryption).",
            stats.bytes_out,
            unit="bytes",
        )
        yield _gauge(
            "imkit_outbox_queued_bytes",
            "Bytes queued for clients and not yet handed to the kernel.",
            snap.queued_bytes,
            unit="bytes",
        )
        yield _counter(
            "imkit_backpressure_pauses_total",
            "Times a reader waited for a congested client to catch up.",
            snap.backpressure_pauses,
        )
        yield _counter(
            "imkit_backpressure_given_up_total",
            "Congested clients no longer waited for (they stopped reading).",
            snap.backpressure_given_up,
        )
        yield _gauge(
            "imkit_store_writable",
            "1 while the store writes, 0 while public messages are refused as unavailable.",
            0 if snap.store_problem is not None else 1,
        )
        yield _counter(
            "imkit_store_failed_batches_total",
            "Batches of messages the store could not commit.",
            snap.store_failed_batches,
        )
        if snap.cluster is not None:
            problem, outages, full_outages, data_lost, missed = snap.cluster
            yield _gauge(
                "imkit_cluster_available",
                "1 while this node reaches the cluster's Redis, 0 while it refuses what needs it.",
                1 if problem is None else 0,
            )
            yield _counter(
                "imkit_cluster_outages_total",
                "Times this node lost the cluster's Redis, or found it full (each logged once).",
                outages,
            )
            yield _counter(
                "imkit_cluster_redis_full_total",
                "Of those outages, the times the cluster's Redis refused writes: maxmemory.",
                full_outages,
            )
            yield _counter(
                "imkit_cluster_data_lost_total",
                "Times this node found the cluster's Redis restarted empty.",
                data_lost,
            )
            yield _counter(
                "imkit_cluster_messages_missed_total",
                "Times this node told its users that messages may have been missed.",
                missed,
            )
        yield from hook_families(snap.hooks)
        info = GaugeMetricFamily("imkit_build_info", "The imkit version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info


def _gauge(name: str, doc: str, value: float, unit: str = "") -> Metric:
    return GaugeMetricFamily(name, doc, value=value, unit=unit)


def _counter(name: str, doc: str, value: float, unit: str = "") -> Metric:
    return CounterMetricFamily(name, doc, value=value, unit=unit)


def _by_label(
    family: type[CounterMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: dict[str, int],
) -> Metric:
    metric = family(name, doc, labels=[label])
    for key, value in values.items():
        metric.add_metric([key], value)
    return metric


class Metrics:
    """One server's registry: its collector, the histograms, the process's own metrics."""

    def __init__(self, reader: LoopReader, *, max_clients: int) -> None:
        self.reader = reader
        self.max_clients = max_clients
        # A registry of our own: the global one would be shared by every server in the
        # process (the tests run many) and by whatever else imports prometheus_client.
        # auto_describe stays off: registering must not call collect(), which would wait
        # for the event loop that is registering it.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ServerCollector(reader))
        self.delivery_latency = Histogram(
            "imkit_delivery_latency_seconds",
            "Per flusher round that sent chat messages: seconds from when the server took "
            "up the first of them to the end of the round's non-blocking sends "
            "(docs/metrics.md).",
            buckets=LATENCY_BUCKETS,
            unit="seconds",
            registry=self.registry,
        )
        self.commit_duration = Histogram(
            "imkit_store_commit_duration_seconds",
            "Seconds each batch's transaction took in the store's writer thread, failed "
            "ones included.",
            buckets=COMMIT_BUCKETS,
            unit="seconds",
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # CPU seconds, memory, descriptors

    def health(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body of ``/healthz``."""
        try:
            snap = self.reader.snapshot()
        except Unanswered as error:
            return _unavailable("unresponsive", str(error))
        if snap.stopping:
            return _unavailable("shutting_down", "the server is shutting down")
        if snap.cluster is not None and (problem := snap.cluster[0]) is not None:
            reason = "cluster_redis_full" if problem == FULL else "cluster_unavailable"
            return _unavailable(reason, f"the chat is unavailable: {problem}")
        if snap.store_problem is not None:
            message = f"public messages are refused: {snap.store_problem}"
            return _unavailable("store_unavailable", message)
        if snap.connections >= self.max_clients:
            return _unavailable("full", f"the server is full ({self.max_clients} clients)")
        return 200, {"status": "ok", "users": snap.users, "connections": snap.connections}


def _unavailable(reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return 503, {"status": "unavailable", "reason": reason, "message": message}


# ------------------------------------------------------------------ HTTP


class _Handler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT  # a client that sends nothing does not keep its thread

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 seconds is not news


class _HTTPServer(socketserver.ThreadingMixIn, WSGIServer):
    # A thread per request, so that one slow client cannot hold up a health check;
    # daemon threads, so that a request in progress does not hold up the exit.
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's full name (a DNS query, maybe
        # slow, maybe failing) only to put it in the WSGI environment.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
        self.setup_environ()


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class MetricsServer:
    """The HTTP endpoint: bound by :func:`open_metrics`, then :meth:`start` and
    :meth:`close`."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        self._metrics_app: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]
        self._metrics_app = make_wsgi_app(metrics.registry)
        try:
            family, *_ = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            server_class = _HTTPServer6 if family == socket.AF_INET6 else _HTTPServer
            self._httpd = server_class((host, port), _Handler)
        except OSError as error:
            reason = error.strerror or str(error)
            raise ServeError(f"cannot listen on {host}:{port} for metrics: {reason}") from None
        self._httpd.set_app(self._app)
        self.address = format_addr(self._httpd.server_address)
        self._thread: threading.Thread | None = None

    @property
    def observe_delivery(self) -> Callable[[float], None]:
        return self.metrics.delivery_latency.observe

    @property
    def observe_commit(self) -> Callable[[float], None]:
        return self.metrics.commit_duration.observe

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="imkit-metrics",
            daemon=True,
        )
        self._thread.start()

    async def close(self) -> None:
        """Stop answering and close the port (requests in progress are abandoned)."""
        if self._thread is not None:
            # shutdown() waits for serve_forever to notice (POLL_INTERVAL): not on the loop.
            await anyio.to_thread.run_sync(self._httpd.shutdown)
            self._thread = None
        self._httpd.server_close()

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if path == "/metrics":
            try:
                return self._metrics_app(environ, start_response)
            except Unanswered as error:
                return _reply(start_response, 503, f"{error}\n")
        if path == "/healthz":
            if method not in ("GET", "HEAD"):
                return _reply(start_response, 405, "use GET\n", allow="GET, HEAD")
            status, body = self.metrics.health()
            text = json.dumps(body) + "\n"
            return _reply(start_response, status, text, "application/json", head=method == "HEAD")
        return _reply(start_response, 404, "not found: this port serves /metrics and /healthz\n")


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _reply(
    start_response: StartResponse,
    status: int,
    text: str,
    content_type: str = "text/plain; charset=utf-8",
    *,
    head: bool = False,
    allow: str | None = None,
) -> list[bytes]:
    body = text.encode()
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    if allow is not None:
        headers.append(("Allow", allow))
    start_response(f"{status} {_REASONS[status]}", headers)
    return [] if head else [body]


def open_metrics(server: Observed, address: str, *, max_clients: int) -> MetricsServer:
    """Bind ``--metrics HOST:PORT`` for ``server``, on the running event loop; ServeError
    when it cannot (a malformed address, the port in use)."""
    try:
        host, port = parse_address(address)
    except ValueError as error:
        raise ServeError(f"--metrics: {error}") from None
    reader = LoopReader(server, asyncio.get_running_loop())
    return MetricsServer(Metrics(reader, max_clients=max_clients), host, port)
