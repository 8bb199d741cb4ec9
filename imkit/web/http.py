"""The web port's HTTP: the page's files, the upgrade of ``/ws`` to a WebSocket, and
incoming webhooks' ``POST /hooks/KEY`` (:mod:`imkit.web.hooks`; a ``--hooks`` port
serves only those: no page, no WebSocket).

h11 reads the requests and writes the responses (keep-alive included); wsproto checks
the WebSocket handshake and writes its answer. A connection serves files until it asks
for ``/ws`` (then it becomes a chat connection) or closes. Only the files shipped in
``imkit/web/static`` are served, from memory: a path that is not one of their names is
404, so no path can reach anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http
import importlib.resources
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request
from wsproto.utilities import RemoteProtocolError

from imkit.rules.hook_payloads import MAX_BODY, HookReply
from imkit.transport.links import LINK_ERRORS, Link
from imkit.web.hooks import (
    HookReceiver,
    declared_length,
    hook_key,
    is_hook_path,
    read_body,
)
from imkit.web.link import WebSocketLink

log = logging.getLogger("imkit.server")

WS_PATH = "/ws"
# A request (or the next one on a kept-alive connection) must come within this long.
REQUEST_TIMEOUT = 10.0
# After the last response: end our side, let the client read it (TLS: close_notify).
CLOSE_LINGER = 1.0
# Requests served on one connection before it is closed.
MAX_REQUESTS = 100

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
# The page loads only its own files and talks only to its own server.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
]


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: bytes
    etag: bytes


def load_static() -> dict[str, StaticFile]:
    """The page's files by request path (``/`` is ``index.html``), read once."""
    files: dict[str, StaticFile] = {}
    folder = importlib.resources.files("imkit.web") / "static"
    for entry in folder.iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        if not entry.is_file() or suffix not in CONTENT_TYPES or name.startswith("."):
            continue
        body = entry.read_bytes()
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        files["/" + name] = StaticFile(body, CONTENT_TYPES[suffix].encode(), etag)
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]`` as (scheme, host, port), the default port filled in;
    None when it is not an http(s) origin."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class WebConfig:
    """What the web port serves and whom it lets open a WebSocket."""

    static: dict[str, StaticFile]
    origins: frozenset[tuple[str, str, int]]  # --web-origin, besides the page's own
    secure: bool  # TLS: the page's origin is https
    line_limit: int  # the JSON line limit for --max-line
    request_timeout: float = REQUEST_TIMEOUT  # for each request and its response
    hooks: HookReceiver | None = None  # POST /hooks/KEY; None: not served
    page: bool = True  # False: a --hooks port, serving only /hooks/KEY


async def serve_http(link: Link, addr: str, config: WebConfig) -> WebSocketLink | None:
    """Serve requests on ``link`` until one upgrades to a WebSocket (returned) or the
    connection ends (None; the link is closed then)."""
    conn = h11.Connection(h11.SERVER)
    try:
        for _ in range(MAX_REQUESTS):
            # Each exchange, the request and its response, within the request timeout: a
            # client that sends nothing, or never reads, is closed.
            request: h11.Request | None = None
            with anyio.move_on_after(config.request_timeout):
                request = await _next_request(link, conn)
            if request is None:
                break
            if config.hooks is not None and is_hook_path(request.target):
                going_on = False
                with anyio.move_on_after(config.request_timeout):
                    going_on = await _serve_hook(link, conn, request, config.hooks)
                if not going_on or conn.our_state is not h11.DONE:
                    break
                conn.start_next_cycle()
                continue
            if not config.page:  # a --hooks port: nothing else
                await _send_simple(link, conn, 404, b"this port serves only /hooks/KEY\n")
                break
            if request.target.split(b"?", 1)[0] == WS_PATH.encode():
                with anyio.move_on_after(config.request_timeout):
                    ws = await _upgrade(link, addr, conn, request, config)
                    if ws is not None:
                        return ws
                break
            served = False
            with anyio.move_on_after(config.request_timeout):
                await _serve_file(link, conn, request, config)
                served = True
            if not served:
                break
            if conn.their_state is h11.SEND_BODY:  # a GET's empty body: read already
                conn.next_event()
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                break
            conn.start_next_cycle()
    except h11.RemoteProtocolError as error:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            status = error.error_status_hint
            await _send_simple(link, conn, status, f"{error}\n".encode(), close=True)
    except (h11.LocalProtocolError, *LINK_ERRORS):
        pass
    await link.aclose(CLOSE_LINGER)
    return None


