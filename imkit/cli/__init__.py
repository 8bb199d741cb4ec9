"""The ``imkit`` command: parse options, call anyio.run, map errors to exit codes.

One module a group of commands, each thin: ``serve``; ``chat`` and ``send``
(clients.py); ``who``, ``kick``, ``stats`` and ``history`` (admin.py); ``ban``,
``mute`` and the like (moderation.py); ``account`` (account.py); ``bench``. What
they share (options from ``IMKIT_*`` variables, value checks, exit statuses) is in
options.py.
"""

from __future__ import annotations

import click

from imkit import __version__
from imkit.cli.account import account
from imkit.cli.admin import history, kick, stats, who
from imkit.cli.bench import bench
from imkit.cli.clients import chat, send
from imkit.cli.moderation import ban, bans, mute, unban, unmute
from imkit.cli.options import ImkitGroup
from imkit.cli.serve import serve

__all__ = ["main"]


@click.group(cls=ImkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="imkit")
def main() -> None:
    """imkit: a small chat server and its clients, over the IM-System line protocol."""


for command in (
    serve,
    chat,
    send,
    who,
    kick,
    stats,
    history,
    ban,
    unban,
    bans,
    mute,
    unmute,
    account,
    bench,
):
    main.add_command(command)
