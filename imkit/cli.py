"""The ``imkit`` command: parse options, call anyio.run, map errors to exit codes.

Exit codes: 0 success; 1 the server refused something or could not start; 2 usage
error; 3 could not reach a server (or the connection was lost); 4 standard output could
not be written; 141 its reader went away (quietly, as if killed by SIGPIPE).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click
from click.core import ParameterSource

from imkit import __version__
from imkit.errors import (
    AdminUnavailable,
    ConnectError,
    Disconnected,
    ImkitError,
    OutputClosed,
    OutputError,
    ServeError,
)
from imkit.hub import DEFAULT_MAX_QUEUE
from imkit.output import EXIT_BROKEN_PIPE, discard_output, write_line
from imkit.protocol import DEFAULT_MAX_LINE
from imkit.server import (
    DEFAULT_BURST,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_PORT,
    DEFAULT_RATE,
    ServerConfig,
    parse_network,
    raise_open_file_limit,
)
from imkit.server import run as run_server

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NO_OUTPUT = 4

DAY = 24 * 3600.0

F = TypeVar("F", bound=Callable[..., Any])


class Refused(click.ClickException):
    """The server (or the admin socket) said no: one line on stderr, exit 1."""

    exit_code = EXIT_REFUSED


class Usage(click.ClickException):
    """A usage error in one line (click's own UsageError adds the usage lines): exit 2."""

    exit_code = EXIT_USAGE


class NoServer(click.ClickException):
    """No server could be reached, or the connection was lost: exit 3."""

    exit_code = EXIT_UNREACHABLE


class NoOutput(click.ClickException):
    """Standard output could not be written: exit 4."""

    exit_code = EXIT_NO_OUTPUT


def _option(*names: str, nonempty: bool = False, **kwargs: Any) -> Callable[[F], F]:
    """A click option also read from IMKIT_<NAME> (--idle-timeout: IMKIT_IDLE_TIMEOUT).

    click's auto_envvar_prefix would name variables after the subcommand
    (IMKIT_SERVE_PORT); every option names its variable explicitly instead.
    ``nonempty`` (for secrets and paths) refuses an empty value, given or inherited.
    """
    long_name = next(n for n in names if n.startswith("--"))
    envvar = "IMKIT_" + long_name[2:].split("/")[0].replace("-", "_").upper()
    kwargs.setdefault("show_default", True)
    kwargs.setdefault("show_envvar", True)
    if nonempty:
        kwargs["callback"] = partial(_refuse_empty, long_name, envvar)
    return click.option(*names, envvar=envvar, **kwargs)


def _refuse_empty(
    option: str, envvar: str, ctx: click.Context, param: click.Parameter, value: Any
) -> Any:
    # An empty secret or path is a mistake (often a variable that a systemd unit or a
    # script left empty), and would otherwise quietly mean "none": for --password, a
    # server anyone can use. click reads an empty variable as unset: look at it here.
    source = ctx.get_parameter_source(param.name or "")
    inherited = os.environ.get(envvar) == "" and source is ParameterSource.DEFAULT
    if value == "" or inherited:
        raise Usage(f"{option} / {envvar} is set but empty: give it a value, or unset it")
    return value


class _Bounded(click.types.FloatParamType):
    """A number from ``low`` to ``high`` (or 0, when ``zero`` says it means "off").

    click's FloatRange lets nan through (every comparison with nan is false); inf and
    values like 1e-9 are accepted by it too, and are never what a person meant.
    """

    def __init__(self, low: float, high: float, *, zero: bool = False) -> None:
        self.low, self.high, self.zero = float(low), float(high), zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        number = super().convert(value, param, ctx)
        if number == 0 and self.zero:
            return 0.0
        if not (math.isfinite(number) and self.low <= number <= self.high):
            either = "0 or " if self.zero else ""
            span = f"{_number(self.low)} to {_number(self.high)}"
            self.fail(f"{value} is not {either}{span}", param, ctx)
        return number


def _number(value: float) -> str:
    """1,000,000 and 0.01, as a person writes them."""
    return f"{value:,.0f}" if value.is_integer() else f"{value:g}"


class _Text(click.types.StringParamType):
    """Text that will be sent. Python decodes argv bytes that are not UTF-8 to lone
    surrogates, which only fail later, when the text is encoded to be sent."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text: str = super().convert(value, param, ctx)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("not valid UTF-8", param, ctx)  # the value itself: maybe a secret
        return text


TEXT = _Text()


def _innermost(error: BaseException) -> BaseException:
    """The exception that ended a command, out of (nested) task-group exception groups;
    an output error first, since it makes everything after it moot."""
    while isinstance(error, BaseExceptionGroup):
        error = (error.subgroup(OutputError) or error).exceptions[0]
    return error


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Map imkit's errors to one line on stderr and the documented exit status."""
    try:
        try:
            yield
        except BaseExceptionGroup as group:  # from a task group (chat prints from a task)
            raise _innermost(group) from None
    except OutputClosed:
        discard_output()
        sys.exit(EXIT_BROKEN_PIPE)  # quietly, as a tool killed by SIGPIPE
    except OutputError as error:
        discard_output()
        raise NoOutput(str(error)) from None
    except (ConnectError, AdminUnavailable) as error:
        raise NoServer(str(error)) from None
    except ImkitError as error:
        raise Refused(str(error)) from None
    except KeyboardInterrupt:
        sys.exit(130)


class _Imkit(click.Group):
    """The imkit group: every subcommand runs under :func:`_exit_codes`."""

    def invoke(self, ctx: click.Context) -> Any:
        with _exit_codes():
            return super().invoke(ctx)


def _networks(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for value in values:
        try:
            parse_network(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an address or a network") from None
    return values


def _client_options(func: F) -> F:
    """--host, --port (as for serve), --tls, --cafile and --password."""
    func = _option(
        "--password",
        type=TEXT,
        nonempty=True,
        default=None,
        show_default=False,
        help="The server's password (prefer IMKIT_PASSWORD: a flag shows in ps).",
    )(func)
    func = _option(
        "--cafile",
        type=click.Path(dir_okay=False),
        nonempty=True,
        default=None,
        help="Trust this CA (PEM) for the server's certificate; implies --tls.",
    )(func)
    func = _option("--tls", is_flag=True, help="Connect with TLS, verifying the certificate.")(func)
    func = _option(
        "--port",
        type=click.IntRange(1, 65535),
        default=DEFAULT_PORT,
        help="Server port.",
    )(func)
    return _option("--host", type=TEXT, default="127.0.0.1", help="Server address.")(func)


def _loop_options(choice: str) -> dict[str, Any]:
    """anyio's asyncio options for --event-loop (uvloop measured 5-15 % faster)."""
    if choice == "asyncio":
        return {}
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if choice == "uvloop":
            raise click.UsageError("--event-loop uvloop: uvloop is not installed") from None
        return {}
    return {"use_uvloop": True}


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )


@click.group(cls=_Imkit, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="imkit")
def main() -> None:
    """imkit: a small chat server and its clients, over the IM-System line protocol."""


@main.command(short_help="Run the chat server.")
@_option("--host", type=TEXT, default="127.0.0.1", help="Address to listen on.")
@_option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    help="TCP port; 0 picks a free one.",
)
@_option(
    "--idle-timeout",
    type=_Bounded(0.1, 30 * DAY, zero=True),
    default=DEFAULT_IDLE_TIMEOUT,
    metavar="SECONDS",
    help="Disconnect a client that sends no line for this long (0.1 s to 30 days, "
    "2592000); 0 never does.",
)
@_option(
    "--max-line",
    type=click.IntRange(min=64, max=16 * 1024 * 1024),
    default=DEFAULT_MAX_LINE,
    metavar="BYTES",
    help="Longest line a client may send.",
)
@_option(
    "--max-queue",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_QUEUE,
    metavar="BYTES",
    help="Unsent bytes per client before it is dropped as a slow consumer.",
)
@_option(
    "--max-clients",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CLIENTS,
    metavar="N",
    help="Connections at once; one more is told the server is full.",
)
@_option(
    "--rate",
    type=_Bounded(0.01, 1_000_000, zero=True),
    default=DEFAULT_RATE,
    metavar="MSGS_PER_S",
    help="Lines a client may send per second (more are read later), 0.01 to 1000000; 0: no limit.",
)
@_option(
    "--burst",
    type=click.IntRange(min=1),
    default=DEFAULT_BURST,
    metavar="N",
    help="Lines a client may send at once before --rate applies.",
)
@_option(
    "--rate-exempt",
    multiple=True,
    metavar="ADDR",
    callback=_networks,
    help="Address or network (CIDR) that --rate does not apply to; repeatable.",
)
@_option(
    "--password",
    type=TEXT,
    nonempty=True,
    default=None,
    show_default=False,
    help="Clients must send it first (prefer IMKIT_PASSWORD: a flag shows in ps).",
)
@_option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    nonempty=True,
    default=None,
    help="Serve TLS: certificate chain (PEM).",
)
@_option(
    "--tls-key",
    type=click.Path(dir_okay=False),
    nonempty=True,
    default=None,
    help="Serve TLS: private key (PEM).",
)
@_option(
    "--admin-socket",
    type=click.Path(dir_okay=False),
    nonempty=True,
    default=None,
    show_default="$XDG_RUNTIME_DIR/imkit/admin-PORT.sock or /tmp/imkit-UID/admin-PORT.sock",
    help="Unix socket for imkit who, kick and stats.",
)
@_option(
    "--event-loop",
    type=click.Choice(["auto", "uvloop", "asyncio"], case_sensitive=False),
    default="auto",
    help="auto: uvloop when it is installed (faster), else asyncio.",
)
@_option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    help="How much to log on stderr.",
)
def serve(
    host: str,
    port: int,
    idle_timeout: float,
    max_line: int,
    max_queue: int,
    max_clients: int,
    rate: float,
    burst: int,
    rate_exempt: tuple[str, ...],
    password: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    admin_socket: str | None,
    event_loop: str,
    log_level: str,
) -> None:
    """Run the chat server (text and JSON Lines on one port).

    \b
    Exit status: 0 stopped by a signal (SIGTERM, SIGHUP, Ctrl-C); 1 could not start
    (port in use, bad TLS files, ...); 2 usage error (an option out of range, or set
    but empty).
    """
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    _configure_logging(log_level)
    config = ServerConfig(
        host=host,
        port=port,
        idle_timeout=idle_timeout,
        max_line=max_line,
        max_queue=max_queue,
        max_clients=max_clients,
        rate=rate,
        burst=burst,
        rate_exempt=rate_exempt,
        password=password,
        tls_cert=tls_cert,
        tls_key=tls_key,
        admin_socket=admin_socket,
    )

    options = _loop_options(event_loop)
    try:
        anyio.run(run_server, config, backend="asyncio", backend_options=options)
    except ServeError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        sys.exit(130)


