"""The ``imkit`` command: parse options, call anyio.run, map errors to exit codes.

One module a group of commands, each thin: ``serve`` (serve.py, its value checks in
serve_options.py); ``chat`` and ``send`` (clients.py); ``who``, ``kick``, ``stats`` and
``history`` (server_admin.py); ``ban``, ``mute`` and the like (ban_mute.py); ``rooms``
and ``room`` (rooms.py); ``account`` (account.py); ``bench``. What they share (options
from ``IMKIT_*`` variables, value checks, exit statuses) is in options.py.

A command's module is imported only when that command runs (:data:`COMMANDS`), so
``imkit send`` loads the client and never the server, its hub or its store.
"""

from __future__ import annotations

import click

from imkit import __version__
from imkit.cli.options import ImkitGroup

__all__ = ["COMMANDS", "main"]

# Each command: the module that defines it and its function's name, in --help's order.
COMMANDS = {
    "serve": "imkit.cli.serve:serve",
    "chat": "imkit.cli.clients:chat",
    "send": "imkit.cli.clients:send",
    "who": "imkit.cli.server_admin:who",
    "kick": "imkit.cli.server_admin:kick",
    "stats": "imkit.cli.server_admin:stats",
    "history": "imkit.cli.server_admin:history",
    "ban": "imkit.cli.ban_mute:ban",
    "unban": "imkit.cli.ban_mute:unban",
    "bans": "imkit.cli.ban_mute:bans",
    "mute": "imkit.cli.ban_mute:mute",
    "unmute": "imkit.cli.ban_mute:unmute",
    "rooms": "imkit.cli.rooms:rooms",
    "room": "imkit.cli.rooms:room",
    "account": "imkit.cli.account:account",
    "hook": "imkit.cli.hooks:hook",
    "bench": "imkit.cli.bench:bench",
}


@click.group(
    cls=ImkitGroup,
    commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "-V", "--version", prog_name="imkit")
def main() -> None:
    """imkit: a small chat server and its clients, over the IM-System line protocol."""
