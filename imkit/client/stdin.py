"""Standard input as an async source of lines, for ``imkit chat`` and ``imkit send -``."""

from __future__ import annotations

import math
import os
import sys
import threading

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from imkit.errors import InputError

_Line = str | InputError  # a decoded line, or why line N could not be decoded


class StdinLines:
    """Lines from a non-terminal standard input, read by a daemon thread as they come.

    A daemon thread rather than anyio's worker threads, because a blocking read of stdin
    cannot be cancelled and an abandoned worker would keep the process alive at exit;
    and ``os.read`` on the descriptor rather than ``sys.stdin``, because a daemon thread
    blocked inside a buffered reader aborts the interpreter at exit.
    """

    draws_prompt = False  # as a chat LineInput: nothing is drawn

    def __init__(self, fd: int | None = None) -> None:
        self._fd = sys.stdin.fileno() if fd is None else fd
        lines: tuple[MemoryObjectSendStream[_Line], MemoryObjectReceiveStream[_Line]]
        lines = anyio.create_memory_object_stream[_Line](math.inf)
        self._send, self._receive = lines
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(token,), daemon=True).start()

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        # Split bytes, then decode each line: a newline byte never occurs inside a UTF-8
        # sequence, and a bad line can then be named by its number.
        number = 0
        pending: list[bytes] = []  # the line so far, in pieces (no quadratic joins)
        try:
            while chunk := os.read(self._fd, 65536):
                *ends, rest = chunk.split(b"\n")
                for end in ends:
                    number += 1
                    self._deliver(_decode(b"".join([*pending, end]), number), token)
                    pending = []
                if rest:
                    pending.append(rest)
            if pending:
                self._deliver(_decode(b"".join(pending), number + 1), token)
            anyio.from_thread.run_sync(self._send.close, token=token)
        except (OSError, RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # stdin is unreadable, or the chat has already ended

    def _deliver(self, line: _Line, token: anyio.lowlevel.EventLoopToken) -> None:
        anyio.from_thread.run_sync(self._send.send_nowait, line, token=token)

    async def read(self, prompt: str = "", *, secret: bool = False) -> str | None:
        """The next line without its newline; None at end of input. (``prompt`` is not
        drawn, and ``secret`` changes nothing: a pipe echoes nothing.)

        Raises :class:`~imkit.errors.InputError` for a line that is not valid UTF-8
        (never replaced: the server refuses invalid UTF-8 too); the next call reads on.
        """
        try:
            line = await self._receive.receive()
        except anyio.EndOfStream:
            return None
        if isinstance(line, InputError):
            raise line
        return line


def _decode(raw: bytes, number: int) -> _Line:
    try:
        return raw.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return InputError(f"line {number} of standard input is not valid UTF-8", number)
