"""The admin socket's address and framing, shared by the server (imkit.operator) and the
commands that talk to it (imkit.client.admin): where the socket of the server on a port
is, how long its path may be, and how long one request may be.

The requests and their replies are JSON Lines, described in docs/protocol.md ("The admin
socket").
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Admin requests are one short JSON object each.
MAX_REQUEST = 4096
# sockaddr_un holds 108 bytes on Linux, the final NUL included.
MAX_SOCKET_PATH = 107


def check_path_length(path: Path) -> str | None:
    """Why ``path`` cannot be a Unix socket's path, or None when it can."""
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        return (
            f"the admin socket path {path} is too long for a Unix socket "
            f"({size} bytes; at most {MAX_SOCKET_PATH})"
        )
    return None


def default_path(port: int) -> Path:
    """The admin socket of the server on ``port``: one per port, so servers never share.

    ``$XDG_RUNTIME_DIR/imkit/`` when that is set, else ``/tmp/imkit-UID/``.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(runtime) / "imkit" if runtime else Path(tempfile.gettempdir()) / f"imkit-{os.getuid()}"
    )
    return folder / f"admin-{port}.sock"
