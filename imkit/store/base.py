"""The store's interface: what the hub may ask of whatever keeps state past a connection.

The hub is synchronous and never touches a file or a thread; the store is its only way to
the disk (or, later, to Redis). So every operation here returns at once, and a result
that takes time (a commit, a query) comes back through a callback, always called on the
event loop's thread, like an :class:`~imkit.hub.Outbox` tells the transport it is ready.

What a store promises (docs/operations.md, "The durability promise"):

* :meth:`Store.append` never waits: the hub delivers a message first and appends it
  after; its ``stored`` callback is called once the message is durable (``None``) or
  could not be stored (the reason). Only then does a JSON sender get its ``ok``.
* While writes fail, :attr:`Store.problem` says why, and the hub refuses public messages
  before delivering them. It is set when a failure is known and cleared when a write
  works again.
* :meth:`Store.recent` answers at once from memory (replay on connect: the lobby's
  only); :meth:`Store.history` asks the store itself, and sees every message appended
  before the request that was stored.

Rooms (docs/rooms.md): a public message with a ``room`` and not ``lobby`` is that room's,
kept with its room's key (:func:`~imkit.rules.rooms.room_key`) and paged by it; every
other public message is the lobby's, and comes back named :attr:`Store.lobby` (the
lobby's name is the server's ``--lobby``, never kept with a message). Registered rooms'
settings (:attr:`Store.rooms`) and the rooms each account is in (:attr:`Store.account_rooms`)
are read when the store opens, like accounts.
"""

from __future__ import annotations

import collections
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import anyio

from imkit.protocol import HISTORY_MAX, ChatMessage
from imkit.rules.accounts import ACCOUNT_GONE, DEFAULT_OFFLINE_DAYS, Account
from imkit.rules.hooks import Hook
from imkit.rules.msgid import MessageIds, format_msgid, msgid_floor, parse_msgid
from imkit.rules.names import name_key
from imkit.rules.pseudonyms import new_secret
from imkit.rules.rooms import DEFAULT_LOBBY
from imkit.rules.search import Words

DAY = 86_400.0
# Messages older than this many days are never returned, and deleted in the background.
DEFAULT_RETAIN_DAYS = 30.0

# Called on the event loop's thread: None once the message is stored, else why not.
Stored = Callable[[str | None], None]


@dataclass(frozen=True, slots=True)
class Page:
    """A page of history, oldest first; ``more``: older messages are kept too.
    ``before``: a search that stopped before it read them all (a cluster's scan, at
    most SCAN_MAX entries) searched back to this msgid: asked again with it as
    ``before``, it goes on from there (None: go on from the oldest message found)."""

    messages: tuple[ChatMessage, ...]
    more: bool
    before: str | None = None


# Called on the event loop's thread with the page, or with why it could not be read.
Answer = Callable[[Page | str], None]
# Called on the event loop's thread with the messages deleted (each its msgid number and
# its room's name, None: the lobby's), or why they were not.
Deleted = Callable[[list[tuple[int, str | None]] | str], None]
# What amend_message tells when no message had that msgid any more (deleted meanwhile).
MESSAGE_GONE = "the message is gone"
# Called on the event loop's thread with the public message found (None: no such
# message within retention), or why it could not be read.
Found = Callable[[ChatMessage | None | str], None]
# Called on the event loop's thread with the hooks by name key, or why they cannot be read.
HooksAnswer = Callable[[dict[str, Hook] | str], None]


T = TypeVar("T")


async def awaited(ask: Callable[[Callable[[T], None]], None], timeout: float) -> T:  # noqa: ASYNC109
    """What ``ask`` hands its callback, awaited from a task: the store (or the cluster's
    link) answers later, on the event loop, or never (a disk that hangs), hence the
    ``timeout``; TimeoutError when nothing came within it."""
    result: list[T] = []
    answered = anyio.Event()

    def answer(value: T) -> None:
        result.append(value)
        answered.set()

    ask(answer)
    with anyio.move_on_after(timeout):
        await answered.wait()
    if not result:
        raise TimeoutError(f"no answer within {timeout:g}s")
    return result[0]


