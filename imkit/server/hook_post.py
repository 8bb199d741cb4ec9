"""One outgoing webhook POST (docs/integrations.md, "Outgoing webhooks"): an HTTP/1.1
request over an anyio TCP stream (TLS for ``https``), h11 for the bytes, one request a
connection, the whole exchange under one deadline.

:func:`post_json` never raises for what the receiver or the network did: it returns a
:class:`Posted` that says whether to count it delivered, retry it or give it up. Why
h11 and not an HTTP client package: the project already runs h11 for the web port
(web/http.py), it is sans-I/O, and a webhook needs one POST and one reply, nothing a
client library's pools, redirects and cookies would add.
"""

from __future__ import annotations

import json
import os
import ssl
from dataclasses import dataclass
from typing import Any

import anyio
import h11

from imkit import __version__
from imkit.rules.hooks import Target, parse_url

# What is read of a reply's body: enough for a JSON {"text": ...} of any chat line; a
# longer body is read no further (the POST still counts as delivered).
MAX_REPLY_BYTES = 64 * 1024
USER_AGENT = f"imkit/{__version__}"
# Statuses worth trying again: the receiver is overloaded or restarting.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The largest Retry-After (seconds) a 429 or 503 may ask for; anything longer is this.
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class Posted:
    """What one POST came to. ``status`` None: no HTTP answer (``error`` says why).
    ``retry``: worth trying again (a connection error, a timeout, 5xx, 429), after
    ``retry_after`` seconds when the receiver asked. ``reply``: the text of a 2xx JSON
    reply's ``text``, to post back to the room."""

    status: int | None
    error: str | None = None
    retry: bool = False
    retry_after: float | None = None
    reply: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def post_json(
    url: str,
    body: bytes,
    headers: list[tuple[str, str]],
    *,
    within: float,
    ssl_context: ssl.SSLContext | None = None,
) -> Posted:
    """POST ``body`` (JSON) to ``url`` with ``headers`` added, ``within`` seconds from
    the first connection attempt to the reply's last byte."""
    try:
        where = parse_url(url)
    except ValueError as error:
        return Posted(None, str(error))
    try:
        with anyio.fail_after(within):
            return await _exchange(where, body, headers, ssl_context)
    except TimeoutError:
        return Posted(None, f"no answer within {within:g} s", retry=True)
    except (OSError, anyio.BrokenResourceError, anyio.EndOfStream, ssl.SSLError) as error:
        return Posted(None, _describe(error), retry=True)
    except h11.ProtocolError as error:
        return Posted(None, f"not an HTTP/1.1 answer: {error}", retry=True)


def _describe(error: BaseException) -> str:
    # anyio's connect_tcp says "All connection attempts failed" from the real reasons.
    cause = error.__cause__
    if isinstance(cause, BaseExceptionGroup):
        cause = cause.exceptions[0]
    if isinstance(cause, OSError):
        error = cause
    if isinstance(error, anyio.EndOfStream):
        return "the receiver closed the connection before answering"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: the receiver's certificate is refused: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if isinstance(error, OSError) and error.errno:  # asyncio's strerror is not errno's
        return f"cannot connect: {os.strerror(error.errno)}"
    if isinstance(error, OSError) and error.strerror:
        return f"cannot connect: {error.strerror}"
    return f"cannot connect: {error or type(error).__name__}"


async def _exchange(
    where: Target, body: bytes, headers: list[tuple[str, str]], ssl_context: ssl.SSLContext | None
) -> Posted:
    if where.secure:
        context = ssl_context or ssl.create_default_context()
        # Many servers close without TLS' close_notify; h11 tells a truncated reply.
        stream: Any = await anyio.connect_tcp(
            where.host, where.port, ssl_context=context, tls_standard_compatible=False
        )
    else:
        stream = await anyio.connect_tcp(where.host, where.port)
    async with stream:
        client = h11.Connection(h11.CLIENT)
        request = h11.Request(
            method="POST",
            target=where.target,
            headers=[
                ("Host", where.authority),
                ("User-Agent", USER_AGENT),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
                *headers,
            ],
        )
        await stream.send(client.send(request) + client.send(h11.Data(data=body)))
        end = client.send(h11.EndOfMessage())
        if end:
            await stream.send(end)
        return await _read_reply(stream, client)


async def _read_reply(stream: Any, client: h11.Connection) -> Posted:
    response: h11.Response | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                data = b""
            client.receive_data(data)
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
            size += len(event.data)
            if size > MAX_REPLY_BYTES:
                break  # enough: the rest is not read
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
        # an h11.InformationalResponse (100 Continue): the real one follows
    if response is None:
        return Posted(None, "the receiver closed the connection before answering", retry=True)
    return _outcome(response, b"".join(chunks), complete=size <= MAX_REPLY_BYTES)


def _outcome(response: h11.Response, body: bytes, *, complete: bool) -> Posted:
    status = response.status_code
    if 200 <= status < 300:
        return Posted(status, reply=reply_text(body) if complete else None)
    error = f"HTTP {status}"
    if status in RETRY_STATUSES:
        return Posted(status, error, retry=True, retry_after=_retry_after(response))
    return Posted(status, error)


def _retry_after(response: h11.Response) -> float | None:
    """A Retry-After in seconds (an HTTP date is not honoured: the backoff is used)."""
    for name, value in response.headers:
        if name == b"retry-after":
            try:
                return min(max(float(value), 0.0), MAX_RETRY_AFTER)
            except ValueError:
                return None
    return None


def reply_text(body: bytes) -> str | None:
    """The ``text`` of a reply that is a JSON object with a non-blank string ``text``
    (Mattermost's and Slack's outgoing hook reply); None for anything else."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    return text
