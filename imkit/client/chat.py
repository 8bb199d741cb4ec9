"""``imkit chat``: the seed's menu client, done right.

The menu keeps the seed's numbers (1 public chat, 2 private chat, 3 rename, 0 exit) and
adds 4 who, for a user logged in to an account (``--login``) 5 to change its password,
and rooms: 6 list, 7 join, 8 talk in one, 9 leave (chat_rooms.py). On start it shows
the last public messages (``--history``, 20 by default), each marked ``past`` with its
time, so they cannot be taken for new ones (and so, of a room, when it is joined). Messages that
arrive while the person types are printed above the input line: in a terminal,
prompt_toolkit's ``prompt_async`` under ``patch_stdout`` redraws the prompt and the
half-typed text below every printed line (the seed's client wrote them into the middle
of the prompt). With a pipe as standard input, lines are read as they come and nothing
is drawn, so scripts and tests can drive a whole session.

Exit status: 0 when the person leaves (0, Ctrl-D, Ctrl-C); 1 when the server removed
the client (idle, kicked, shutdown, slow consumer); 2 usage error (standard input
closed); 3 when the server could not be reached or the connection was lost; 4 when
standard output could not be written; 141 when its reader went away.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable
from functools import partial
from typing import Protocol

import anyio
import anyio.abc

from imkit.client.chat_rooms import (
    ROOM_CHOICES,
    ROOM_MENU,
    RoomItems,
    describe_room_event,
    room_of,
)
from imkit.client.library import ChatMessage, Client, NameChange, Presence, connect, host_port
from imkit.client.output import printable as printable  # imported from here by the cli
from imkit.client.output import write_line
from imkit.client.stdin import StdinLines
from imkit.errors import Disconnected, InputError, ServerError, TimedOut, Unavailable
from imkit.protocol import ServerNotice
from imkit.protocol.edits import MessageDeleted, MessageEdited

MENU = f"""\
1 public chat
2 private chat
3 rename
4 who is online
{ROOM_MENU}
0 exit"""
# The menu of a user logged in to an account: it may change its own password.
ACCOUNT_MENU = MENU.replace("\n6 ", "\n5 change your password\n6 ")

# A private message sent this long before the session began was waiting for the account
# while it was offline: it is shown as past, with its time (more than clocks may differ
# by, so that one that arrives now is never shown as past).
WAITED = 60.0


class LineInput(Protocol):
    # True when the prompt is drawn on a terminal (then text meant to stay above the
    # prompt, like the menu, is drawn as part of it, so it can never land below).
    draws_prompt: bool

    async def read(self, prompt: str, *, secret: bool = False) -> str | None:
        """The next line the person typed, without its newline; None at end of input.
        ``secret``: a password, not echoed."""


class TerminalInput:
    """Lines typed in a real terminal, edited with prompt_toolkit."""

    draws_prompt = True

    def __init__(self) -> None:
        from prompt_toolkit import PromptSession

        self._session: PromptSession[str] = PromptSession()

    async def read(self, prompt: str, *, secret: bool = False) -> str | None:
        try:
            # A password is typed without echo (shown as *), and is kept out of the
            # session's history, which the up arrow would bring back.
            if secret:
                from prompt_toolkit import PromptSession

                password: PromptSession[str] = PromptSession(is_password=True)
                return await password.prompt_async(prompt)
            return await self._session.prompt_async(prompt)
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: the person leaves
            return None


def describe(event: object, client: Client) -> str | None:
    """How a pushed event is shown to the person."""
    me = client.name
    if isinstance(event, ChatMessage):
        sender, text = printable(event.sender), printable(event.text)
        if event.to is None:
            return f"{room_of(event, client)}{sender}: {text}"
        return f"{sender} (private): {text}"
    if isinstance(event, Presence):
        if event.name == me:
            return None
        return f"* {printable(event.name)} {'is online' if event.online else 'went offline'}"
    if isinstance(event, ServerNotice):
        return f"* {printable(event.message)}"
    if isinstance(event, MessageDeleted | MessageEdited):  # #ROOM * alex deleted message M
        return printable(event.text_line())
    if isinstance(event, NameChange):
        if event.reason == "conflict" or (event.reason == "reserved" and me == event.new):
            return f"* {printable(event.text_line() or '')}"
        if me in (event.old, event.new):
            return None  # our own rename is confirmed by its reply
        return f"* {printable(event.old)} is now known as {printable(event.new)}"
    return describe_room_event(event, client)


def describe_past(
    message: ChatMessage, today: time.struct_time | None = None, room: str = ""
) -> str:
    """How a past message is shown: ``past HH:MM`` (local time) before it, and the date
    too when it is not from ``today`` (default: now). A private one (that waited for an
    account while it was offline) says so, as a live one does; a room's has ``room``
    (``#builds ``) before the sender."""
    when = time.localtime(message.time)
    today = today or time.localtime()
    same_day = (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday)
    stamp = time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", when)
    private = "" if message.to is None else " (private)"
    return f"past {stamp} {room}{printable(message.sender)}{private}: {printable(message.text)}"


class Leave(Exception):
    """The person chose to leave."""


class ChatSession:
    """The menu, driven by ``lines``, with events printed as they arrive."""

    def __init__(self, client: Client, lines: LineInput, history_count: int = 0) -> None:
        self.client = client
        self.lines = lines
        self.history_count = history_count  # past messages shown of the lobby, of a room
        self.rooms = RoomItems(self)
        # msgids of the past messages shown: their live copies, which may have arrived
        # while history was asked for, are not shown twice.
        self.shown_past: set[str] = set()
        self.started = time.time()

    def say(self, text: str) -> None:
        write_line(text)  # raises OutputError if standard output cannot be written

    async def ask(self, prompt: str, header: str = "") -> str:
        """The next line, exactly as typed (messages keep their spaces)."""
        if header and self.lines.draws_prompt:
            prompt = f"{header}\n{prompt}"
        elif header:
            self.say(header)
        while True:
            try:
                line = await self.lines.read(prompt)
            except InputError as error:  # piped input: say which line, and read on
                self.say(f"! {error}; skipped it")
                continue
            if line is None:
                raise Leave
            return line

    async def ask_secret(self, prompt: str) -> str:
        """A password: not echoed on a terminal (a line from a pipe is never shown)."""
        while True:
            try:
                line = await self.lines.read(prompt, secret=True)
            except InputError as error:
                self.say(f"! {error}; skipped it")
                continue
            if line is None:
                raise Leave
            return line

    async def show_history(self, count: int, room: str | None = None) -> None:
        """Show the last ``count`` public messages (of ``room``: the lobby's when None),
        marked as past; a failure is one line, and the chat goes on without them."""
        if count <= 0:
            return
        try:
            page = await self.client.history(count, room=room)
        except (ServerError, TimedOut) as error:
            self.say(f"! past messages cannot be shown: {error}")
            return
        today = time.localtime()
        for message in page.messages:
            self.say(describe_past(message, today, room_of(message, self.client)))
            if message.msgid is not None:
                self.shown_past.add(message.msgid)

    async def show_events(self) -> None:
        async for event in self.client.events():
            if isinstance(event, ChatMessage) and event.msgid in self.shown_past:
                self.shown_past.discard(event.msgid)  # shown already, as past
                continue
            if (
                isinstance(event, ChatMessage)
                and event.to is not None
                and event.time < self.started - WAITED
            ):
                self.say(describe_past(event))  # it waited for us while we were offline
                continue
            shown = describe(event, self.client)
            if shown is not None:
                self.say(shown)

    async def run_menu(self) -> None:
        while True:
            menu, choices = (
                (ACCOUNT_MENU, "0 to 9") if self.client.account else (MENU, "0 to 4 or 6 to 9")
            )
            choice = (await self.ask("choice? ", header=menu)).strip()
            if choice == "0":
                return
            if choice == "1":
                await self.public_chat()
            elif choice == "2":
                await self.private_chat()
            elif choice == "3":
                await self.rename((await self.ask("new name? ")).strip())
            elif choice == "4":
                await self.who()
            elif choice == "5" and self.client.account:
                await self.change_password()
            elif choice in ROOM_CHOICES:
                await self.rooms.choose(choice)
            elif choice:
                self.say(f"{printable(choice)!r} is not on the menu: type {choices}")

    async def public_chat(self) -> None:
        header = "public chat: type a message and press Enter; 'exit' goes back"
        while (text := await self.ask("all> ", header)) != "exit":
            header = ""
            if text:
                await self.attempt(self.client.send(text))

    async def private_chat(self) -> None:
        while True:
            await self.who()
            name = (await self.ask("to whom (or 'exit')? ")).strip()
            if name == "exit":
                return
            if not name:
                continue
            header = f"private chat with {printable(name)}: 'exit' goes back"
            while (text := await self.ask(f"{printable(name)}> ", header)) != "exit":
                header = ""
                if text:
                    await self.attempt(self.client.send(text, to=name))

    async def rename(self, name: str) -> None:
        if await self.attempt(self.client.rename(name)):
            self.say(f"you are now {printable(self.client.name)}")

    async def who(self) -> None:
        users = await self.client.who()
        self.say(f"online ({len(users)}):")
        for user in users:
            account = " (account)" if user.account else ""
            me = " (you)" if user.name == self.client.name else ""
            self.say(f"  {printable(user.name)}  {user.addr}{account}{me}")

    async def change_password(self) -> None:
        """Menu item 5: the old password, then the new one twice, none echoed."""
        old = await self.ask_secret("current password? ")
        new = await self.ask_secret("new password? ")
        again = await self.ask_secret("new password again? ")
        if not new:
            self.say("! the new password is empty; the password was not changed")
        elif new != again:
            self.say("! the two new passwords differ; the password was not changed")
        elif await self.attempt(self.client.passwd(old, new)):
            self.say("your password has been changed")

    async def attempt(self, request: Awaitable[object]) -> bool:
        """Await a request; a refusal is shown in words and the person stays put."""
        try:
            await request
        except ServerError as error:
            if isinstance(error, Unavailable) and error.delivered:  # sent again: shown twice
                self.say(f"! {error}; it reached the users online, so do not send it again")
            else:
                self.say(f"! {error}")
            return False
        return True


async def run_chat(
    host: str,
    port: int,
    *,
    name: str | None,
    tls: bool,
    cafile: str | None,
    password: str | None,
    interactive: bool,
    history: int,
    login: str | None = None,
    login_password: str | None = None,
) -> None:
    """Run a chat session; raises Disconnected when the server ends it.

    With ``login``, the account's password is ``login_password``, or else asked first
    (without echo on a terminal; the first line of piped input), and the hello logs in.
    """
    lines: LineInput = TerminalInput() if interactive else StdinLines()
    credentials = None
    if login is not None:
        if login_password is None:
            login_password = await ask_login_password(lines, login)
            if login_password is None:
                return  # the person left at the question (Ctrl-D, Ctrl-C)
        credentials = (login, login_password)
    async with connect(
        host, port, password=password, login=credentials, tls=tls, cafile=cafile
    ) as client:
        session = ChatSession(client, lines, history)
        where = host_port(host, port)
        session.say(f"connected to {where} ({client.server}) as {client.name}")
        if client.account is not None:
            session.say(f"you have logged in as {printable(client.account)}")
        if name is not None:
            await session.rename(name)
        # Past messages last, just above the menu; what arrives meanwhile waits in the
        # client's event buffer and is shown after them.
        await session.show_history(history)
        ended: list[Disconnected] = []

        async def watch_events() -> None:
            try:
                await session.show_events()
            except Disconnected as error:
                ended.append(error)
                tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_events)
            try:
                await session.run_menu()
            except Leave:
                pass
            except Disconnected as error:
                ended.append(error)
            tg.cancel_scope.cancel()
        if ended:
            raise ended[0]