class Store(ABC):
    """Where messages, accounts, waiting private messages and bans outlive a connection."""

    def __init__(
        self,
        *,
        retain_days: float = DEFAULT_RETAIN_DAYS,
        clock: Callable[[], float],
        offline_days: float = DEFAULT_OFFLINE_DAYS,
    ) -> None:
        self.retain_days = retain_days  # 0: keep everything
        # How long a private message waits for an offline account (--offline-days).
        self.offline_days = offline_days
        self.clock = clock  # wall clock, seconds; tests inject their own
        self.problem: str | None = None  # why writes fail now; None while they work
        # Batches of messages that could not be stored (written by the store's writer).
        self.failed_batches = 0
        # Told how long each batch's transaction took, in seconds, from the writer thread
        # (--metrics: a histogram's observe, which is thread-safe); None: not measured.
        self.observe_commit: Callable[[float], None] | None = None
        self._ids = MessageIds()
        # The bans kept, as Ban.fields dicts, read when the store opens (imkit.rules.bans).
        self.bans: list[dict[str, Any]] = []
        self._address_secret = new_secret()  # a file or Redis keeps theirs (below)
        # Accounts by name key, and the private messages waiting for each (oldest first):
        # read when the store opens and kept current by the methods below, so that the
        # hub decides at once (is a name reserved? is there room in a mailbox?).
        self.accounts: dict[str, Account] = {}
        # Keys of accounts being added (their password is hashed meanwhile): a second
        # `imkit account add` of the same name is refused rather than raced.
        self.adding: set[str] = set()
        self.mailboxes: dict[str, list[ChatMessage]] = {}
        # The newest public messages, for replay on connect: it must not wait for a query.
        self._recent: collections.deque[ChatMessage] = collections.deque(maxlen=HISTORY_MAX)
        self._lobby = DEFAULT_LOBBY
        # Registered rooms by room key: the fields of RoomState.fields(), read when the
        # store opens (imkit room add keeps a room across restarts).
        self.rooms: dict[str, dict[str, Any]] = {}
        # The rooms each account is in (account key -> {room key: room name}, in the
        # order joined), read when the store opens: a login puts the account back in them.
        self.account_rooms: dict[str, dict[str, str]] = {}
        # Webhooks of both kinds by name key (imkit.rules.hooks), read when the store
        # opens; a cluster's are in Redis instead (imkit.cluster.store).
        self._hooks: dict[str, Hook] = {}

    # ------------------------------------------------------------------ the lobby

    @property
    def lobby(self) -> str:
        """The lobby's name (``--lobby``), given to the lobby's messages read back."""
        return self._lobby

    @lobby.setter
    def lobby(self, name: str) -> None:
        # Set once, as the server starts, perhaps after the store has primed the replay
        # from its file: those messages take the name too.
        self._lobby = name
        renamed = [replace(m, room=name) if m.lobby else m for m in self._recent]
        self._recent.clear()
        self._recent.extend(renamed)

    def as_read(self, message: ChatMessage) -> ChatMessage:
        """``message`` as the store gives it back: a public message without a room is
        the lobby's, named :attr:`lobby`."""
        if message.to is None and message.room is None:
            return replace(message, room=self._lobby, lobby=True)
        return message

    # ------------------------------------------------------------------ the seam

    @property
    def address_secret(self) -> bytes:
        """The key of the pseudonyms shown for addresses (``--hide-addresses``,
        :mod:`imkit.rules.pseudonyms`): random in memory, kept in the SQLite file and in a
        cluster's Redis, so that a pseudonym outlives a restart."""
        return self._address_secret

    def new_msgid(self, timestamp: float) -> str:
        """A msgid for a message accepted at ``timestamp``, greater than every other."""
        return format_msgid(self._ids.next(timestamp))

    def append(
        self, message: ChatMessage, stored: Stored | None = None, conversation: str | None = None
    ) -> None:
        """Keep ``message`` (delivered already); ``stored`` is told the outcome.

        A public message goes to history: a room's (``room`` set, ``lobby`` False) under
        its room's key, found by :meth:`history` with that key; the lobby's is kept for
        replay too (:meth:`remember`). A private one is kept only between two accounts:
        ``conversation`` is then their :func:`~imkit.rules.accounts.conversation_key`,
        under which :meth:`conversation` finds it.
        """
        if message.to is None:
            if message.room is None or message.lobby:
                self.remember(message)
        elif conversation is None:
            if stored is not None:
                stored(None)
            return
        self._append(message, stored, conversation)

    def remember(self, message: ChatMessage) -> None:
        """Keep a public message for replay (a cluster node: one read from Redis)."""
        self._recent.append(message)

    def recent(self, count: int) -> tuple[ChatMessage, ...]:
        """The last ``count`` messages of the lobby still within retention, oldest first."""
        cutoff = self.cutoff()
        newest = [m for m in list(self._recent)[-count:] if message_number(m) >= cutoff]
        return tuple(self.as_read(m) for m in newest)

    @abstractmethod
    def history(
        self, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        """The ``limit`` newest public messages before msgid ``before`` (None: the newest
        of all), oldest first, within retention: the lobby's (``room`` None) or those of
        the room whose key (:func:`~imkit.rules.rooms.room_key`) is ``room``."""

    @abstractmethod
    def search(
        self, words: Words, limit: int, before: str | None, answer: Answer, room: str | None = None
    ) -> None:
        """Like :meth:`history` (the same page: the ``limit`` newest before ``before``,
        oldest first, within retention, the lobby's or the room ``room``'s), but only the
        messages that have every one of ``words`` (:mod:`imkit.rules.search`: a file
        through its index, the others by a scan)."""

    @abstractmethod
    def delete_messages(
        self, ids: list[int] | None, sender_key: str | None, since: int, done: Deleted
    ) -> None:
        """Delete public messages from history (imkit history delete), rooms' too: those
        with the msgid numbers ``ids``, or, with ``ids`` None, every one sent under a name
        whose key is ``sender_key`` from msgid number ``since`` on."""

    def find_message(self, number: int, answer: Found) -> None:
        """The public message (the lobby's or a room's) with msgid number ``number``,
        within retention. A store that keeps no history finds none."""
        answer(None)

    def amend_message(self, number: int, text: str | None, edited: float, done: Stored) -> None:
        """The one way a stored message's text changes (docs/integrations.md, "Delete and
        edit"): ``text`` None deletes the public message ``number`` (its text gone,
        no tombstone kept), else its text becomes ``text``, edited at ``edited``. The
        replay in memory follows (:meth:`amend_recent`). ``done`` gets
        :data:`MESSAGE_GONE` when there was no such message (any more)."""
        done("this store cannot change messages")

    def amend_recent(self, number: int, text: str | None, edited: float) -> None:
        """The replay in memory after a message was deleted (``text`` None) or edited."""
        if text is None:
            self.forget([number])
            return
        changed = [
            replace(m, text=text, edited=edited) if message_number(m) == number else m
            for m in self._recent
        ]
        self._recent.clear()
        self._recent.extend(changed)

    def forget(self, numbers: list[int]) -> None:
        """Drop deleted messages from the newest kept in memory (the replay)."""
        gone = set(numbers)
        kept = [m for m in self._recent if message_number(m) not in gone]
        self._recent.clear()
        self._recent.extend(kept)

    def conversation(self, pair: str, limit: int, before: str | None, answer: Answer) -> None:
        """A page of the private conversation ``pair`` (a conversation_key), like
        :meth:`history`: the ``limit`` newest before ``before``, oldest first."""
        answer(Page((), False))  # a store that keeps no private messages

    # ------------------------------------------------------------ accounts

    def save_account(self, account: Account, done: Stored) -> None:
        """Keep ``account`` (new, or replacing the one with its key: a new password, a
        login time); :attr:`accounts` has it once ``done`` is told it is stored."""
        self.accounts[account.key] = account
        done(None)

    def update_account(self, key: str, changes: dict[str, Any], done: Stored) -> None:
        """Change some fields of the account ``key`` (names of :meth:`Account.fields`)
        and leave the others as they are by then, so that a login time, a new password
        and a mute made at the same time never undo one another, and a change never
        brings back an account removed meanwhile (``done`` gets :data:`ACCOUNT_GONE`)."""
        current = self.accounts.get(key)
        if current is None:
            done(ACCOUNT_GONE)
            return
        self.accounts[key] = Account.from_fields(current.fields() | changes)
        done(None)

    def delete_account(self, key: str, done: Stored) -> None:
        """Forget the account ``key``, discard its waiting messages, and the messages it
        sent that still wait for others (:meth:`_forget_mail_from`)."""
        self.accounts.pop(key, None)
        self.mailboxes.pop(key, None)
        self.account_rooms.pop(key, None)
        self._forget_mail_from(key)
        done(None)

    def add_mail(self, key: str, message: ChatMessage, done: Stored) -> None:
        """Keep a private message for the offline account ``key``. It counts in
        :attr:`mailboxes` at once (the hub checks the limit there); when it cannot be
        stored it is taken out again and ``done`` is told why."""
        self._post_mail(key, message)
        done(None)

    def mail_for(self, key: str) -> list[ChatMessage]:
        """The messages waiting for ``key`` within --offline-days, oldest first; they
        stay in the mailbox until :meth:`mail_delivered` says each was written to the
        client, so that a client dropped before (it stopped reading, its connection
        broke) gets them at its next login. Expired ones are removed, never delivered."""
        waiting = self.mailboxes.get(key, [])
        cutoff = self.mail_cutoff()
        current = [m for m in waiting if message_number(m) >= cutoff]
        if len(current) < len(waiting):
            self._drop_mail(key, [m for m in waiting if message_number(m) < cutoff])
        return current

    def mail_delivered(self, key: str, message: ChatMessage) -> None:
        """``message`` (from :meth:`mail_for`) was written to ``key``'s client: it
        leaves the mailbox, with any older one still there."""
        self._drop_mail(key, [message])

    def _drop_mail(self, key: str, messages: list[ChatMessage]) -> None:
        """Take ``messages`` and those older than them out of ``key``'s mailbox (a
        store on disk deletes them there too)."""
        last = max(message_number(m) for m in messages)
        box = [m for m in self.mailboxes.get(key, []) if message_number(m) > last]
        if box:
            self.mailboxes[key] = box
        else:
            self.mailboxes.pop(key, None)

    def waiting(self, key: str) -> int:
        """How many messages wait for the account ``key`` (within --offline-days)."""
        cutoff = self.mail_cutoff()
        return sum(1 for m in self.mailboxes.get(key, ()) if message_number(m) >= cutoff)

    def mail_cutoff(self) -> int:
        """The smallest msgid number of a waiting message still within --offline-days."""
        if self.offline_days <= 0:
            return 0
        return msgid_floor(self.clock() - self.offline_days * DAY)

    # ------------------------------------------------------------ bans

    def save_ban(self, fields: dict[str, Any], done: Stored) -> None:
        """Keep a ban (replacing one on the same target); ``done`` gets the outcome."""
        done(None)  # in memory: the hub's own list is all there is

    def delete_ban(self, target: str, done: Stored) -> None:
        done(None)

    # ------------------------------------------------------------ rooms

    def save_room(self, key: str, fields: dict[str, Any], done: Stored) -> None:
        """Keep the registered room ``key`` (a room key) with ``fields`` (RoomState.fields),
        new or replacing its settings; :attr:`rooms` has them once ``done`` is told so."""
        self.rooms[key] = fields
        done(None)

    def delete_room(self, key: str, done: Stored) -> None:
        """Forget the registered room ``key`` (accounts' rooms are left as they are)."""
        self.rooms.pop(key, None)
        done(None)

    def remember_room(self, account_key: str, room_key: str, room_name: str) -> None:
        """The account ``account_key`` is in the room ``room_key`` (named ``room_name``):
        in :attr:`account_rooms` at once (after the rooms it joined before); a store on
        disk writes it in the background and logs when it cannot."""
        self.account_rooms.setdefault(account_key, {})[room_key] = room_name

    def forget_room(self, account_key: str, room_key: str) -> None:
        """The account ``account_key`` left the room ``room_key`` (a part, a kick)."""
        joined = self.account_rooms.get(account_key)
        if joined is not None:
            joined.pop(room_key, None)
            if not joined:
                del self.account_rooms[account_key]

    # ------------------------------------------------------------ webhooks

    def hooks(self, answer: HooksAnswer) -> None:
        """Every hook, incoming and outgoing, by name key (docs/integrations.md); or
        why they cannot be read now (a cluster's Redis)."""
        answer(dict(self._hooks))

    def save_hook(self, hook: Hook, done: Stored) -> None:
        """Keep ``hook`` (new, or replacing the one with its name key); :meth:`hooks`
        has it once ``done`` is told it is stored."""
        self._hooks[hook.key] = hook
        done(None)

    def remove_hook(self, key: str, done: Stored) -> None:
        """Forget the hook whose name key is ``key`` (none: nothing changes)."""
        self._hooks.pop(key, None)
        done(None)

    def start(self) -> None:
        """Called on the event loop before the first message (threads start here)."""
        return  # a store in memory has nothing to start

    async def flush(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound, not a deadline
        """Wait (at most ``timeout`` seconds) until everything appended is stored."""
        return  # a store in memory stores at once

    async def close(self) -> None:
        """Store what is pending and release the store."""
        return  # a store in memory holds nothing to release

    @property
    def description(self) -> str:
        """Where messages are kept, for the log."""
        return "memory"

    # ------------------------------------------------------------ for subclasses

    @abstractmethod
    def _append(
        self, message: ChatMessage, stored: Stored | None, conversation: str | None
    ) -> None: ...

    def cutoff(self) -> int:
        """The smallest msgid number still within retention (0: everything is)."""
        if self.retain_days <= 0:
            return 0
        return msgid_floor(self.clock() - self.retain_days * DAY)

    def _post_mail(self, key: str, message: ChatMessage) -> None:
        """Put ``message`` in ``key``'s mailbox in memory, dropping the expired ones
        first: they will never be delivered, so they must not count for the limit."""
        cutoff = self.mail_cutoff()
        box = self.mailboxes.setdefault(key, [])
        box[:] = [m for m in box if message_number(m) >= cutoff]
        box.append(message)

    def _sender_spellings(self, key: str) -> set[str]:
        """The spellings of the account ``key``'s name that the messages it sent carry
        (``account``), its own included: what a file matches to delete them."""
        spellings = {self.accounts[key].name} if key in self.accounts else set()
        for box in self.mailboxes.values():
            spellings.update(m.account for m in box if m.account and _sent_by(m, key))
        return spellings

    def _forget_mail_from(self, key: str) -> None:
        """Take the messages that the account ``key`` sent out of every mailbox in
        memory (they still wait for their recipients).

        Deleted rather than kept as a guest's: a message marked ``account`` says the
        account's owner sent it, and once the name is free that would vouch for whoever
        is given it next; and the conversation it belongs to is deleted with the
        account, so it could never be found in history either."""
        for owner, box in list(self.mailboxes.items()):
            kept = [m for m in box if not _sent_by(m, key)]
            if len(kept) == len(box):
                continue
            if kept:
                self.mailboxes[owner] = kept
            else:
                del self.mailboxes[owner]

    def _remember(self, last_id: int, newest: Iterable[ChatMessage]) -> None:
        """After a restart: ids go on from ``last_id``; ``newest`` primes the replay."""
        self._ids = MessageIds(max(self._ids.last, last_id))
        self._recent.extend(newest)


def _sent_by(message: ChatMessage, key: str) -> bool:
    """Whether the account ``key`` (a name key) sent ``message``."""
    return message.account is not None and name_key(message.account) == key


def message_number(message: ChatMessage) -> int:
    return parse_msgid(message.msgid or "") or 0


def before_number(before: str | None) -> int:
    """The exclusive upper bound of a history request (a well-formed msgid or None)."""
    if before is None:
        return 1 << 62
    number = parse_msgid(before)
    assert number is not None, "the protocol checks msgids"
    return number
