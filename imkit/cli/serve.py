"""``imkit serve``: run the chat server."""

from __future__ import annotations

import logging
import sys

import anyio
import click

from imkit.cli.options import (
    DAY,
    LOG_FORMATS,
    TEXT,
    Bounded,
    configure_logging,
    loop_options,
    option,
)
from imkit.cli.serve_options import ConnectRate, ListenAddress, RoomName, networks, web_origins
from imkit.cluster import DEFAULT_CLUSTER_NAME, DEFAULT_NODE_TIMEOUT
from imkit.errors import ServeError
from imkit.hub.outbox import DEFAULT_MAX_QUEUE
from imkit.protocol import DEFAULT_MAX_LINE, HISTORY_MAX
from imkit.rules.accounts import (
    DEFAULT_HASH_COST,
    DEFAULT_OFFLINE_DAYS,
    MAX_HASH_COST,
    MIN_HASH_COST,
)
from imkit.rules.rooms import (
    CREATION_POLICIES,
    DEFAULT_LOBBY,
    DEFAULT_MAX_ROOMS,
    DEFAULT_MAX_ROOMS_PER_USER,
)
from imkit.server import (
    DEFAULT_BURST,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_PORT,
    DEFAULT_RATE,
    ServerConfig,
)
from imkit.server import run as run_server
from imkit.store import DEFAULT_RETAIN_DAYS
from imkit.transport.limits import DEFAULT_MAX_PER_IP


