"""A stand-in JSON Lines server whose replies a test writes: for the clients' side of a
protocol feature (what they send, how they read each reply) without a real server.

It accepts any number of connections on a free loopback port, each served by a thread,
and records every request it reads. Each request is answered by ``answer(request,
state)``: a list of JSON objects to send back (a reply and any events), or None to fall
back on :func:`default_answer`, which answers like a plain imkit server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]
Answer = Callable[[Json, "Session"], list[Json] | None]


class Session:
    """One connection's state: its name and account, as the stand-in sees them."""

    def __init__(self, number: int) -> None:
        self.addr = f"127.0.0.1:{40000 + number}"
        self.name = self.addr
        self.account: str | None = None
        self.next_msgid = 1795764673091000


def default_answer(request: Json, session: Session) -> list[Json]:
    """What a plain imkit server answers (accounts included: any login works)."""
    kind, rid = request.get("type"), request.get("id")
    if kind == "hello":
        if request.get("login"):
            session.name = session.account = request["login"]["name"]
        elif request.get("name"):
            session.name = request["name"]
        welcome = {"type": "welcome", "id": rid, "name": session.name, "addr": session.addr}
        return [welcome | {"server": "scripted/1", "v": 1, "account": session.account}]
    if kind == "login":
        session.name = session.account = request["name"]
        return [{"type": "ok", "id": rid, "name": session.name, "account": session.account}]
    if kind == "passwd":
        return [{"type": "ok", "id": rid}]
    if kind == "message":
        session.next_msgid += 1
        return [{"type": "ok", "id": rid, "msgid": str(session.next_msgid)}]
    if kind == "history":
        return [{"type": "history", "id": rid, "messages": [], "more": False}]
    if kind == "who":
        me = {"name": session.name, "addr": session.addr, "account": session.account}
        return [{"type": "users", "id": rid, "users": [me]}]
    if kind == "rename":
        session.name = request["name"]
        return [{"type": "ok", "id": rid, "name": session.name}]
    if kind == "ping":
        return [{"type": "pong", "id": rid}]
    return [{"type": "error", "id": rid, "code": "bad_request", "message": "unknown"}]


class ScriptedServer:
    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer
        self.requests: list[Json] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                number += 1
                self._sockets.append(conn)
                threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        session = Session(number)
        with contextlib.suppress(OSError), conn, conn.makefile("rb") as lines:
            for line in lines:
                request = json.loads(line)
                with self._lock:
                    self.requests.append(request)
                replies = self.answer(request, session) if self.answer else None
                if replies is None:
                    replies = default_answer(request, session)
                for reply in replies:
                    conn.sendall((json.dumps(reply) + "\n").encode())

    def of_type(self, kind: str) -> list[Json]:
        with self._lock:
            return [r for r in self.requests if r.get("type") == kind]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        for conn in self._sockets:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
