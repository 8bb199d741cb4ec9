"""``imkit chat`` and ``imkit send``: the clients for people and for scripts."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

import anyio
import click

from imkit.cli.options import (
    DAY,
    TEXT,
    Bounded,
    NoServer,
    Refused,
    Usage,
    ask_password,
    client_options,
    option,
    password_from_stdin,
)
from imkit.client.output import write_line
from imkit.errors import Disconnected, ImkitError, ServerError, Unavailable
from imkit.protocol import HISTORY_MAX

if TYPE_CHECKING:
    from imkit.client.library import Client, Receipt

# Past public messages imkit chat shows on start: a screenful, as ssh-chat replays.
DEFAULT_HISTORY = 20

# An account's password for --login, from the environment (never an option: it would
# show in ps). IMKIT_PASSWORD stays the server's own password.
LOGIN_PASSWORD_VARIABLE = "IMKIT_LOGIN_PASSWORD"

_LOGIN = option(
    "--login",
    type=TEXT,
    metavar="NAME",
    default=None,
    help=f"Log in to the account NAME (its password: {LOGIN_PASSWORD_VARIABLE}, or asked).",
)


def login_password_from_environment() -> str | None:
    """IMKIT_LOGIN_PASSWORD, when set; set but empty is a usage error."""
    value = os.environ.get(LOGIN_PASSWORD_VARIABLE)
    if value == "":
        raise Usage(f"{LOGIN_PASSWORD_VARIABLE} is set but empty: give it a value, or unset it")
    return value


@click.command(short_help="Chat in the terminal: public, private, rename, who.")
@client_options
@option(
    "--name", type=TEXT, metavar="NAME", default=None, help="Take this name right after connecting."
)
@_LOGIN
@option(
    "--history",
    type=click.IntRange(0, HISTORY_MAX),
    default=DEFAULT_HISTORY,
    metavar="N",
    help=f"Show the last N public messages on start, marked as past (0 to {HISTORY_MAX}; 0: none).",
)
def chat(
    host: str,
    port: int,
    tls: bool,
    cafile: str | None,
    password: str | None,
    name: str | None,
    login: str | None,
    history: int,
) -> None:
    """Chat in the terminal: a menu for public and private chat, rename and who.

    On start it shows the last public messages, each marked "past" with its time.
    Messages that arrive while you type are printed above your input line. Standard
    input may also be a pipe: menu choices and lines are then read from it.

    --login NAME logs in to the account NAME: its password is asked first, without
    echo (from a pipe: the first line), unless IMKIT_LOGIN_PASSWORD is set. The menu
    then has 5 to change your password. Private messages that waited for you while you
    were offline are shown as past, with their time.

    A line of piped input that is not valid UTF-8 is skipped, with a notice.

    \b
    Exit status:
      0    you left (0 in the menu, Ctrl-D, Ctrl-C)
      1    the server removed you (idle, kicked, shutting down, logged in
           elsewhere), or refused the login (wrong name or password)
      2    usage error (standard input is closed, an empty --password, ...)
      3    could not connect, or the connection was lost
      4    standard output could not be written
      141  standard output was closed by its reader (nothing on stderr)
    """
    from imkit.client import chat as chat_client

    if sys.stdin is None:  # started with <&-: Python then has no sys.stdin
        raise Usage("standard input is closed: imkit chat reads what to say from it")
    if login is not None and name is not None:
        raise Usage("--name and --login cannot go together: you take your account's name")
    login_password = login_password_from_environment() if login is not None else None
    try:
        chat_client.main(
            host,
            port,
            name=name,
            tls=tls,
            cafile=cafile,
            password=password,
            history=history,
            login=login,
            login_password=login_password,
        )
    except KeyboardInterrupt:
        return  # Ctrl-C outside a prompt: the person leaves, quietly
    except Disconnected as error:
        if error.reason is None:  # no bye: the server went away
            raise NoServer(f"connection lost: {error}") from None
        raise Refused(f"disconnected by the server: {error}") from None


@click.command(short_help="Send a message from a script; wait until it is accepted.")
@option("--to", type=TEXT, metavar="NAME", default=None, help="Send privately to this user.")
@option(
    "--room",
    type=TEXT,
    metavar="#ROOM",
    default=None,
    help="Send to this room (joined for the message if need be, and left after).",
)
@option(
    "--room-key",
    type=TEXT,
    metavar="KEY",
    default=None,
    nonempty=True,
    show_default=False,
    help="With --room: the room's key, if it has one (+k).",
)
@option("--as", "as_name", type=TEXT, metavar="NAME", default=None, help="Take this name first.")
@_LOGIN
@click.option(
    "--login-password-stdin",
    is_flag=True,
    help="With --login: read the account's password from the first line of standard input.",
)
@client_options
@option(
    "--timeout",
    type=Bounded(0.01, DAY),
    default=10.0,
    metavar="SECONDS",
    help="Give up connecting, or waiting for an acknowledgement, after this long "
    "(0.01 s to 1 day, 86400).",
)
@option("-v", "--verbose", is_flag=True, help="Print each acknowledged message on stdout.")
@click.argument("message", type=TEXT, nargs=-1, required=True)
def send(
    to: str | None,
    room: str | None,
    room_key: str | None,
    as_name: str | None,
    login: str | None,
    login_password_stdin: bool,
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

    --login NAME logs in to the account NAME first (the message is then from a verified
    sender): its password is the first line of standard input with
    --login-password-stdin (which cannot go with -), or IMKIT_LOGIN_PASSWORD, or asked
    on a terminal. --password stays the server's own password.

    A private message to an account that is offline is kept for it: that is success
    (exit 0), and stderr says "NAME is offline; the message will be delivered when NAME
    logs in".

    --room '#ROOM' sends to a room. When the room takes messages only from its members,
    send joins it (with --room-key if it has a key), sends, and leaves it again; a room
    nobody is in is made by that join, as any join makes one, and keeps the message in
    its history. A refusal (banned, invite-only, a wrong key, full, moderated) is exit 1.

    \b
    Exit status:
      0    every message was accepted (a public one: and stored; a private one to an
           account that is offline: kept for it)
      1    the server refused one (or refused to let us into the --room), or a line
           of input is not valid UTF-8 (the reason is on stderr; nothing after it is
           sent, everything before it was accepted);
           also when the server cannot store messages: if the error says the message
           reached the users online, do not send it again; or the login failed
      2    usage error (standard input is closed, an empty --password, ...)
      3    could not connect, timed out, or the connection was lost
      4    standard output (--verbose) could not be written
      141  standard output was closed by its reader (nothing on stderr)
    """
    from imkit.client.library import connect

    if "-" in message and len(message) > 1:
        raise click.UsageError("- (read standard input) must be the only MESSAGE")
    if to is not None and room is not None:
        raise Usage("--to and --room cannot go together: a message goes to a user or a room")
    if room_key is not None and room is None:
        raise Usage("--room-key goes with --room '#ROOM'")
    if message == ("-",) and sys.stdin is None:  # started with <&-
        raise Usage("standard input is closed: - has nothing to read")
    credentials = _login(login, login_password_stdin, as_name, message)
    texts = _stdin_lines() if message == ("-",) else _one(" ".join(message))

    async def deliver() -> None:
        async with connect(
            host,
            port,
            name=as_name,
            password=password,
            login=credentials,
            tls=tls,
            cafile=cafile,
            timeout=timeout,
            events=False,
        ) as client:
            if room is None:
                await _submit_all(partial(client.submit, to=to), texts, to, verbose)
                return
            to_room = RoomSender(client, room, room_key)
            try:
                await _submit_all(to_room.submit, texts, room, verbose)
            finally:
                await to_room.leave()

    anyio.run(deliver, backend="asyncio")