async def ask_login_password(lines: LineInput, login: str) -> str | None:
    """The password of the account ``login``, asked before connecting (a server with
    --accounts-only waits only 5 s for the login); None when the person leaves."""
    while True:
        try:
            secret = await lines.read(f"password for {printable(login)}: ", secret=True)
        except InputError as error:
            write_line(f"! {error}; skipped it")
            continue
        if secret is None or secret:
            return secret
        write_line("! the password is empty")


def main(
    host: str,
    port: int,
    *,
    name: str | None,
    tls: bool,
    cafile: str | None,
    password: str | None,
    history: int,
    login: str | None = None,
    login_password: str | None = None,
) -> None:
    """Run ``imkit chat`` in the terminal (or with piped input; standard input must be
    open). Raises OutputError when standard output cannot be written."""
    interactive = sys.stdin.isatty() and sys.stdout is not None and sys.stdout.isatty()
    session = partial(
        run_chat,
        host,
        port,
        name=name,
        tls=tls,
        cafile=cafile,
        password=password,
        interactive=interactive,
        history=history,
        login=login,
        login_password=login_password,
    )
    if not interactive:
        anyio.run(session, backend="asyncio")
        return
    from prompt_toolkit.patch_stdout import patch_stdout

    with patch_stdout(raw=True):
        anyio.run(session, backend="asyncio")