@main.command(short_help="Chat in the terminal: public, private, rename, who.")
@_client_options
@_option(
    "--name", type=TEXT, metavar="NAME", default=None, help="Take this name right after connecting."
)
def chat(
    host: str,
    port: int,
    tls: bool,
    cafile: str | None,
    password: str | None,
    name: str | None,
) -> None:
    """Chat in the terminal: a menu for public and private chat, rename and who.

    Messages that arrive while you type are printed above your input line. Standard
    input may also be a pipe: menu choices and lines are then read from it.

    A line of piped input that is not valid UTF-8 is skipped, with a notice.

    \b
    Exit status:
      0    you left (0 in the menu, Ctrl-D, Ctrl-C)
      1    the server removed you (idle, kicked, shutting down)
      2    usage error (standard input is closed, an empty --password, ...)
      3    could not connect, or the connection was lost
      4    standard output could not be written
      141  standard output was closed by its reader (nothing on stderr)
    """
    from imkit import chat as chat_client

    if sys.stdin is None:  # started with <&-: Python then has no sys.stdin
        raise Usage("standard input is closed: imkit chat reads what to say from it")
    try:
        chat_client.main(host, port, name=name, tls=tls, cafile=cafile, password=password)
    except KeyboardInterrupt:
        return  # Ctrl-C outside a prompt: the person leaves, quietly
    except Disconnected as error:
        if error.reason is None:  # no bye: the server went away
            raise NoServer(f"connection lost: {error}") from None
        raise Refused(f"disconnected by the server: {error}") from None


