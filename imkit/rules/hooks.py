"""Webhooks (docs/integrations.md): what a hook is, its key and secret, signing.

Pure: no sockets, no store. Two kinds, each locked to one room:

* an **incoming** hook (:class:`IncomingHook`) posts what an HTTP client sends to
  ``/hooks/KEY`` into its room as its name, marked as a bot. Its key is 32 random bytes
  (``secrets.token_urlsafe``): with that much entropy a plain SHA-256 is as safe to keep
  as a slow password hash, and lets a request be matched in one lookup. Only the digest is
  kept (:func:`key_digest`); a request's key is compared to it in constant time
  (:func:`hmac.compare_digest`, in ``imkit.server.hooks``).
* an **outgoing** hook (:class:`OutgoingHook`) POSTs the room's messages (those whose
  first word is one of its triggers, or all) to a URL, signed with HMAC-SHA256 of the
  body under the hook's secret (:func:`signature`, the ``X-Imkit-Signature`` header, as
  GitHub signs its webhooks). The secret signs, so it is kept as it is; it is shown once,
  when the hook is made, and never listed.

A hook's name is a user name (:func:`imkit.rules.names.name_problem`), compared by its
name key; one name is one hook, of either kind.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from imkit.rules.names import name_key, name_problem

# The header an outgoing hook's POST carries its signature in, and the signature's prefix.
SIGNATURE_HEADER = "X-Imkit-Signature"
SIGNATURE_PREFIX = "sha256="
# Random bytes in an incoming hook's key and an outgoing hook's secret.
KEY_BYTES = 32
# Triggers an outgoing hook may have, and a trigger's length in characters.
MAX_TRIGGERS = 20
MAX_TRIGGER_LENGTH = 50
# The longest URL an outgoing hook may POST to.
MAX_URL_LENGTH = 2000
# The name an incoming hook posts as when it was made without --name.
DEFAULT_INCOMING_NAME = "webhook"


def new_key() -> str:
    """A new incoming hook's key, or outgoing hook's secret: URL-safe, 43 characters."""
    return secrets.token_urlsafe(KEY_BYTES)


def key_digest(key: str) -> str:
    """What is kept of an incoming hook's key (hex SHA-256)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def signature(secret: str, body: bytes) -> str:
    """The ``X-Imkit-Signature`` of ``body`` under ``secret``: ``sha256=`` + hex HMAC."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + mac


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is ``body``'s signature under ``secret`` (what a receiver checks)."""
    return hmac.compare_digest(signature(secret, body), header.strip())


def trigger_problem(word: str) -> str | None:
    """Why ``word`` cannot be an outgoing hook's trigger, or None when it can."""
    if not word or len(word) > MAX_TRIGGER_LENGTH:
        return f"a trigger is one word of 1 to {MAX_TRIGGER_LENGTH} characters"
    if any(character.isspace() for character in word) or not word.isprintable():
        return "a trigger is one word (no spaces, no control characters)"
    return None


def first_word(text: str) -> str:
    """A message's first word, case-folded (what triggers are compared with)."""
    words = text.split(maxsplit=1)
    return words[0].casefold() if words else ""


