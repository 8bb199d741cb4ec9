"""What the process asks of the operating system, for the server and the load generator
alike: enough file descriptors for the connections it will hold."""

from __future__ import annotations

import contextlib
import logging
import resource

log = logging.getLogger("imkit.server")


def raise_open_file_limit(max_clients: int) -> None:
    """Let the process hold --max-clients sockets: raise the soft descriptor limit up to
    the hard one (many systems start at 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_clients + 64  # listeners, the admin socket, logs, a margin
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning(
            "only %d file descriptors are allowed: fewer than --max-clients %d",
            soft,
            max_clients,
            extra={"event": "fd_limit", "count": soft, "max_clients": max_clients},
        )
