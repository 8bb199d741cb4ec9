"""The running server: what it is asked to run (config.py), the wiring of hub,
listeners, flusher, admin socket, idle sweep and shutdown (node.py), the process with
its signals (run.py), and the Prometheus endpoint (metrics.py, imported only with
``--metrics``)."""

from imkit.protocol import DEFAULT_PORT
from imkit.server.config import (
    AUTH_TIMEOUT,
    DEFAULT_BURST,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_RATE,
    ServerConfig,
)
from imkit.server.node import Server
from imkit.server.run import run

__all__ = [
    "AUTH_TIMEOUT",
    "DEFAULT_BURST",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CLIENTS",
    "DEFAULT_PORT",
    "DEFAULT_RATE",
    "Server",
    "ServerConfig",
    "run",
]