async def _submit_all(
    submit: Callable[[str], Awaitable[Receipt]],
    texts: AsyncIterator[str],
    to: str | None,
    verbose: bool,
) -> None:
    """``submit`` each of ``texts`` in turn, each acknowledged before the next; ``to``:
    the user or the room they go to (None: everyone)."""
    told = False  # that the recipient is offline, since it last was not
    async for text in texts:
        try:
            receipt = await submit(text)
        except Unavailable as error:
            if error.delivered:
                # Sending it again would show it twice to everyone online.
                raise Refused(
                    f"{error}; it reached the users online, so do not send it again"
                ) from None
            raise
        if receipt.queued and not told:
            click.echo(
                f"{to} is offline; the message will be delivered when {to} logs in", err=True
            )
        told = receipt.queued
        if verbose and receipt.queued:
            write_line(f"kept for {to}: {text}")
        elif verbose:
            write_line(f"sent to {to or 'everyone'}: {text}")


class RoomSender:
    """``send --room``: messages to a room, joined only when the server says we must be
    in it (a room is ``+n`` unless its operators change that), and left at the end."""

    # A message to a room we are not in: the room takes no messages from outside, or
    # (no_such_room) nobody is in it, or it is secret. A join settles each of them.
    MUST_JOIN = frozenset({"not_in_room", "no_such_room"})

    def __init__(self, client: Client, room: str, key: str | None) -> None:
        self.client, self.room, self.key = client, room, key
        self.joined = False

    async def submit(self, text: str) -> Receipt:
        try:
            return await self.client.submit(text, room=self.room)
        except ServerError as error:
            if self.joined or error.code not in self.MUST_JOIN:
                raise
        try:
            await self.client.join(self.room, self.key)  # its refusal is the command's
        except ServerError as error:
            if error.code != "bad_key":
                raise
            # The server's words name text mode's join|#ROOM|KEY: say send's option.
            wrong = (
                "the key given with --room-key is wrong" if self.key else "give it with --room-key"
            )
            raise Refused(f"{self.room} has a key: {wrong}") from None
        self.joined = True
        return await self.client.submit(text, room=self.room)

    async def leave(self) -> None:
        """Leave the room if we joined it (a refusal, or a lost connection, leaves it
        anyway: the server takes a closed connection out of its rooms)."""
        if self.joined:
            self.joined = False
            with contextlib.suppress(ImkitError):
                await self.client.part(self.room)


def _login(
    login: str | None, from_stdin: bool, as_name: str | None, message: tuple[str, ...]
) -> tuple[str, str] | None:
    """send's (account, password), checked and read before connecting; None: no login."""
    if login is None:
        if from_stdin:
            raise Usage("--login-password-stdin goes with --login NAME")
        return None
    if as_name is not None:
        raise Usage("--as and --login cannot go together: a login takes the account's name")
    if from_stdin:
        if message == ("-",):
            raise Usage(
                "--login-password-stdin and - both read standard input: give the message"
                f" as words, or the password in {LOGIN_PASSWORD_VARIABLE}"
            )
        return login, password_from_stdin("login password")
    secret = login_password_from_environment()
    if secret is not None:
        return login, secret
    if sys.stdin is not None and sys.stdin.isatty():
        return login, ask_password(f"Password for {login}")
    raise Usage(
        f"--login needs the account's password: --login-password-stdin or {LOGIN_PASSWORD_VARIABLE}"
    )


async def _one(text: str) -> AsyncIterator[str]:
    yield text


async def _stdin_lines() -> AsyncIterator[str]:
    # Lines are sent as they arrive, so `tail -f log | imkit send -` works.
    from imkit.client.stdin import StdinLines

    lines = StdinLines()
    while (line := await lines.read()) is not None:
        if line:
            yield line