@dataclass(frozen=True, slots=True)
class IncomingHook:
    """An incoming hook: its name, its room (the room's key, e.g. ``#builds``), the
    digest of its key, whether a payload's ``username`` may replace its name."""

    name: str
    room: str
    digest: str
    allow_username: bool = False
    created: float = 0.0

    @property
    def key(self) -> str:
        """The hook's name key: one name is one hook."""
        return name_key(self.name)

    def fields(self) -> dict[str, Any]:
        """As kept in the store (JSON)."""
        return {
            "kind": "incoming",
            "name": self.name,
            "room": self.room,
            "digest": self.digest,
            "allow_username": self.allow_username,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class OutgoingHook:
    """An outgoing hook: its name, its room's key, the URL it POSTs to, its secret, its
    triggers (case-folded; empty: every message)."""

    name: str
    room: str
    url: str
    secret: str = field(repr=False)  # never in a log line or a traceback
    triggers: tuple[str, ...] = ()
    created: float = 0.0

    @property
    def key(self) -> str:
        """The hook's name key: one name is one hook."""
        return name_key(self.name)

    def triggered_by(self, text: str) -> bool:
        """Whether a message with this text is POSTed: its first word is a trigger
        (case-insensitive), or the hook has none."""
        return not self.triggers or first_word(text) in self.triggers

    def fields(self) -> dict[str, Any]:
        """As kept in the store (JSON)."""
        return {
            "kind": "outgoing",
            "name": self.name,
            "room": self.room,
            "url": self.url,
            "secret": self.secret,
            "triggers": list(self.triggers),
            "created": self.created,
        }


Hook = IncomingHook | OutgoingHook


def hook_from_fields(fields: dict[str, Any]) -> Hook:
    """A hook from what :meth:`IncomingHook.fields` or :meth:`OutgoingHook.fields` kept."""
    if fields["kind"] == "incoming":
        return IncomingHook(
            name=fields["name"],
            room=fields["room"],
            digest=fields["digest"],
            allow_username=bool(fields.get("allow_username")),
            created=float(fields.get("created", 0.0)),
        )
    return OutgoingHook(
        name=fields["name"],
        room=fields["room"],
        url=fields["url"],
        secret=fields["secret"],
        triggers=tuple(word.casefold() for word in fields.get("triggers", ())),
        created=float(fields.get("created", 0.0)),
    )


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """What an outgoing hook's deliveries came to on one node since it started: POSTs
    waiting (queued), answered 2xx (delivered), given up after every retry or dropped
    because the queue was full (failed), and the last failure's reason and time."""

    queued: int = 0
    delivered: int = 0
    failed: int = 0
    last_error: str | None = None
    last_error_time: float | None = None


# The address shown for a message a hook posted (where a user's message shows its own).
HOOK_ADDR = "webhook"
# What a post as a hook came to (:class:`PostOutcome`'s ``status``): stored (``detail``
# is its msgid), the hook's room is gone, or the store or the cluster cannot take it.
POSTED = "ok"
NO_ROOM = "no_room"
NOT_TAKEN = "unavailable"


@dataclass(frozen=True, slots=True)
class PostOutcome:
    """What posting a message as a hook came to: :data:`POSTED` (``detail``: the
    msgid; ``sender``: the name it was posted as), :data:`NO_ROOM` or
    :data:`NOT_TAKEN` (``detail``: why)."""

    status: str
    detail: str
    sender: str = ""


def chosen_name(hook_name: str, username: str | None, allow_username: bool) -> str | None:
    """The name a payload's ``username`` asks to post as, when the hook allows it and it
    is a valid name; None: the hook's own name. (Whether someone holds it, or an account
    has it, is the backend's to check: then the hook's own name too.)"""
    if not allow_username or username is None or name_problem(username) is not None:
        return None
    return None if name_key(username) == name_key(hook_name) else username


@dataclass(frozen=True, slots=True)
class Target:
    """Where a hook's URL says to POST: ``https``, host, port and the request target."""

    secure: bool
    host: str
    port: int
    target: str  # the path and query, as sent on the request line
    authority: str  # the Host header


def parse_url(url: str) -> Target:
    """``url`` as a :class:`Target`; ValueError with a reason for what cannot be POSTed
    to (not http or https, no host, a bad port, user info, too long). A fragment
    (``#...``) is not sent, as browsers do."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:  # a port that is not a number, an unclosed [
        raise ValueError(f"not a URL: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("an outgoing hook's URL is http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL may not carry a user name or password")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("the URL may not contain spaces or control characters")
    secure = parts.scheme == "https"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(
        secure=secure,
        host=parts.hostname,
        port=port or (443 if secure else 80),
        target=target,
        authority=parts.netloc,
    )


def url_problem(url: str) -> str | None:
    """Why an outgoing hook cannot POST to ``url``, or None when it can."""
    try:
        parse_url(url)
    except ValueError as error:
        return str(error)
    return None
