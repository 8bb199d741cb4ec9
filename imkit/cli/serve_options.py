"""The value checks of ``imkit serve``'s own options (networks, origins, connect rates,
listen addresses): they use the server's parsers, which the commands that only talk to
a server must not import (imkit.cli.options is shared by all)."""

from __future__ import annotations

from typing import Any

import click

from imkit.rules.rooms import room_problem
from imkit.transport.limits import parse_connect_rate
from imkit.transport.listener import parse_address, parse_network


def networks(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for value in values:
        try:
            parse_network(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an address or a network") from None
    return values


def web_origins(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    from imkit.web.http import origin_key

    for value in values:
        if origin_key(value) is None:
            raise click.BadParameter(f"{value!r} is not an origin such as https://chat.example.org")
    return values


class ConnectRate(click.ParamType[tuple[int, float]]):
    """``N/PERIOD`` (``32/10m``; PERIOD in s, m, h or d) as (N, seconds); ``0``: (0, 0.0)."""

    name = "n/period"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, float]:
        try:
            return parse_connect_rate(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class ListenAddress(click.types.StringParamType):
    """``HOST:PORT`` to listen on (``[IPv6]:PORT``; port 0 picks a free one)."""

    name = "host:port"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text: str = super().convert(value, param, ctx)
        try:
            parse_address(text)
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return text


class RoomName(click.ParamType[str]):
    """A room's name (``--lobby``): ``#`` and 1 to 50 letters, digits, ``-_.``."""

    name = "#ROOM"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        problem = room_problem(text)
        if problem is not None:
            self.fail(f"{text!r}: {problem}", param, ctx)
        return text
