"""The client side of the admin socket: one request, its reply (``imkit who``, ``kick``,
``stats``, ``history``, ``ban``, ``account``...).

It imports nothing of the server: the commands that only talk to a running server stay
light, and cannot reach into its state.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import anyio

from imkit.errors import AdminError, AdminUnavailable
from imkit.protocol import LineFramer
from imkit.protocol.admin import check_path_length, default_path

__all__ = ["CLIENT_TIMEOUT", "default_path", "request"]

# How long `imkit who` waits for a reply before calling the server unresponsive.
CLIENT_TIMEOUT = 5.0


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


async def request(path: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one request to the admin socket at ``path`` and return its reply.

    Raises AdminUnavailable when no server answers there, AdminError when the server
    refuses (the reply's message says why).
    """
    too_long = check_path_length(path)
    if too_long:
        raise AdminError(too_long)
    unavailable = f"no imkit server answers on {path} (is `imkit serve` running?)"
    try:
        with anyio.fail_after(CLIENT_TIMEOUT):
            stream = await anyio.connect_unix(path)
            async with stream:
                await stream.send(_line(payload))
                framer = LineFramer(64 * 1024 * 1024)  # a who of many users is long
                while True:
                    lines = framer.feed(await stream.receive())
                    if lines and lines[0]:
                        reply = json.loads(lines[0])
                        break
    except PermissionError:
        raise AdminError(f"permission denied: {path} belongs to another user") from None
    except (FileNotFoundError, ConnectionRefusedError):
        raise AdminUnavailable(unavailable) from None
    except TimeoutError:
        raise AdminUnavailable(f"the imkit server on {path} did not answer in time") from None
    except (OSError, anyio.EndOfStream, anyio.BrokenResourceError, ValueError) as error:
        if isinstance(error, OSError) and error.errno not in (None, errno.ECONNRESET):
            raise AdminUnavailable(f"{unavailable}: {error.strerror}") from None
        raise AdminUnavailable(f"the imkit server on {path} closed the connection") from None
    if not isinstance(reply, dict):
        raise AdminError(f"unexpected reply from {path}")
    if reply.get("type") == "error":
        raise AdminError(str(reply.get("message", "the server refused the request")))
    return reply
