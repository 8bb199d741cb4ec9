"""What ``imkit serve`` is asked to run: :class:`ServerConfig`, one field an option, and
the defaults of the options that belong to no other layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imkit.cluster import DEFAULT_CLUSTER_NAME, DEFAULT_NODE_TIMEOUT
from imkit.hub.outbox import DEFAULT_MAX_QUEUE
from imkit.protocol import DEFAULT_MAX_LINE, DEFAULT_PORT
from imkit.rules.accounts import DEFAULT_HASH_COST, DEFAULT_OFFLINE_DAYS
from imkit.rules.rooms import DEFAULT_LOBBY, DEFAULT_MAX_ROOMS, DEFAULT_MAX_ROOMS_PER_USER
from imkit.store.base import DEFAULT_RETAIN_DAYS
from imkit.transport.limits import DEFAULT_CONNECT_PERIOD, DEFAULT_CONNECT_RATE, DEFAULT_MAX_PER_IP

DEFAULT_IDLE_TIMEOUT = 60.0  # seconds, as in the seed
# Each connection is a socket, two tasks and some buffers (about 13 KiB measured);
# 10,000 of them fit comfortably in memory and in a raised descriptor limit.
DEFAULT_MAX_CLIENTS = 10_000
# Lines per second a client may send, and how many it may send at once. A person types
# far slower; a script's burst of 50 goes through at once; a flood is paced at 20/s.
DEFAULT_RATE = 20.0
DEFAULT_BURST = 50
# With --password, a client that has not proved it knows it by then is closed.
AUTH_TIMEOUT = 5.0


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT  # 0: never
    max_line: int = DEFAULT_MAX_LINE
    max_queue: int = DEFAULT_MAX_QUEUE
    admin_socket: str | None = None  # None: default_path(port)
    max_clients: int = DEFAULT_MAX_CLIENTS
    rate: float = DEFAULT_RATE  # lines per second per client; 0: unlimited
    burst: int = DEFAULT_BURST
    rate_exempt: tuple[str, ...] = ()  # addresses or networks the rate limits skip
    max_per_ip: int = DEFAULT_MAX_PER_IP  # connections open at once per address; 0: any
    connect_rate: int = DEFAULT_CONNECT_RATE  # new connections per address a period; 0: any
    connect_period: float = DEFAULT_CONNECT_PERIOD  # seconds
    password: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    auth_timeout: float = AUTH_TIMEOUT
    write_thread: bool | None = None  # None: when there is more than one core
    db: str | None = None  # SQLite file; "none": memory; None: the default path (port 0: memory)
    retain_days: float = DEFAULT_RETAIN_DAYS  # 0: keep everything
    replay: int = 0  # past public messages a text client gets on connect
    fsync: bool = False  # sync every commit to the disk (survives a power loss)
    metrics: str | None = None  # HOST:PORT for /metrics and /healthz; None: none
    cluster: str | None = None  # Redis URL: one chat with the other nodes on it
    cluster_name: str = DEFAULT_CLUSTER_NAME
    node_timeout: float = DEFAULT_NODE_TIMEOUT
    # Networks of load balancers whose connections start with a PROXY protocol header.
    proxy_protocol: tuple[str, ...] = ()
    hide_addresses: bool = False  # users see pseudonyms instead of each other's addresses
    accounts_only: bool = False  # every client logs in to an account before anything else
    password_hash_cost: int = DEFAULT_HASH_COST  # log2 of scrypt's N (imkit.rules.accounts)
    offline_days: float = DEFAULT_OFFLINE_DAYS  # how long a message waits for an account
    # Rooms (docs/rooms.md).
    lobby: str = DEFAULT_LOBBY  # the public chat's name
    max_rooms: int = DEFAULT_MAX_ROOMS
    max_rooms_per_user: int = DEFAULT_MAX_ROOMS_PER_USER
    room_creation: str = "anyone"  # anyone, accounts or admin
    web: str | None = None  # HOST:PORT for the web page and its WebSocket; None: none
    web_origins: tuple[str, ...] = ()  # origins besides the page's own that may connect
    http_timeout: float = 10.0  # the web port: each request and its response
    # HOST:PORTs serving only POST /hooks/KEY (incoming webhooks), without the page.
    hooks: tuple[str, ...] = ()
    # IRC (docs/irc.md): HOST:PORT to listen on for IRC clients, the server's name in
    # IRC lines (None: the host's name), and the MOTD's file (None: 422, no MOTD).
    irc: tuple[str, ...] = ()
    server_name: str | None = None
    motd: str | None = None
    irc_operators: tuple[str, ...] = ()  # NAME:PASSWORD each, for IRC's OPER

    def hub_settings(self) -> dict[str, Any]:
        """The settings the hub is made with (whichever its backend)."""
        return {
            "hide_addresses": self.hide_addresses,
            "lobby": self.lobby,
            "max_rooms": self.max_rooms,
            "max_rooms_per_user": self.max_rooms_per_user,
            "room_creation": self.room_creation,
        }
