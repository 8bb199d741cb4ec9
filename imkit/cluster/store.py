"""A cluster node's history: the stream ``P:hist`` in Redis, read through the link.

The publish script stores each public message in ``P:hist`` as it puts it in the event
log, and the private script a message between two accounts in their conversation's
stream ``P:conv:PAIR``, so there is nothing to append here; the node only reads pages of
history and conversations (the same on every node) and keeps the newest messages it
delivered for ``--replay``. A search scans a stream (:meth:`RedisHistory.search`: Redis
keeps no index). While Redis cannot be reached, :attr:`problem` says so
(``/healthz`` answers 503).

Accounts and waiting messages live in Redis too (imkit.cluster.backend, scripts.py): the
store's own :attr:`accounts` and :attr:`mailboxes` stay empty on a node; what it gives
the hub for them is :attr:`offline_days` (:meth:`mail_cutoff`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from typing import Any

from imkit.cluster.link import ClusterLink, describe_url
from imkit.cluster.reader import pairs
from imkit.protocol import ChatMessage
from imkit.rules.accounts import DEFAULT_OFFLINE_DAYS
from imkit.rules.hooks import Hook, hook_from_fields
from imkit.rules.msgid import format_msgid, parse_msgid
from imkit.rules.names import name_key
from imkit.rules.search import Words, matches
from imkit.store.base import Answer, Deleted, HooksAnswer, Page, Store, Stored

# Entries of P:hist read at a time when deleting a sender's messages.
PAGE = 1000
# A search's scan (RedisHistory.search): entries read a command, and at most in all.
SCAN_CHUNK = 500
SCAN_MAX = 50_000


def stream_id(msgid: str) -> str:
    """The id of a msgid's entry in ``P:hist``: Redis ms, then the count in that ms."""
    number = parse_msgid(msgid)
    assert number is not None, "the protocol checks msgids"
    return f"{number // 1000}-{number % 1000}"


def entry_msgid(entry_id: str) -> str:
    ms, _, count = entry_id.partition("-")
    return format_msgid(int(ms) * 1000 + int(count or 0))


def _outcome(done: Stored, reply: Any) -> None:
    """A Redis write's reply as a store's outcome: None, or why it failed."""
    done(f"Redis could not be written: {reply}" if isinstance(reply, BaseException) else None)