@main.command(short_help="Send a message from a script; wait until it is accepted.")
@_option("--to", type=TEXT, metavar="NAME", default=None, help="Send privately to this user.")
@_option("--as", "as_name", type=TEXT, metavar="NAME", default=None, help="Take this name first.")
@_client_options
@_option(
    "--timeout",
    type=_Bounded(0.01, DAY),
    default=10.0,
    metavar="SECONDS",
    help="Give up connecting, or waiting for an acknowledgement, after this long "
    "(0.01 s to 1 day, 86400).",
)
@_option("-v", "--verbose", is_flag=True, help="Print each acknowledged message on stdout.")
@click.argument("message", type=TEXT, nargs=-1, required=True)
def send(
    to: str | None,
    as_name: str | None,
    host: str,
    port: int,
    tls: bool,
    cafile: str | None,
    password: str | None,
    timeout: float,
    verbose: bool,
    message: tuple[str, ...],
) -> None:
    """Send MESSAGE (its words joined by spaces) and wait for the server to accept it.

    A single - reads standard input and sends each non-empty line as one message; a
    line that is not valid UTF-8 stops it (the lines before it were sent).

    \b
    Exit status:
      0    every message was accepted
      1    the server refused one, or a line of input is not valid UTF-8 (the reason
           is on stderr; nothing after it is sent, everything before it was accepted)
      2    usage error (standard input is closed, an empty --password, ...)
      3    could not connect, timed out, or the connection was lost
      4    standard output (--verbose) could not be written
      141  standard output was closed by its reader (nothing on stderr)
    """
    from imkit.client import connect

    if "-" in message and len(message) > 1:
        raise click.UsageError("- (read standard input) must be the only MESSAGE")
    if message == ("-",) and sys.stdin is None:  # started with <&-
        raise Usage("standard input is closed: - has nothing to read")
    texts = _stdin_lines() if message == ("-",) else _one(" ".join(message))

    async def deliver() -> None:
        async with connect(
            host,
            port,
            name=as_name,
            password=password,
            tls=tls,
            cafile=cafile,
            timeout=timeout,
            events=False,
        ) as client:
            async for text in texts:
                await client.send(text, to=to)
                if verbose:
                    write_line(f"sent to {to or 'everyone'}: {text}")

    anyio.run(deliver, backend="asyncio")


