"""Stores driven directly: messages, appends and history pages waited for."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio

from imkit.protocol import ChatMessage
from imkit.rules.search import query_words
from imkit.store import Page, SqliteStore, Store
from tests.support import Clock

DAY = 86_400.0


T0 = 1_800_000_000.0  # 2027-01-15, a fixed "now" for the injected clock


def message(store: Store, text: str, at: float, sender: str = "alex") -> ChatMessage:
    return ChatMessage(sender, "127.0.0.1:1", None, text, at, store.new_msgid(at))


async def append_all(store: Store, messages: list[ChatMessage]) -> list[str | None]:
    """Append ``messages`` and wait until the store has answered for each."""
    outcomes: list[str | None] = []
    done = anyio.Event()

    def stored(problem: str | None) -> None:
        outcomes.append(problem)
        if len(outcomes) == len(messages):
            done.set()

    for each in messages:
        store.append(each, stored)
    with anyio.fail_after(10):
        await done.wait()
    return outcomes


async def history(store: Store, limit: int = 100, before: str | None = None) -> Page:
    pages: list[Page | str] = []
    done = anyio.Event()

    def answer(page: Page | str) -> None:
        pages.append(page)
        done.set()

    store.history(limit, before, answer)
    with anyio.fail_after(10):
        await done.wait()
    [page] = pages
    assert isinstance(page, Page), page
    return page


async def search(
    store: Store, query: str, limit: int = 100, before: str | None = None, room: str | None = None
) -> Page:
    """A search page of ``store`` (the lobby's, or the room whose key is ``room``)."""
    pages: list[Page | str] = []
    done = anyio.Event()

    def answer(page: Page | str) -> None:
        pages.append(page)
        done.set()

    store.search(query_words(query), limit, before, answer, room=room)
    with anyio.fail_after(10):
        await done.wait()
    [page] = pages
    assert isinstance(page, Page), page
    return page


def sqlite_store(path: Path, clock: Clock, **options: float) -> SqliteStore:
    store = SqliteStore(path, clock=clock, **options)  # type: ignore[arg-type]
    store.open()
    store.start()
    return store


def digest(path: Path) -> tuple[str, float]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime
