"""The server side of the local admin socket.

``imkit serve`` opens a Unix domain socket that only its own user (and root) may use:
the socket is mode 0600 in a folder of mode 0700, and every connection's peer
credentials (SO_PEERCRED) are checked as well. The protocol is JSON Lines, one request
and one reply per line (docs/protocol.md); :mod:`imkit.operator.answers` answers them,
in order for each connection.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Any

import anyio

from imkit.errors import ServeError
from imkit.operator.answers import answer, json_line
from imkit.operator.served import Administered, error_reply
from imkit.protocol import LineFramer
from imkit.protocol.admin import MAX_REQUEST, check_path_length
from imkit.transport.links import LINK_ERRORS, SocketLink
from imkit.transport.listener import accept_loop

log = logging.getLogger("imkit.admin")

# An admin client that says nothing for this long is disconnected.
REQUEST_TIMEOUT = 10.0


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
                await link.send(json_line(error_reply("permission_denied", "permission denied")))
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
                    await link.send(json_line(await answer(server, line, by=f"uid {uid}")))
        except (TimeoutError, *LINK_ERRORS):
            pass
        except Exception:
            log.exception("admin socket: unexpected error", extra={"event": "admin_error"})
        finally:
            await link.aclose(0)
