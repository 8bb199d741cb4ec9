"""``imkit bench``: load-test a running server."""

from __future__ import annotations

import json
import sys
from functools import partial

import anyio
import click

from imkit.cli.options import TEXT, Bounded, loop_options, option
from imkit.client.output import write_line
from imkit.protocol import DEFAULT_PORT
from imkit.system import raise_open_file_limit


@click.command(short_help="Load-test a running server: deliveries/s and latency.")
@option("--host", type=TEXT, default="127.0.0.1", help="Server address.")
@option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, help="Server port.")
@option(
    "--password",
    type=TEXT,
    nonempty=True,
    default=None,
    show_default=False,
    help="The server's password.",
)
@option(
    "--scenario",
    type=click.Choice(["broadcast", "private"]),
    default="broadcast",
    help="broadcast: lines to everyone; private: pairs writing to each other.",
)
@option("--clients", type=click.IntRange(2, 50_000), default=100, help="Connections to open.")
@option(
    "--senders",
    type=click.IntRange(min=1),
    default=1,
    help="broadcast: how many of the clients send (closed loop).",
)
@option(
    "--duration",
    type=Bounded(0.1, 3600),
    default=10.0,
    metavar="SECONDS",
    help="How long the senders send (0.1 to 3600).",
)
# Not read from IMKIT_WEB: that is `imkit serve --web`'s, and must not switch the bench.
@click.option(
    "--web",
    "web_url",
    type=TEXT,
    default=None,
    metavar="URL",
    help="Connect over WebSocket to `imkit serve --web` instead of --host/--port: "
    "ws://HOST:PORT/ws (or HOST:PORT). Clients speak JSON, one message per frame.",
)
@option(
    "--json-lines",
    is_flag=True,
    help="Speak JSON Lines on the chat port (as imkit's own clients do) instead of text.",
)
@option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench(
    host: str,
    port: int,
    web_url: str | None,
    json_lines: bool,
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

    With --web the clients are WebSocket clients of `imkit serve --web` (as the web
    page is), with --json-lines JSON Lines clients of the chat port; the scenarios and
    figures are the same.

    \b
    Exit status: 0 measured; 2 usage error; 3 could not connect; 4 standard output
    could not be written; 141 it was closed by its reader.
    """
    from imkit.client import bench as load

    if scenario == "broadcast" and senders > clients:
        raise click.UsageError("--senders cannot exceed --clients")
    if web_url is not None:
        if json_lines:
            raise click.UsageError("--json-lines is for the chat port; --web is JSON already")
        try:
            target = load.parse_web_url(web_url)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--web") from None
    else:
        target = load.Target(host, port, "json" if json_lines else "text")
    raise_open_file_limit(clients)
    measure = partial(
        load.run_bench,
        target,
        scenario=scenario,
        clients=clients,
        senders=senders,
        duration=duration,
        password=password,
        progress=load.print_progress,
    )
    results = anyio.run(measure, backend="asyncio", backend_options=loop_options("auto"))
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    if as_json:
        write_line(json.dumps(results.summary(), indent=2))
    else:
        write_line(load.format_report(results))
