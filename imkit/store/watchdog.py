"""The event loop's watch on the store's writer thread: a disk that stops answering.

A frozen or hung file system leaves the writer thread in the kernel, where nothing can
interrupt it, and no error ever comes back. So the loop looks at the writer every
:data:`STALL_CHECK`: work outstanding longer than :data:`STALL_TIMEOUT` is a store
problem (public messages are refused, /healthz says 503, ``imkit stats`` shows it) until
it comes back; a message waiting for its commit is answered ``unavailable`` then (it was
delivered), and a history request after that long, rather than never (a late answer is
then dropped: nobody is answered twice).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable

from imkit.store.base import Answer, Page, Stored

# A commit or read outstanding this long is a store problem: a healthy commit takes
# milliseconds, even with --fsync on a slow disk, and the admin's history waits 4 s
# (imkit.operator.answers.HISTORY_TIMEOUT), so a stalled store answers it, and a client, first.
STALL_TIMEOUT = 3.0
# How often the loop looks at the writer (a timer on the loop: no thread, no wake-up of
# the writer).
STALL_CHECK = 0.5


class Watchdog:
    """Sets and clears the store's problem for a stalled writer; loop side only, but for
    :attr:`busy_since`, which the writer thread writes."""

    def __init__(
        self,
        where: str,
        set_problem: Callable[[str | None], None],
        problem: Callable[[], str | None],
        writer_problem: Callable[[], str | None],
    ) -> None:
        # Since when (time.monotonic) the writer has been at its current step (a commit, a
        # read, a chunk of retention): a long run of quick steps is no stall. None: idle.
        self.busy_since: float | None = None
        self._stall = f"the disk holding {where} has not answered for {STALL_TIMEOUT:g}s"
        self._set_problem, self._problem = set_problem, problem
        self._writer_problem = writer_problem
        # The callbacks of messages handed to the writer and not answered yet, oldest
        # first, and how many of the oldest were answered early (_give_up) already.
        self._waiting: collections.deque[Stored] = collections.deque()
        self._answered_early = 0
        self._stalled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer = loop.call_later(STALL_CHECK, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        assert self._loop is not None
        since = self.busy_since
        stalled = since is not None and time.monotonic() - since > STALL_TIMEOUT
        if stalled and not self._stalled:
            self._stalled = True
            self._set_problem(self._stall)
        if stalled:  # those waiting since the last look too
            self._give_up()
        elif not stalled and self._stalled:
            self._stalled = False
            if self._problem() == self._stall:  # not one the writer has reported since
                self._set_problem(self._writer_problem())
        self._timer = self._loop.call_later(STALL_CHECK, self._check)

    def wait(self, stored: Stored) -> None:
        """``stored`` waits for the commit of a message handed to the writer now."""
        self._waiting.append(stored)

    def answer(self, waiters: list[Stored], problem: str | None) -> None:
        """The writer's outcome for ``waiters`` (the oldest waiting): each is told, but
        for those told already."""
        for stored in waiters:
            if self._answered_early:  # told by _give_up: never twice
                self._answered_early -= 1
                continue
            self._waiting.popleft()  # this very one: batches come back in order
            stored(problem)

    def _give_up(self) -> None:
        """Answer every message still waiting for the stalled writer: delivered, and not
        known to be stored (it may still be, when the disk answers)."""
        self._answered_early += len(self._waiting)
        waiting, self._waiting = self._waiting, collections.deque()
        for stored in waiting:
            stored(self._stall)

    def bounded(self, answer: Answer) -> Answer:
        """``answer``, called once: with the page, or after STALL_TIMEOUT with why not."""
        if self._loop is None:
            return answer
        answered = False

        def once(page: Page | str) -> None:
            nonlocal answered
            if not answered:
                answered = True
                timer.cancel()
                answer(page)

        late = f"history cannot be read: the store did not answer within {STALL_TIMEOUT:g}s"
        timer = self._loop.call_later(STALL_TIMEOUT, once, late)
        return once