class RedisHistory(Store):
    """History kept in Redis for every node of a cluster."""

    def __init__(
        self,
        link: ClusterLink,
        *,
        retain_days: float,
        clock: Any,
        offline_days: float = DEFAULT_OFFLINE_DAYS,
    ) -> None:
        super().__init__(retain_days=retain_days, clock=clock, offline_days=offline_days)
        self.link = link
        link.on_problem = self._set_problem
        self.bans = [json.loads(raw) for raw in link.bans_at_start]

    def _set_problem(self, problem: str | None) -> None:
        self.problem = problem

    @property
    def address_secret(self) -> bytes:
        """``P:secret`` in Redis, read when the node registers: the same on every node."""
        return self.link.address_secret

    @property
    def description(self) -> str:
        return f"Redis {describe_url(self.link.url)}, cluster {self.link.name!r}"

    def _append(
        self, message: ChatMessage, stored: Stored | None, conversation: str | None
    ) -> None:
        # Not used: the publish script stores a cluster's public messages.
        if stored is not None:  # pragma: no cover
            stored(None)

    def delete_messages(
        self, ids: list[int] | None, sender_key: str | None, since: int, done: Deleted
    ) -> None:
        """Delete by msgid at once; by sender, after reading P:hist from ``since`` a page
        at a time (names are compared by key, which only Python computes)."""
        link = self.link

        def forgot(reply: Any) -> None:
            if isinstance(reply, BaseException):
                done(f"the chat's history cannot be changed: {self.link.problem or reply}")
            else:
                # each node forgets them, and tells its users, on the events
                done([(int(n), str(room) or None) for n, room in reply])

        def forget(numbers: list[int]) -> None:
            if not numbers:
                done([])
                return
            link.script("forget", json.dumps([str(n) for n in numbers]), done=forgot)

        if ids is not None:
            forget(ids)
            return
        found: list[int] = []

        def page(start: str) -> None:
            link.call(("XRANGE", link.hist_key, start, "+", "COUNT", PAGE), read)

        def read(reply: Any) -> None:
            if isinstance(reply, BaseException):
                forgot(reply)
                return
            for entry_id, raw in reply:
                if name_key(pairs(raw).get("n", "")) == sender_key:
                    found.append(parse_msgid(entry_msgid(entry_id)) or 0)
            if len(reply) < PAGE:
                forget(found)
            else:
                page("(" + reply[-1][0])

        page(f"{since // 1000}-{since % 1000}")

    # Webhooks: the hash P:hooks (name key -> the hook as JSON), the same for every node;
    # read on each use (the server's hook inbox keeps it for a moment: server/hooks.py).

    @property
    def hooks_key(self) -> str:
        return f"{self.link.name}:hooks"

    def hooks(self, answer: HooksAnswer) -> None:
        def read(reply: Any) -> None:
            if isinstance(reply, BaseException):
                answer(f"the hooks cannot be read: {self.link.problem or reply}")
                return
            found = {}
            for key, raw in (reply if isinstance(reply, dict) else pairs(reply)).items():
                found[key] = hook_from_fields(json.loads(raw))
            answer(found)

        self.link.call(("HGETALL", self.hooks_key), read)

    def save_hook(self, hook: Hook, done: Stored) -> None:
        raw = json.dumps(hook.fields())
        self.link.call(("HSET", self.hooks_key, hook.key, raw), partial(_outcome, done))

    def remove_hook(self, key: str, done: Stored) -> None:
        self.link.call(("HDEL", self.hooks_key, key), partial(_outcome, done))

    def history(
        self, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        """The lobby's (``P:hist``) or, ``room`` a room's key, that room's
        (``P:room:KEY:hist``, kept by room_publish.lua)."""
        if room is None:
            self._page(self.link.hist_key, "history", limit, before, answer)
        else:
            self._page(f"{self.link.name}:room:{room}:hist", "history", limit, before, answer)

    def conversation(self, pair: str, limit: int, before: str | None, answer: Answer) -> None:
        """A page of the conversation ``pair`` (two accounts' keys), from
        ``P:conv:PAIR``: kept by the private script, within retention like history."""
        key = f"{self.link.name}:conv:{pair}"
        self._page(key, "conversation", limit, before, answer)

    def _page(self, key: str, what: str, limit: int, before: str | None, answer: Answer) -> None:
        """The ``limit`` newest messages of the stream ``key`` before msgid ``before``."""
        end = "+" if before is None else "(" + stream_id(before)
        cutoff = self.cutoff()

        def read(reply: Any) -> None:
            if isinstance(reply, BaseException):
                answer(f"the chat's {what} cannot be read: {self.link.problem or reply}")
                return
            messages = []
            for entry_id, raw in reply:
                message = _entry_message(entry_id, raw, cutoff)
                if message is None:
                    break
                messages.append(message)
            more = len(messages) > limit
            page = messages[:limit]
            page.reverse()
            if not page or what != "history":  # conversations are not edited
                answer(Page(tuple(page), more))
                return
            ids = [stream_id(m.msgid or "") for m in page]

            def edited(reply: Any) -> None:
                """The edits (amend.lua) laid over the entries: their new texts."""
                if isinstance(reply, BaseException):
                    answer(f"the chat's {what} cannot be read: {self.link.problem or reply}")
                    return
                shown = [
                    m if raw is None else _edited(m, json.loads(raw))
                    for m, raw in zip(page, reply, strict=True)
                ]
                answer(Page(tuple(shown), more))

            self.link.call(("HMGET", f"{key}:edits", *ids), edited)

        self.link.call(("XREVRANGE", key, end, "-", "COUNT", limit + 1), read)

    def search(
        self, words: Words, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        """A scan of the lobby's or the room's stream, newest first, :data:`SCAN_CHUNK`
        entries a command (the loop serves others between two), testing each text with
        :func:`~imkit.rules.search.matches`: Redis keeps no index. It stops once the page
        is full, at the retention cutoff or the stream's start, or after
        :data:`SCAN_MAX` entries: then ``more`` is True (older messages were not
        searched; ask again with ``before`` the oldest message found). An edited
        message is tested and shown with its new text: the stream's edits (amend.lua's
        ``KEY:edits``, a bounded hash) are read first."""
        key = self.link.hist_key if room is None else f"{self.link.name}:room:{room}:hist"
        cutoff = self.cutoff()
        found: list[ChatMessage] = []
        scanned, oldest = 0, ""  # the oldest entry read (a stream id)
        edits: dict[str, str] = {}

        def start(reply: Any) -> None:
            if isinstance(reply, BaseException):
                answer(f"the chat's history cannot be read: {self.link.problem or reply}")
                return
            edits.update(reply if isinstance(reply, dict) else pairs(reply))
            chunk("+" if before is None else "(" + stream_id(before))

        def chunk(end: str) -> None:
            self.link.call(("XREVRANGE", key, end, "-", "COUNT", SCAN_CHUNK), read)

        def read(reply: Any) -> None:
            nonlocal scanned, oldest
            if isinstance(reply, BaseException):
                answer(f"the chat's history cannot be read: {self.link.problem or reply}")
                return
            scanned += len(reply)
            if reply:
                oldest = reply[-1][0]
            for entry_id, raw in reply:
                message = _entry_message(entry_id, raw, cutoff)
                if message is None:  # past retention: nothing older counts
                    finish(more=False)
                    return
                if (edit := edits.get(entry_id)) is not None:
                    message = _edited(message, json.loads(edit))
                if matches(message.text, words):
                    found.append(message)
                    if len(found) > limit:
                        finish(more=True)
                        return
            if len(reply) < SCAN_CHUNK:
                finish(more=False)
            elif scanned >= SCAN_MAX:
                finish(more=True, resume=True)
            else:
                chunk("(" + reply[-1][0])

        def finish(*, more: bool, resume: bool = False) -> None:
            page = [self.as_read(m) for m in found[:limit]]  # the lobby's named, as one node's
            page.reverse()
            answer(Page(tuple(page), more, entry_msgid(oldest) if resume else None))

        self.link.call(("HGETALL", f"{key}:edits"), start)


def _entry_message(entry_id: str, raw: Any, cutoff: int) -> ChatMessage | None:
    """The message of one entry of a history stream; None when it is older than
    ``cutoff`` (a msgid number: retention)."""
    fields = pairs(raw)
    msgid = entry_msgid(entry_id)
    if (parse_msgid(msgid) or 0) < cutoff:
        return None
    time = int(fields.get("ms", entry_id.partition("-")[0])) / 1000
    return ChatMessage(
        fields["n"],
        fields["a"],
        fields.get("to"),
        fields["t"],
        time,
        msgid,
        fields.get("ac"),
        fields.get("r"),  # a room's name (room_publish.lua); the lobby's: None
        bot=bool(fields.get("b")),  # hook_publish.lua's
    )


def _edited(message: ChatMessage, edit: dict[str, Any]) -> ChatMessage:
    return replace(message, text=edit["t"], edited=edit["ms"] / 1000)
