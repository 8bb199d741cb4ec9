"""Standard input as an async source of lines, for ``imkit chat`` and ``imkit send -``."""

from __future__ import annotations

import codecs
import math
import os
import sys
import threading

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream


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
        lines: tuple[MemoryObjectSendStream[str], MemoryObjectReceiveStream[str]]
        lines = anyio.create_memory_object_stream[str](math.inf)
        self._send, self._receive = lines
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(token,), daemon=True).start()

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        try:
            while chunk := os.read(self._fd, 65536):
                pending += decoder.decode(chunk)
                *lines, pending = pending.split("\n")
                for line in lines:
                    self._deliver(line.removesuffix("\r"), token)
            if pending:
                self._deliver(pending, token)
            anyio.from_thread.run_sync(self._send.close, token=token)
        except (OSError, RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # stdin is unreadable, or the chat has already ended

    def _deliver(self, line: str, token: anyio.lowlevel.EventLoopToken) -> None:
        anyio.from_thread.run_sync(self._send.send_nowait, line, token=token)

    async def read(self, prompt: str = "") -> str | None:
        """The next line without its newline; None at end of input."""
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            return None
