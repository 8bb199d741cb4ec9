"""The local admin socket: ``imkit who``, ``kick``, ``stats`` and ``history``.

``imkit serve`` opens a Unix domain socket that only its own user (and root) may use:
the socket is mode 0600 in a folder of mode 0700, and every connection's peer
credentials (SO_PEERCRED) are checked as well. The protocol is JSON Lines, one request
and one reply per line (docs/protocol.md):

    {"type":"who"}                         -> {"type":"users","users":[...]}
    {"type":"kick","name":N,"reason":R}    -> {"type":"ok","name":N} | error no_such_user
    {"type":"stats"}                       -> {"type":"stats", counters..., store...}
    {"type":"history","limit":N,"before":M} -> {"type":"history","messages":[...],"more":B}

and the moderation (imkit.moderate) and account (imkit.account_admin) requests.

Every request is answered at once but ``history``, which waits (a bounded time) for the
store to read it; the requests of one connection are answered in order.

This module holds both halves: :class:`AdminSocket` (server side) and :func:`request`
(what the CLI calls).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import stat
import struct
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import anyio

from imkit import account_admin, moderate
from imkit.errors import AdminError, AdminUnavailable, ServeError
from imkit.hub import Hub
from imkit.login import Logins
from imkit.protocol import (
    BAD_REQUEST,
    UNAVAILABLE,
    History,
    Invalid,
    LineFramer,
    iso_time,
    parse_json_request,
)
from imkit.store.base import awaited
from imkit.transport.backpressure import Congestion
from imkit.transport.links import LINK_ERRORS, SocketLink
from imkit.transport.listener import accept_loop

log = logging.getLogger("imkit.admin")

# Admin requests are one short JSON object each.
MAX_REQUEST = 4096
# An admin client that says nothing for this long is disconnected.
REQUEST_TIMEOUT = 10.0
# How long `imkit who` waits for a reply before calling the server unresponsive.
CLIENT_TIMEOUT = 5.0
# How long a history request waits for the store (a disk that hangs): less than
# CLIENT_TIMEOUT, so that the operator is told why rather than that nobody answered.
HISTORY_TIMEOUT = 4.0
# sockaddr_un holds 108 bytes on Linux, the final NUL included.
MAX_SOCKET_PATH = 107


class Administered(Protocol):
    """What the admin socket needs of the server it serves (imkit.server.Server)."""

    hub: Hub
    logins: Logins
    started_at: float
    congestion: Congestion

    @property
    def connections_now(self) -> int: ...


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


def peer_uid(sock: Any) -> int:
    """The user id of the process at the other end of a Unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def may_administer(uid: int) -> bool:
    """Only the server's own user and root may use its admin socket."""
    return uid in (os.getuid(), 0)


def _private_folder(folder: Path) -> None:
    """Create ``folder`` with mode 0700, or check that an existing one is ours and private.

    In a shared temp dir someone else could have made the folder (or a symlink) first.
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as error:
        raise ServeError(f"cannot create {folder}: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ServeError(f"refusing to use {folder}: it is not a directory")
    if info.st_uid != os.getuid():
        raise ServeError(f"refusing to use {folder}: it belongs to another user")
    if info.st_mode & 0o077:
        raise ServeError(f"refusing to use {folder}: others may enter it (chmod 700 it)")


def _clear_stale(path: Path) -> None:
    """Remove a socket file left by a crashed server; refuse if a server answers on it."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ServeError(f"refusing to replace {path}: it is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        log.info(
            "replacing stale admin socket %s",
            path,
            extra={"event": "admin_socket_stale", "path": str(path)},
        )
        path.unlink(missing_ok=True)
        return
    except OSError as error:
        raise ServeError(f"cannot check the admin socket {path}: {error.strerror}") from None
    finally:
        probe.close()
    raise ServeError(f"another imkit server is running with the admin socket {path}")