async def _one(text: str) -> AsyncIterator[str]:
    yield text


async def _stdin_lines() -> AsyncIterator[str]:
    # Lines are sent as they arrive, so `tail -f log | imkit send -` works.
    from imkit.stdin import StdinLines

    lines = StdinLines()
    while (line := await lines.read()) is not None:
        if line:
            yield line


# ------------------------------------------------------------------- administration


def _admin_options(func: F) -> F:
    """Which server: --port (to find its default admin socket) or --admin-socket."""
    func = _option(
        "--admin-socket",
        type=click.Path(dir_okay=False),
        nonempty=True,
        default=None,
        show_default="derived from --port",
        help="The server's admin socket.",
    )(func)
    return _option(
        "--port",
        type=click.IntRange(1, 65535),
        default=DEFAULT_PORT,
        help="The server's port, to find its default admin socket.",
    )(func)


def _admin_request(port: int, admin_socket: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    from imkit import admin

    path = Path(admin_socket) if admin_socket else admin.default_path(port)
    return anyio.run(admin.request, path, payload, backend="asyncio")


def _duration(seconds: float) -> str:
    """5s, 4m05s, 2h03m, 3d04h: two units at most, for a table."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


@main.command(short_help="List who is online (through the admin socket).")
@_admin_options
@_option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def who(port: int, admin_socket: str | None, as_json: bool) -> None:
    """List the users online, in order of arrival: name, address, connected for, idle
    for, and mode (text or json).

    \b
    Exit status: 0 listed; 1 refused; 2 usage error; 3 no server answers on the admin
    socket; 4 standard output could not be written; 141 it was closed by its reader.
    """
    users = _admin_request(port, admin_socket, {"type": "who"})["users"]
    if as_json:
        write_line(json.dumps(users, ensure_ascii=False, indent=2))
        return
    rows = [
        [u["name"], u["addr"], _duration(u["connected_s"]), _duration(u["idle_s"]), u["mode"]]
        for u in users
    ]
    write_line(_table(["NAME", "ADDRESS", "CONNECTED", "IDLE", "MODE"], rows))


@main.command(short_help="Disconnect a user (through the admin socket).")
@click.argument("name", type=TEXT)
@_option("--reason", type=TEXT, metavar="TEXT", default=None, help="Told to the user.")
@_admin_options
def kick(name: str, reason: str | None, port: int, admin_socket: str | None) -> None:
    """Disconnect the user NAME, telling them an administrator removed them and why.

    \b
    Exit status: 0 kicked; 1 no such user is online; 2 usage error; 3 no server
    answers; 4 standard output could not be written; 141 it was closed by its reader.
    """
    payload = {"type": "kick", "name": name, "reason": reason}
    kicked = _admin_request(port, admin_socket, payload)["name"]
    write_line(f"kicked {kicked}")


_STATS_LABELS = {
    "uptime_s": "uptime",
    "users_online": "users online",
    "connections_now": "connections now",
    "connections_total": "connections total",
    "messages_received": "messages received",
    "messages_delivered": "messages delivered",
    "slow_consumers": "dropped as slow consumers",
    "idle_kicks": "idle kicks",
    "admin_kicks": "admin kicks",
    "refused_full": "refused: server full",
    "refused_unauthorized": "refused: wrong password",
    "backpressure_pauses": "readers held back",
    "backpressure_given_up": "clients not waited for",
}


@main.command(short_help="Show the server's counters (through the admin socket).")
@_admin_options
@_option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(port: int, admin_socket: str | None, as_json: bool) -> None:
    """Show uptime, connections now and in total, messages received and delivered,
    clients dropped as slow consumers, idle kicks and admin kicks.

    \b
    Exit status: 0 shown; 2 usage error; 3 no server answers on the admin socket;
    4 standard output could not be written; 141 it was closed by its reader.
    """
    reply = _admin_request(port, admin_socket, {"type": "stats"})
    del reply["type"]
    if as_json:
        write_line(json.dumps(reply, indent=2))
        return
    rows = []
    for key, label in _STATS_LABELS.items():
        value = reply.get(key, 0)
        shown = _duration(value) if key == "uptime_s" else f"{value:,}"
        rows.append([label, shown])
    write_line(_table(["COUNTER", "VALUE"], rows))


# ------------------------------------------------------------------------ benchmark


@main.command(short_help="Load-test a running server: deliveries/s and latency.")
@_option("--host", type=TEXT, default="127.0.0.1", help="Server address.")
@_option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, help="Server port.")
@_option(
    "--password",
    type=TEXT,
    nonempty=True,
    default=None,
    show_default=False,
    help="The server's password.",
)
@_option(
    "--scenario",
    type=click.Choice(["broadcast", "private"]),
    default="broadcast",
    help="broadcast: lines to everyone; private: pairs writing to each other.",
)
@_option("--clients", type=click.IntRange(2, 50_000), default=100, help="Connections to open.")
@_option(
    "--senders",
    type=click.IntRange(min=1),
    default=1,
    help="broadcast: how many of the clients send (closed loop).",
)
@_option(
    "--duration",
    type=_Bounded(0.1, 3600),
    default=10.0,
    metavar="SECONDS",
    help="How long the senders send (0.1 to 3600).",
)
@_option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench(
    host: str,
    port: int,
    password: str | None,
    scenario: str,
    clients: int,
    senders: int,
    duration: float,
    as_json: bool,
) -> None:
    """Connect CLIENTS clients to a running server, send closed-loop traffic for
    DURATION seconds while showing progress on stderr, then print deliveries per
    second and latency percentiles.

    The server's --rate limit applies to these clients too: run it with
    --rate-exempt for this host (or --rate 0) to measure the server, not the limit.

    \b
    Exit status: 0 measured; 2 usage error; 3 could not connect; 4 standard output
    could not be written; 141 it was closed by its reader.
    """
    from imkit import bench as load

    if scenario == "broadcast" and senders > clients:
        raise click.UsageError("--senders cannot exceed --clients")
    raise_open_file_limit(clients)
    measure = partial(
        load.run_bench,
        host,
        port,
        scenario=scenario,
        clients=clients,
        senders=senders,
        duration=duration,
        password=password,
        progress=load.print_progress,
    )
    results = anyio.run(measure, backend="asyncio", backend_options=_loop_options("auto"))
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    if as_json:
        write_line(json.dumps(results.summary(), indent=2))
    else:
        write_line(load.format_report(results))