@click.command(short_help="Run the chat server.")
@option(
    "--host",
    type=TEXT,
    default="127.0.0.1",
    help="Address to listen on (:: takes IPv4 clients too).",
)
@option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    help="TCP port; 0 picks a free one.",
)
@option(
    "--idle-timeout",
    type=Bounded(0.1, 30 * DAY, zero=True),
    default=DEFAULT_IDLE_TIMEOUT,
    metavar="SECONDS",
    help="Disconnect a client that sends no line for this long (0.1 s to 30 days, "
    "2592000); 0 never does.",
)
@option(
    "--max-line",
    type=click.IntRange(min=64, max=16 * 1024 * 1024),
    default=DEFAULT_MAX_LINE,
    metavar="BYTES",
    help="Longest line a client may send.",
)
@option(
    "--max-queue",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_QUEUE,
    metavar="BYTES",
    help="Unsent bytes per client before it is dropped as a slow consumer.",
)
@option(
    "--max-clients",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CLIENTS,
    metavar="N",
    help="Connections at once; one more is told the server is full.",
)
@option(
    "--max-per-ip",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_PER_IP,
    metavar="N",
    help="Connections at once from one address (IPv6: one /64); one more is refused. "
    "127.0.0.1, ::1 and --rate-exempt are exempt; 0: no limit.",
)
@option(
    "--connect-rate",
    type=ConnectRate(),
    default="32/10m",
    metavar="N/PERIOD",
    help="New connections one address may open: N at once, then N per PERIOD (s, m, h "
    "or d: 90s, 10m, 1h); more are refused. Same exemptions; 0: no limit.",
)
@option(
    "--rate",
    type=Bounded(0.01, 1_000_000, zero=True),
    default=DEFAULT_RATE,
    metavar="MSGS_PER_S",
    help="Lines a client may send per second (more are read later), 0.01 to 1000000; 0: no limit.",
)
@option(
    "--burst",
    type=click.IntRange(min=1),
    default=DEFAULT_BURST,
    metavar="N",
    help="Lines a client may send at once before --rate applies.",
)
@option(
    "--rate-exempt",
    multiple=True,
    metavar="ADDR",
    callback=networks,
    help="Address or network (CIDR) that --rate, --max-per-ip and --connect-rate do not "
    "apply to; repeatable.",
)
@option(
    "--proxy-protocol",
    multiple=True,
    metavar="CIDR",
    callback=networks,
    help="Connections from this network (a load balancer) start with a PROXY protocol "
    "header (v1 or v2) whose address is the user's; repeatable.",
)
@option(
    "--password",
    type=TEXT,
    nonempty=True,
    default=None,
    show_default=False,
    help="Clients must send it first (prefer IMKIT_PASSWORD: a flag shows in ps).",
)
@option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    nonempty=True,
    default=None,
    help="Serve TLS: certificate chain (PEM).",
)
@option(
    "--tls-key",
    type=click.Path(dir_okay=False),
    nonempty=True,
    default=None,
    help="Serve TLS: private key (PEM).",
)
@option(
    "--admin-socket",
    type=click.Path(dir_okay=False),
    nonempty=True,
    default=None,
    show_default="$XDG_RUNTIME_DIR/imkit/admin-PORT.sock or /tmp/imkit-UID/admin-PORT.sock",
    help="Unix socket for imkit who, kick and stats.",
)
@option(
    "--metrics",
    type=ListenAddress(),
    nonempty=True,
    default=None,
    metavar="HOST:PORT",
    show_default="off",
    help="Serve Prometheus /metrics and a /healthz check over HTTP on HOST:PORT.",
)
@option(
    "--web",
    type=ListenAddress(),
    nonempty=True,
    default=None,
    metavar="HOST:PORT",
    show_default="off",
    help="Serve the chat's web page and its WebSocket (/ws) over HTTP on HOST:PORT "
    "(HTTPS with --tls-cert).",
)
@option(
    "--hooks",
    type=ListenAddress(),
    multiple=True,
    metavar="HOST:PORT",
    help="Serve only incoming webhooks (POST /hooks/KEY) over HTTP on HOST:PORT, without "
    "the page (--web serves them too); repeatable. docs/integrations.md.",
)
@option(
    "--irc",
    type=ListenAddress(),
    multiple=True,
    metavar="HOST:PORT",
    help="Serve IRC clients (WeeChat, irssi, bots) on HOST:PORT, in the same chat "
    "(TLS with --tls-cert); repeatable. docs/irc.md.",
)
@option(
    "--server-name",
    nonempty=True,
    default=None,
    metavar="NAME",
    show_default="the host's name",
    help="The server's name in IRC lines (--irc).",
)
@option(
    "--motd",
    type=click.Path(dir_okay=False, exists=True),
    nonempty=True,
    default=None,
    metavar="FILE",
    help="The message of the day IRC clients get (--irc); none by default.",
)
@option(
    "--irc-operator",
    multiple=True,
    metavar="NAME:PASSWORD",
    help="An IRC operator's OPER name and password (--irc); repeatable. An IRC operator "
    "is shown as one (WHO, WHOIS); it has no other power: imkit's administrators use "
    "imkit kick, ban and mute.",
)
@option(
    "--web-origin",
    multiple=True,
    metavar="URL",
    callback=web_origins,
    help="Another origin (scheme://host[:port]) whose pages may open the WebSocket, "
    "besides the page's own; repeatable.",
)
@option(
    "--db",
    type=click.Path(dir_okay=False),
    nonempty=True,
    default=None,
    metavar="PATH|none",
    show_default="$XDG_STATE_HOME/imkit/imkit-PORT.db, or ~/.local/state/imkit/imkit-PORT.db; "
    "none with --port 0",
    help="SQLite file that keeps history (created on first start); none: memory only.",
)
@option(
    "--retain-days",
    type=Bounded(0.001, 100 * 365, zero=True),
    default=DEFAULT_RETAIN_DAYS,
    metavar="DAYS",
    help="Forget messages older than this; 0 keeps everything.",
)
@option(
    "--replay",
    type=click.IntRange(0, HISTORY_MAX),
    default=0,
    metavar="N",
    help="Show a text client (netcat) the last N messages when it connects.",
)
@option(
    "--fsync/--no-fsync",
    default=False,
    help="Sync every commit to the disk: a stored message survives a power loss too.",
)
@option(
    "--hide-addresses/--show-addresses",
    default=False,
    help="Show users a pseudonym (anon:7f3k2p, one per IP) instead of each other's "
    "addresses; only imkit who and the log show addresses.",
)
@option(
    "--accounts-only/--guests-allowed",
    default=False,
    help="Every client must log in to an account (imkit account add) before anything "
    "else, within 5 seconds of connecting.",
)
@option(
    "--password-hash-cost",
    type=click.IntRange(MIN_HASH_COST, MAX_HASH_COST),
    default=DEFAULT_HASH_COST,
    metavar="N",
    help="Accounts' passwords are hashed with scrypt, N = 2^this (memory 128 * 8 * 2^N "
    "bytes a hash); OWASP's minimum is 17 (docs/accounts.md).",
)
@option(
    "--offline-days",
    type=Bounded(0.001, 100 * 365, zero=True),
    default=DEFAULT_OFFLINE_DAYS,
    metavar="DAYS",
    help="How long a private message waits for an account that is offline; 0: until it logs in.",
)
@option(
    "--lobby",
    type=RoomName(),
    default=DEFAULT_LOBBY,
    metavar="#ROOM",
    help="The name of the public chat every client is in when it arrives (docs/rooms.md).",
)
@option(
    "--max-rooms",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_MAX_ROOMS,
    metavar="N",
    help="Rooms on the server at most, registered or not (the lobby not counted).",
)
@option(
    "--max-rooms-per-user",
    type=click.IntRange(1, 10_000),
    default=DEFAULT_MAX_ROOMS_PER_USER,
    metavar="N",
    help="Rooms one user may be in at once (the lobby not counted).",
)
@option(
    "--room-creation",
    type=click.Choice(CREATION_POLICIES, case_sensitive=False),
    default="anyone",
    help="Who makes a room by joining it: anyone, logged-in accounts, or only the "
    "administrator (imkit room add).",
)
@option(
    "--cluster",
    type=TEXT,
    nonempty=True,
    default=None,
    metavar="REDIS_URL",
    show_default="off: one node",
    help="Join the nodes on this Redis as one chat (redis://[:PASSWORD@]HOST:PORT/DB, "
    "rediss:// for TLS); history then lives in Redis (docs/cluster.md).",
)
@option(
    "--cluster-name",
    type=TEXT,
    nonempty=True,
    default=DEFAULT_CLUSTER_NAME,
    metavar="NAME",
    help="Prefix of the cluster's keys in Redis: chats with other names share a Redis.",
)
@option(
    "--node-timeout",
    type=Bounded(0.5, 3600),
    default=DEFAULT_NODE_TIMEOUT,
    metavar="SECONDS",
    help="A node silent this long is dead: its users go offline (0.5 to 3600).",
)
@option(
    "--event-loop",
    type=click.Choice(["auto", "uvloop", "asyncio"], case_sensitive=False),
    default="auto",
    help="auto: uvloop when it is installed (faster), else asyncio.",
)
@option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    help="How much to log on stderr.",
)
@option(
    "--log-format",
    type=click.Choice(LOG_FORMATS, case_sensitive=False),
    default="text",
    help="text: a line for people; json: one JSON object a line (JSON Lines), for a log collector.",
)
def serve(
    host: str,
    port: int,
    idle_timeout: float,
    max_line: int,
    max_queue: int,
    max_clients: int,
    max_per_ip: int,
    connect_rate: tuple[int, float],
    rate: float,
    burst: int,
    rate_exempt: tuple[str, ...],
    proxy_protocol: tuple[str, ...],
    password: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    admin_socket: str | None,
    metrics: str | None,
    web: str | None,
    web_origin: tuple[str, ...],
    hooks: tuple[str, ...],
    irc: tuple[str, ...],
    server_name: str | None,
    motd: str | None,
    irc_operator: tuple[str, ...],
    db: str | None,
    retain_days: float,
    replay: int,
    fsync: bool,
    hide_addresses: bool,
    accounts_only: bool,
    password_hash_cost: int,
    offline_days: float,
    lobby: str,
    max_rooms: int,
    max_rooms_per_user: int,
    room_creation: str,
    cluster: str | None,
    cluster_name: str,
    node_timeout: float,
    event_loop: str,
    log_level: str,
    log_format: str,
) -> None:
    """Run the chat server (text and JSON Lines on one port).

    \b
    Exit status: 0 stopped by a signal (SIGTERM, SIGHUP, Ctrl-C); 1 could not start
    (port in use, bad TLS files, a --db file that is not imkit's or is in use, the
    cluster's Redis unreachable or of another data format, ...);
    2 usage error (an option out of range, or set but empty).
    """
    if any(":" not in entry or entry.startswith(":") for entry in irc_operator):
        raise click.UsageError("--irc-operator is NAME:PASSWORD")
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if cluster is not None and (db is not None or fsync):
        flag = "--db" if db is not None else "--fsync"
        raise click.UsageError(f"{flag} does not apply with --cluster: history lives in Redis")
    configure_logging(log_level, log_format.lower())
    config = ServerConfig(
        host=host,
        port=port,
        idle_timeout=idle_timeout,
        max_line=max_line,
        max_queue=max_queue,
        max_clients=max_clients,
        max_per_ip=max_per_ip,
        connect_rate=connect_rate[0],
        connect_period=connect_rate[1],
        rate=rate,
        burst=burst,
        rate_exempt=rate_exempt,
        proxy_protocol=proxy_protocol,
        password=password,
        tls_cert=tls_cert,
        tls_key=tls_key,
        admin_socket=admin_socket,
        metrics=metrics,
        web=web,
        web_origins=web_origin,
        hooks=hooks,
        irc=irc,
        server_name=server_name,
        motd=motd,
        irc_operators=irc_operator,
        db=db,
        retain_days=retain_days,
        replay=replay,
        fsync=fsync,
        cluster=cluster,
        cluster_name=cluster_name,
        node_timeout=node_timeout,
        hide_addresses=hide_addresses,
        accounts_only=accounts_only,
        password_hash_cost=password_hash_cost,
        offline_days=offline_days,
        lobby=lobby,
        max_rooms=max_rooms,
        max_rooms_per_user=max_rooms_per_user,
        room_creation=room_creation.lower(),
    )

    options = loop_options(event_loop)
    try:
        anyio.run(run_server, config, backend="asyncio", backend_options=options)
    except ServeError as error:
        if log_format.lower() == "json":  # a collector gets it as one more JSON line
            logging.getLogger("imkit.server").error(
                "%s", error, extra={"event": "start_failed", "reason": str(error)}
            )
            sys.exit(1)
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        sys.exit(130)