async def _next_request(link: Link, conn: h11.Connection) -> h11.Request | None:
    """The next request's head (its body, if any, is never read)."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await link.receive()
            conn.receive_data(data)
            if not data and conn.their_state is h11.IDLE:
                return None  # closed between requests
            continue
        if isinstance(event, h11.Request):
            return event
        return None  # ConnectionClosed, or a body where none is read


async def _send_all(link: Link, data: bytes) -> None:
    while data:
        data = data[await link.write(data) :]


async def _send_simple(
    link: Link,
    conn: h11.Connection,
    status: int,
    body: bytes,
    *,
    close: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    if close:
        headers.append((b"connection", b"close"))
    data = (
        conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status))) or b""
    )
    data += conn.send(h11.Data(data=body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await _send_all(link, data)


async def _serve_file(
    link: Link, conn: h11.Connection, request: h11.Request, config: WebConfig
) -> None:
    method = request.method
    if method not in (b"GET", b"HEAD"):
        allow = [(b"allow", b"GET, HEAD")]
        await _send_simple(link, conn, 405, b"method not allowed\n", close=True, extra=allow)
        return
    path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
    file = config.static.get(path)
    if file is None:
        await _send_simple(link, conn, 404, b"not found\n")
        return
    headers = [
        (b"content-type", file.content_type),
        (b"cache-control", b"no-cache"),
        (b"etag", file.etag),
        *SECURITY_HEADERS,
    ]
    if any(n == b"if-none-match" and file.etag in v for n, v in request.headers):
        data = (
            conn.send(h11.Response(status_code=304, headers=headers, reason=b"Not Modified")) or b""
        )
        data += conn.send(h11.EndOfMessage()) or b""
        await _send_all(link, data)
        return
    headers.append((b"content-length", str(len(file.body)).encode()))
    data = conn.send(h11.Response(status_code=200, headers=headers, reason=b"OK")) or b""
    if method == b"GET":
        data += conn.send(h11.Data(data=file.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await _send_all(link, data)


async def _serve_hook(
    link: Link, conn: h11.Connection, request: h11.Request, receiver: HookReceiver
) -> bool:
    """``POST /hooks/KEY``: the body read (bounded), the receiver's reply sent; False
    when the connection must end after it (a body over the limit is not read)."""
    if request.method != b"POST":
        allow = [(b"allow", b"POST")]
        await _send_simple(link, conn, 405, b"a hook takes POST\n", close=True, extra=allow)
        return False
    too_large = f"the body is over the limit of {MAX_BODY} bytes\n".encode()
    length = declared_length(request)
    if length is not None and length > MAX_BODY:
        await _send_simple(link, conn, 413, too_large, close=True)
        return False
    if conn.they_are_waiting_for_100_continue:  # curl asks before a body over 1 KiB
        going_on = h11.InformationalResponse(status_code=100, headers=[])
        await _send_all(link, conn.send(going_on) or b"")
    body = await read_body(link, conn)
    if body is None:
        await _send_simple(link, conn, 413, too_large, close=True)
        return False
    key = hook_key(request.target)
    if key is None:
        reply = HookReply(404, "no such hook")
    else:
        reply = await receiver.receive(key, body, _header(request, b"content-type"))
    extra = []
    if reply.retry_after is not None:
        extra.append((b"retry-after", str(reply.retry_after).encode()))
    if reply.msgid is not None:
        extra.append((b"x-imkit-msgid", reply.msgid.encode()))
    await _send_simple(link, conn, reply.status, f"{reply.reason}\n".encode(), extra=extra)
    return True


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:  # pragma: no cover - only known statuses are sent
        return b""


def _header(request: h11.Request, name: bytes) -> str | None:
    for key, value in request.headers:
        if key == name:
            return str(value.decode("latin-1"))
    return None


# Headers a handshake is decided on that may come once: with two, which one counts
# would be up to each reader (a proxy in front may check the other Origin than imkit).
_ONCE = {b"origin": "Origin", b"sec-websocket-key": "Sec-WebSocket-Key"}


def _repeated(request: h11.Request) -> str | None:
    """Why a handshake that repeats a header of :data:`_ONCE` is refused; None if none is
    repeated. (h11 refuses a second Host or Content-Length itself.)"""
    for name, shown in _ONCE.items():
        if sum(1 for key, _ in request.headers if key == name) > 1:
            return f"two {shown} headers: a WebSocket handshake has at most one"
    return None


def origin_allowed(request: h11.Request, config: WebConfig) -> bool:
    """The page's own origin (its Host, http or https as the port serves), one of
    --web-origin, or no Origin at all (not a browser: no visitor's browser to abuse).
    Never two Origins: a browser sends one (RFC 6454), and the second could be anyone."""
    origins = [value for key, value in request.headers if key == b"origin"]
    if len(origins) > 1:
        return False
    origin = _header(request, b"origin")
    if origin is None:
        return True
    key = origin_key(origin)
    if key is None:
        return False  # "null" (a sandboxed or local page), or not http(s)
    if key in config.origins:
        return True
    host = _header(request, b"host")
    if host is None:
        return False
    # The page's own host and port, by either scheme: TLS may end at a proxy in front
    # (the browser says https, imkit sees http). The host is what keeps other sites out.
    schemes = ("https", "http") if config.secure else ("http", "https")
    return any(origin_key(f"{scheme}://{host}") == key for scheme in schemes)


def _handshake_problem(request: h11.Request) -> str | None:
    """What is wrong with a WebSocket handshake that wsproto would let through: a body
    (whose bytes would be read as frames), a key that is not 16 bytes in base64."""
    if _header(request, b"content-length") not in (None, "0"):
        return "a WebSocket handshake has no body"
    if _header(request, b"transfer-encoding") is not None:
        return "a WebSocket handshake has no body"
    key = _header(request, b"sec-websocket-key")
    if key is not None:
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                return "Sec-WebSocket-Key is not 16 bytes in base64"
        except (ValueError, binascii.Error):
            return "Sec-WebSocket-Key is not base64"
    return None


async def _upgrade(
    link: Link, addr: str, conn: h11.Connection, request: h11.Request, config: WebConfig
) -> WebSocketLink | None:
    """Answer ``/ws``: a WebSocket (its 101 sent), or an error response and None."""
    if request.method != b"GET":
        allow = [(b"allow", b"GET")]
        await _send_simple(link, conn, 405, b"method not allowed\n", close=True, extra=allow)
        return None
    repeated = _repeated(request)
    if repeated is not None:
        log.info(
            "%s: WebSocket refused: %s",
            addr,
            repeated,
            extra={"event": "web_handshake_refused", "addr": addr, "reason": repeated},
        )
        await _send_simple(link, conn, 400, f"{repeated}\n".encode(), close=True)
        return None
    if not origin_allowed(request, config):
        origin = _header(request, b"origin")
        log.info(
            "%s: WebSocket refused: origin %s is not allowed",
            addr,
            origin,
            extra={"event": "web_origin_refused", "addr": addr, "origin": origin},
        )
        body = b"this origin may not open a chat connection (see --web-origin)\n"
        await _send_simple(link, conn, 403, body, close=True)
        return None
    problem = _handshake_problem(request)
    if problem is not None:
        await _send_simple(link, conn, 400, f"{problem}\n".encode(), close=True)
        return None
    # wsproto checks the handshake itself: the request again, as h11 writes it, and what
    # the client sent after it.
    ws = WSConnection(ConnectionType.SERVER)
    trailing = conn.trailing_data[0]
    try:
        head = h11.Connection(h11.CLIENT).send(request) or b""
        ws.receive_data(head + trailing)
        events = list(ws.events())
    except (RemoteProtocolError, h11.LocalProtocolError) as error:
        events, problem = [], str(error)
    else:
        problem = "not a WebSocket handshake"
    if not events or not isinstance(events[0], Request):
        upgrade = [(b"upgrade", b"websocket"), (b"sec-websocket-version", b"13")]
        await _send_simple(link, conn, 426, f"{problem}\n".encode(), close=True, extra=upgrade)
        return None
    await _send_all(link, ws.send(AcceptConnection()))
    return WebSocketLink(link, ws, line_limit=config.line_limit)
