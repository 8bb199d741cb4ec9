"""What every imkit command shares: options read from IMKIT_* variables, the checks on
their values, and the map from imkit's errors to one line on stderr and an exit status.

Exit codes: 0 success; 1 the server refused something or could not start; 2 usage
error; 3 could not reach a server (or the connection was lost); 4 standard output could
not be written; 141 its reader went away (quietly, as if killed by SIGPIPE).
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from imkit.client.output import EXIT_BROKEN_PIPE, discard_output
from imkit.errors import (
    AdminUnavailable,
    ConnectError,
    ImkitError,
    OutputClosed,
    OutputError,
)
from imkit.protocol.codes import DEFAULT_PORT
from imkit.rules.bans import parse_duration

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


def option(*names: str, nonempty: bool = False, **kwargs: Any) -> Callable[[F], F]:
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
        kwargs["callback"] = partial(refuse_empty, long_name, envvar)
    return click.option(*names, envvar=envvar, **kwargs)


def refuse_empty(
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


class Bounded(click.types.FloatParamType):
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
            span = f"{_as_written(self.low)} to {_as_written(self.high)}"
            self.fail(f"{value} is not {either}{span}", param, ctx)
        return number


def _as_written(value: float) -> str:
    """1,000,000 and 0.01, as a person writes them."""
    return f"{value:,.0f}" if value.is_integer() else f"{value:g}"


class Text(click.types.StringParamType):
    """Text that will be sent. Python decodes argv bytes that are not UTF-8 to lone
    surrogates, which only fail later, when the text is encoded to be sent."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text: str = super().convert(value, param, ctx)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("not valid UTF-8", param, ctx)  # the value itself: maybe a secret
        return text


TEXT = Text()


def innermost(error: BaseException) -> BaseException:
    """The exception that ended a command, out of (nested) task-group exception groups;
    an output error first, since it makes everything after it moot."""
    while isinstance(error, BaseExceptionGroup):
        error = (error.subgroup(OutputError) or error).exceptions[0]
    return error


@contextmanager
def exit_codes() -> Iterator[None]:
    """Map imkit's errors to one line on stderr and the documented exit status."""
    try:
        try:
            yield
        except BaseExceptionGroup as group:  # from a task group (chat prints from a task)
            raise innermost(group) from None
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


class ImkitGroup(click.Group):
    """The imkit group: every subcommand runs under :func:`exit_codes`, and is imported
    only when it is asked for (click's lazy group: ``commands`` maps each name to
    ``"module:function"``)."""

    def __init__(self, *args: Any, commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        where = self.lazy.get(name)
        if where is None:
            return None
        module, function = where.split(":")
        command = getattr(importlib.import_module(module), function)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        with exit_codes():
            return super().invoke(ctx)


def client_options(func: F) -> F:
    """--host, --port (as for serve), --tls, --cafile and --password."""
    func = option(
        "--password",
        type=TEXT,
        nonempty=True,
        default=None,
        show_default=False,
        help="The server's password (prefer IMKIT_PASSWORD: a flag shows in ps).",
    )(func)
    func = option(
        "--cafile",
        type=click.Path(dir_okay=False),
        nonempty=True,
        default=None,
        help="Trust this CA (PEM) for the server's certificate; implies --tls.",
    )(func)
    func = option("--tls", is_flag=True, help="Connect with TLS, verifying the certificate.")(func)
    func = option(
        "--port",
        type=click.IntRange(1, 65535),
        default=DEFAULT_PORT,
        help="Server port.",
    )(func)
    return option("--host", type=TEXT, default="127.0.0.1", help="Server address.")(func)


def loop_options(choice: str) -> dict[str, Any]:
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


LOG_FORMATS = ("text", "json")


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log on stderr: ``text``, a line for people (local time), or ``json``, one JSON
    object a line for a collector (:mod:`imkit.cli.logformat`)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from imkit.cli.logformat import JsonFormatter

        handler.setFormatter(JsonFormatter())
        logging.captureWarnings(True)  # a Python warning is one more JSON line too
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    logging.basicConfig(level=level.upper(), handlers=[handler])


class Duration(click.ParamType):  # type: ignore[type-arg]
    """``90s``, ``10m``, ``2h``, ``7d`` (or a sum such as ``1h30m``), in seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def password_from_stdin(what: str) -> str:
    """One line of standard input, its line ending removed, as a password
    (``--password-stdin``, ``--login-password-stdin``); ``what`` names it in errors.

    Only that line is read. Empty, missing, or not valid UTF-8: a usage error.
    """
    if sys.stdin is None:  # started with <&-
        raise Usage(f"standard input is closed: there is no {what} to read")
    raw = sys.stdin.buffer.readline()
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    if not raw:
        raise Usage(f"no {what} on standard input: its first line is empty")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Usage(f"the {what} on standard input is not valid UTF-8") from None


def ask_password(prompt: str, *, confirm: bool = False) -> str:
    """A password typed without echo (on the terminal when there is one); with
    ``confirm``, typed twice. Empty, or two that differ: a usage error."""
    try:
        first: str = click.prompt(prompt, hide_input=True, default="", show_default=False)
        if not first:
            raise Usage("the password is empty")
        if confirm:
            again: str = click.prompt(
                "The same again", hide_input=True, default="", show_default=False
            )
            if again != first:
                raise Usage("the two passwords differ")
    except click.Abort:  # Ctrl-C, Ctrl-D, or no input at all
        raise Usage("no password was given") from None
    return first
