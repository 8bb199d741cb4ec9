"""The ``imkit`` command: parse options, call anyio.run, map errors to exit codes.

Exit codes: 0 success; 1 the server refused something or could not start; 2 usage
error; 3 could not reach a server (or the connection was lost).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import click

from imkit import __version__
from imkit.errors import ServeError
from imkit.hub import DEFAULT_MAX_QUEUE
from imkit.protocol import DEFAULT_MAX_LINE
from imkit.server import DEFAULT_IDLE_TIMEOUT, DEFAULT_PORT, ServerConfig

EXIT_UNREACHABLE = 3

F = TypeVar("F", bound=Callable[..., Any])


def _option(*names: str, **kwargs: Any) -> Callable[[F], F]:
    """A click option also read from IMKIT_<NAME> (--idle-timeout: IMKIT_IDLE_TIMEOUT).

    click's auto_envvar_prefix would name variables after the subcommand
    (IMKIT_SERVE_PORT); every option names its variable explicitly instead.
    """
    long_name = next(n for n in names if n.startswith("--"))
    envvar = "IMKIT_" + long_name[2:].split("/")[0].replace("-", "_").upper()
    kwargs.setdefault("show_default", True)
    kwargs.setdefault("show_envvar", True)
    return click.option(*names, envvar=envvar, **kwargs)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="imkit")
def main() -> None:
    """imkit: a small chat server and its clients, over the IM-System line protocol."""


@main.command()
@_option("--host", default="127.0.0.1", help="Address to listen on.")
@_option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    help="TCP port; 0 picks a free one.",
)
@_option(
    "--idle-timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_IDLE_TIMEOUT,
    metavar="SECONDS",
    help="Disconnect a client that sends no line for this long; 0 never does.",
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
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    help="How much to log on stderr.",
)
def serve(
    host: str, port: int, idle_timeout: float, max_line: int, max_queue: int, log_level: str
) -> None:
    """Run the chat server (text and JSON Lines on one port)."""
    from imkit.server import run

    _configure_logging(log_level)
    config = ServerConfig(
        host=host, port=port, idle_timeout=idle_timeout, max_line=max_line, max_queue=max_queue
    )
    try:
        anyio.run(run, config, backend="asyncio")
    except ServeError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        sys.exit(130)
