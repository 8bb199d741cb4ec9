"""What an incoming webhook's POST says (docs/integrations.md, "Incoming webhooks"):
the body, as Slack and Mattermost define it, into the one line of text posted.

Pure: no sockets. Two encodings are accepted (:func:`parse_body`):

* ``application/json``: ``{"text": ..., "username": ..., "icon_url": ...,
  "channel": ..., "attachments": [...]}``;
* ``application/x-www-form-urlencoded`` with ``payload=<that JSON>`` (Slack's legacy
  form, what ``curl -d payload=...`` sends).

The text is the payload's ``text`` followed by each attachment's ``pretext``, ``title``
(with its ``title_link``), ``text`` and ``fields`` (``title: value``), or its
``fallback`` when it has none of those: Alertmanager's default Slack template sends its
alert only in an attachment's title, text and fallback, and Grafana's notifier the same
with fields. Every non-empty line of all that is kept, stripped, and the lines are
joined with :data:`LINE_JOIN` into **one message** (chat lines are single lines; one
message keeps a POST atomic: stored whole or refused whole). ``channel`` and
``icon_url`` are read and ignored (a hook is locked to its room; imkit shows no icons).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# The largest body accepted (413 above it): Alertmanager's grouped alerts fit easily.
MAX_BODY = 64 * 1024
# Lines of a multi-line text (and of attachments) become one message, joined by this.
LINE_JOIN = " | "
# Attachments read from one payload; the rest are ignored.
MAX_ATTACHMENTS = 20
# Content types, as the Content-Type header names them (parameters ignored).
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class HookPayload:
    """What a POST asks: the text to post (one line) and the ``username`` it gives
    (None: none; used only by a hook made with ``--allow-username``)."""

    text: str
    username: str | None = None


@dataclass(frozen=True, slots=True)
class HookReply:
    """The answer to a hook's POST: its status, the reason (the body's one line), how
    many seconds to wait (429: Retry-After), the msgid of the message posted (200)."""

    status: int
    reason: str
    retry_after: int | None = None
    msgid: str | None = None


@dataclass(frozen=True, slots=True)
class PayloadProblem:
    """Why a body was refused: the HTTP status (400, 415) and the reason for its body."""

    status: int
    reason: str


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower case, without its parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(body: bytes, content_type: str | None) -> HookPayload | PayloadProblem:
    """The payload of a POST's body, or why it is refused (400 bad JSON or no text,
    415 a content type that is neither JSON nor Slack's form)."""
    kind = media_type(content_type)
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        return PayloadProblem(400, "the body is not UTF-8")
    if kind == FORM_TYPE:
        form = parse_qs(decoded, keep_blank_values=True)
        if "payload" not in form:
            return PayloadProblem(400, "a form body needs a 'payload' field (JSON)")
        decoded = form["payload"][0]
    elif kind != JSON_TYPE:
        shown = kind or "none"
        reason = f"content type {shown} is not {JSON_TYPE} or {FORM_TYPE} (payload=...)"
        return PayloadProblem(415, reason)
    try:
        fields = json.loads(decoded)
    except ValueError as error:
        return PayloadProblem(400, f"the payload is not JSON: {error}")
    if not isinstance(fields, dict):
        return PayloadProblem(400, "the payload is not a JSON object")
    return payload_of(fields)


def payload_of(fields: dict[str, Any]) -> HookPayload | PayloadProblem:
    """A decoded JSON payload as the message to post (400: nothing to post)."""
    lines = _lines(fields.get("text"))
    attachments = fields.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        return PayloadProblem(400, "'attachments' is not a list")
    for attachment in (attachments or [])[:MAX_ATTACHMENTS]:
        if isinstance(attachment, dict):
            lines.extend(attachment_lines(attachment))
    if not lines:
        return PayloadProblem(400, "the payload has no text (nor attachments with any)")
    username = fields.get("username")
    username = username.strip() if isinstance(username, str) and username.strip() else None
    return HookPayload(LINE_JOIN.join(lines), username)


def attachment_lines(attachment: dict[str, Any]) -> list[str]:
    """An attachment's lines: pretext, title (and its link), text, fields; its
    fallback only when it has none of those (Slack shows the fallback where it cannot
    show the rest: it repeats them)."""
    lines = _lines(attachment.get("pretext"))
    title = _lines(attachment.get("title"))
    link = attachment.get("title_link")
    if title and isinstance(link, str) and link.strip():
        title[-1] = f"{title[-1]} <{link.strip()}>"
    lines += title
    lines += _lines(attachment.get("text"))
    fields = attachment.get("fields")
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, dict):
            name, value = _flat(field.get("title")), _flat(field.get("value"))
            if name or value:
                lines.append(f"{name}: {value}" if name and value else name or value)
    return lines or _lines(attachment.get("fallback"))


def _lines(value: Any) -> list[str]:
    """The non-empty lines of a string, stripped (nothing for any other value)."""
    if not isinstance(value, str):
        return []
    return [line.strip() for line in value.splitlines() if line.strip()]


def _flat(value: Any) -> str:
    """A field's title or value as one line ("" for a non-string)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return LINE_JOIN.join(_lines(value))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 (as --max-line counts a line), on a
    character boundary, the cut marked with an ellipsis (a long alert is shown shortened
    rather than refused: its sender cannot shorten it)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    ellipsis = "\u2026"  # three bytes
    return data[: max(limit - 3, 0)].decode("utf-8", "ignore") + ellipsis
