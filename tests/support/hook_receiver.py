"""A real HTTP receiver for outgoing webhooks, on loopback, in the test's event loop
(h11 over anyio, like the engine it receives from), and what the hook tests share."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSListener

from imkit.rules.hooks import OutgoingHook, new_key
from tests.support import TIMEOUT

# What the receiver answers a request: a status and a body, or None to never answer.
Answer = tuple[int, bytes] | None


@dataclass
class Received:
    """One request as the receiver read it."""

    method: str
    target: str
    headers: dict[str, str]  # names lowercased
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


def ok(request: Received) -> Answer:
    return 200, b""


@dataclass
class Receiver:
    """Listens on 127.0.0.1:``port`` (0: any) while :meth:`serve` runs; answers each
    request with ``answer(request)``. ``hang`` holds every answer until it is set."""

    port: int = 0
    answer: Callable[[Received], Answer] = ok
    tls: ssl.SSLContext | None = None
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    hang: anyio.Event | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/hook?x=1"

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener: Any = await anyio.create_tcp_listener(
            local_host="127.0.0.1", local_port=self.port
        )
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        if self.tls is not None:
            listener = TLSListener(listener, self.tls, standard_compatible=False)
        async with listener:
            task_status.started()
            await listener.serve(self._handle)

    async def _handle(self, stream: anyio.abc.ByteStream) -> None:
        self.connections += 1
        async with stream:
            server = h11.Connection(h11.SERVER)
            request: h11.Request | None = None
            body = b""
            while True:
                event = server.next_event()
                if event is h11.NEED_DATA:
                    try:
                        server.receive_data(await stream.receive())
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert request is not None
            received = Received(
                request.method.decode(),
                request.target.decode(),
                {k.decode().lower(): v.decode() for k, v in request.headers},
                body,
            )
            self.requests.append(received)
            if self.hang is not None:
                await self.hang.wait()
            answer = self.answer(received)
            if answer is None:
                await anyio.sleep_forever()
                return
            status, content = answer
            headers = [("Content-Length", str(len(content))), ("Connection", "close")]
            if content.startswith(b"{"):
                headers.append(("Content-Type", "application/json"))
            data = server.send(h11.Response(status_code=status, headers=headers))
            data += server.send(h11.Data(data=content)) + server.send(h11.EndOfMessage())
            try:
                await stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    async def until(self, count: int, timeout: float = TIMEOUT) -> list[Received]:
        """Wait until ``count`` requests have arrived; the requests so far."""
        with anyio.fail_after(timeout):
            while len(self.requests) < count:
                await anyio.sleep(0.01)
        return self.requests

    def texts(self) -> list[str]:
        return [request.json["text"] for request in self.requests]


async def until(done: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait until ``done()`` (a delivery's count: the engine counts a POST once it has
    read the answer, after the receiver has the request)."""
    with anyio.fail_after(timeout):
        while not done():
            await anyio.sleep(0.01)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    """``receiver`` listening for the duration of the block."""
    async with anyio.create_task_group() as tg:
        await tg.start(receiver.serve)
        yield receiver
        tg.cancel_scope.cancel()


def hook(
    url: str, room: str = "#builds", name: str = "ci", triggers: Sequence[str] = ()
) -> OutgoingHook:
    """An outgoing hook as the store would give it (a fresh secret)."""
    return OutgoingHook(name, room, url, new_key(), tuple(t.casefold() for t in triggers))


def provider(*hooks: OutgoingHook) -> Callable[[str], Sequence[OutgoingHook]]:
    """A room key to its hooks among ``hooks``: what the store's lookup will be."""
    return lambda room: [h for h in hooks if h.room == room]