class AdminSocket:
    """The server side of the admin socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._inode: int | None = None
        self._sock: socket.socket | None = None

    async def open(self) -> None:
        """Bind the socket (mode 0600 from the start); ServeError when impossible."""
        too_long = check_path_length(self.path)
        if too_long:
            raise ServeError(too_long)
        _private_folder(self.path.parent)
        _clear_stale(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the file is created 0600: never briefly open to others
        try:
            sock.bind(str(self.path))
            sock.listen(16)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            reason = error.strerror or str(error)
            raise ServeError(f"cannot open the admin socket {self.path}: {reason}") from None
        finally:
            os.umask(old_umask)
        self._inode = os.stat(self.path).st_ino
        self._sock = sock

    async def serve(self, server: Administered) -> None:
        assert self._sock is not None
        try:
            async with anyio.create_task_group() as tg:

                def accepted(sock: socket.socket, peer: object) -> None:
                    tg.start_soon(self._handle, sock, server)

                # The chat's own fair accept loop: anyio's Unix listener wakes its accept
                # with a future's set_result, which raises InvalidStateError when the loop
                # reports the socket readable twice before the accept has run.
                await accept_loop(self._sock, accepted)
        finally:
            self.close()

    def close(self) -> None:
        # Remove the file first (this may run in a cancelled scope), and only if it is
        # still ours.
        try:
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        except OSError:
            pass
        self._inode = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _handle(self, sock: socket.socket, server: Administered) -> None:
        # One failing admin client must never take the listener (or the server) down.
        link = SocketLink(sock)
        try:
            uid = peer_uid(sock)
            if not may_administer(uid):
                log.warning(
                    "admin socket: refused a connection from uid %d",
                    uid,
                    extra={"event": "admin_refused", "uid": uid},
                )
                # Read the request before refusing it: closing a Unix socket with
                # unread input resets it, and the refusal would be lost.
                with anyio.move_on_after(1.0):
                    await link.receive()
                await link.send(_line(_error("permission_denied", "permission denied")))
                return
            framer = LineFramer(MAX_REQUEST)
            while True:
                with anyio.fail_after(REQUEST_TIMEOUT):
                    data = await link.receive()
                if not data:
                    return
                for line in framer.feed(data):
                    if line is not None and not line.strip():
                        continue
                    await link.send(_line(await answer(server, line, by=f"uid {uid}")))
        except (TimeoutError, *LINK_ERRORS):
            pass
        except Exception:
            log.exception("admin socket: unexpected error", extra={"event": "admin_error"})
        finally:
            await link.aclose(0)


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


async def answer(server: Administered, line: bytes | None, by: str = "admin") -> dict[str, Any]:
    """The reply to one admin request line (None: the line was too long); ``by`` is who
    asked (the peer's uid), for the audit log."""
    if line is None:
        return _error(BAD_REQUEST, f"request longer than {MAX_REQUEST} bytes")
    try:
        request = json.loads(line)
    except ValueError:
        return _error(BAD_REQUEST, "a request is one JSON object per line")
    if not isinstance(request, dict):
        return _error(BAD_REQUEST, "a request is one JSON object per line")
    if request.get("type") == "history":
        return await history(server, request)
    if request.get("type") in moderate.REQUESTS:
        return await moderate.answer(server.hub, request, by)
    if request.get("type") in account_admin.REQUESTS:
        return await account_admin.answer(server.hub, server.logins.hasher, request, by)
    hub = server.hub
    if hub.cluster_wide:  # answered from the cluster's Redis (imkit.cluster.admin)
        return await _cluster_answer(server, request, by)
    return answer_now(server, request, by)


async def _cluster_answer(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    # Imported only in a cluster: one node needs no Redis client.
    from imkit.cluster import admin as cluster_admin
    from imkit.cluster.hub import ClusterHub

    hub = server.hub
    assert isinstance(hub, ClusterHub)
    kind = request.get("type")
    if kind == "who":
        return await cluster_admin.who(hub)
    if kind == "kick":
        name, reason = request.get("name"), request.get("reason")
        if not isinstance(name, str) or not (reason is None or isinstance(reason, str)):
            return _error(BAD_REQUEST, "kick needs a string 'name' (and 'reason')")
        reply = await cluster_admin.kick(hub, name, reason)
        if reply["type"] == "ok":
            log.info(
                "%s kicked by %s (on node %s): %s",
                reply["name"],
                by,
                reply["node"],
                reason,
                extra={
                    "event": "kick_requested",
                    "user": reply["name"],
                    "by": by,
                    "reason": reason,
                },
            )
        return reply
    if kind == "stats":
        section = await cluster_admin.cluster_stats(hub)
        return {"type": "stats", **stats(server), "node": hub.node, "cluster": section}
    return answer_now(server, request, by)


def answer_now(server: Administered, request: dict[str, Any], by: str = "admin") -> dict[str, Any]:
    """The reply to a request that needs nothing but the hub: who, stats, kick."""
    kind = request.get("type")
    if kind == "who":
        return {"type": "users", "users": users(server)}
    if kind == "stats":
        return {"type": "stats", **stats(server), "cluster": None}
    if kind == "kick":
        name, reason = request.get("name"), request.get("reason")
        if not isinstance(name, str) or not (reason is None or isinstance(reason, str)):
            return _error(BAD_REQUEST, "kick needs a string 'name' (and 'reason')")
        member = server.hub.kick(name, reason)
        if member is None:
            return _error("no_such_user", f"no user named {name!r} is online")
        log.info(
            "%s (%s) kicked by %s: %s",
            member.name,
            member.addr,
            by,
            reason,
            extra={
                "event": "kicked",
                "user": member.name,
                "addr": member.addr,
                "by": by,
                "reason": reason,
            },
        )
        return {"type": "ok", "name": member.name}
    return _error(BAD_REQUEST, f"unknown request type {kind!r}")


async def history(server: Administered, request: dict[str, Any]) -> dict[str, Any]:
    """Past public messages, oldest first, as the chat's history request gives them."""
    # The same request as a chat client's, checked by the same parser.
    command = parse_json_request({**request, "id": None})
    if not isinstance(command, History):
        message = command.message if isinstance(command, Invalid) else "not a history request"
        return _error(BAD_REQUEST, f"history: {message}")
    limit, before = command.limit, command.before
    try:
        page = await awaited(partial(server.hub.store.history, limit, before), HISTORY_TIMEOUT)
    except TimeoutError:
        return _error(UNAVAILABLE, f"the store did not answer within {HISTORY_TIMEOUT:g}s")
    if isinstance(page, str):
        return _error(UNAVAILABLE, page)
    messages = [
        {
            "msgid": message.msgid,
            "time": iso_time(message.time),
            "from": message.sender,
            "addr": message.addr,
            "text": message.text,
        }
        for message in page.messages
    ]
    return {"type": "history", "messages": messages, "more": page.more}


def users(server: Administered) -> list[dict[str, Any]]:
    now = time.monotonic()
    rows = [
        {
            "name": m.name,
            "addr": m.addr,
            "account": m.account,
            "mode": "json" if m.mode.value == "json" else "text",
            "connected_at": iso_time(m.connected_wall),
            "connected_s": round(now - m.connected_at, 3),
            "idle_s": round(now - m.last_active, 3),
        }
        for m in server.hub.members
    ]
    if server.hub.hide_addresses:  # what the users see in its place
        for row, member in zip(rows, server.hub.members, strict=True):
            row["pseudonym"] = member.shown_addr
    return rows


def stats(server: Administered) -> dict[str, Any]:
    counters = server.hub.stats
    store = server.hub.store
    return {
        "uptime_s": round(time.monotonic() - server.started_at, 3),
        "users_online": len(server.hub),
        "connections_now": server.connections_now,
        "connections_total": counters.connections_total,
        "messages_received": counters.messages_received,
        "messages_delivered": counters.messages_delivered,
        "slow_consumers": counters.slow_consumers,
        "idle_kicks": counters.idle_kicks,
        "admin_kicks": counters.admin_kicks,
        "refused_full": counters.refused_full,
        "refused_per_address": counters.refused_per_address,
        "refused_unauthorized": counters.refused_unauthorized,
        "refused_unavailable": counters.refused_unavailable,
        "refused_proxy_header": counters.refused_proxy_header,
        "refused_banned": counters.refused_banned,
        "banned": counters.banned,
        "refused_muted": counters.refused_muted,
        "logins": counters.logins,
        "failed_logins": counters.failed_logins,
        "replaced": counters.replaced,
        "queued": counters.queued,
        # A cluster node holds no accounts itself: its cluster section counts Redis'.
        "accounts": None if server.hub.cluster_wide else len(store.accounts),
        "bans_in_force": len(server.hub.bans.in_force(server.hub.wall_clock())),
        "muted_now": sum(1 for m in server.hub.local_members() if m.muted_until is not None),
        "backpressure_pauses": server.congestion.pauses,
        "backpressure_given_up": server.congestion.given_up,
        "store": store.description,
        "store_problem": store.problem,  # why it cannot write now; None while it can
    }


# ------------------------------------------------------------------ the client side


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
