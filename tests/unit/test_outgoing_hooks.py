"""Outgoing webhooks, the pure parts: the body and its signature, which messages a hook
takes, the queue's bound before any sender runs, the backoff, the URL checks, reading a
reply. The POSTs themselves are tests/server/test_outgoing_hooks.py."""

from __future__ import annotations

import json

import pytest

from imkit.protocol import ChatMessage
from imkit.rules.hooks import OutgoingHook, parse_url, signature, signature_matches, url_problem
from imkit.server.hook_post import reply_text
from imkit.server.outgoing_hooks import OutgoingDeliveries, backoff, payload

HOOK = OutgoingHook("Deploybot", "#builds", "http://127.0.0.1:9/h", "s3cret", ("deploy",))


def message(text: str, msgid: str = "1800000000000000", **fields: object) -> ChatMessage:
    fields.setdefault("room", "#Builds")
    return ChatMessage("alex", "1.2.3.4:5", None, text, 1_800_000_000.25, msgid, **fields)  # type: ignore[arg-type]


def test_the_body_has_the_documented_fields_and_is_signed() -> None:
    body = payload(HOOK, message("Deploy é now", account="alex"))
    assert json.loads(body) == {
        "hook": "Deploybot",
        "room": "#Builds",
        "name": "alex",
        "account": "alex",
        "text": "Deploy é now",
        "msgid": "1800000000000000",
        "time": "2027-01-15T08:00:00.250Z",
        "trigger": "deploy",
    }
    assert body.isascii() and b"\\u00e9" in body
    header = signature(HOOK.secret, body)
    assert signature_matches(HOOK.secret, body, header)
    assert not signature_matches(HOOK.secret, body + b" ", header)


def test_offer_queues_what_triggers_and_bounds_the_queue() -> None:
    silent = OutgoingHook("quiet", "#builds", "http://127.0.0.1:9/q", "k")  # no triggers
    engine = OutgoingDeliveries(lambda room: [HOOK, silent] if room == "#builds" else [])
    engine.queue_limit = 3
    engine.offer(message("deploy 1"))
    engine.offer(message("hello"))
    engine.offer(message("deploy 2", bot=True))
    engine.offer(message("deploy 3", notice=True))
    engine.offer(ChatMessage("deploybot", "a", None, "deploy 4", 1.0, "1", room="#builds"))
    assert (engine.status("deploybot").queued, engine.status("QUIET").queued) == (1, 2)
    for n in range(5):
        engine.offer(message(f"deploy {n}"))
    status = engine.status("deploybot")
    assert (status.queued, status.failed, status.delivered) == (3, 3, 0)
    assert status.last_error == "queue full (3): the oldest message dropped"
    assert engine.status("nobody").queued == 0


def test_a_provider_that_fails_does_not_reach_the_chat() -> None:
    def broken(room: str) -> list[OutgoingHook]:
        raise RuntimeError("the store is gone")

    OutgoingDeliveries(broken).offer(message("deploy"))  # no exception


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    assert [backoff(n, 1.0, 30.0, lambda: 0.5) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff(1, 1.0, 30.0, lambda: 0.0) == 0.5
    assert backoff(2, 1.0, 30.0, lambda: 0.999) == pytest.approx(2.998)
    assert backoff(10, 1.0, 30.0, lambda: 0.5) == 30


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://host/", "http:// or https://"),
        ("http:///path", "no host"),
        ("http://user:pw@host/", "user name or password"),
        ("http://host:99999/", "not a URL"),
        ("http://host/a b", "spaces"),
        ("http://h/" + "x" * 2000, "longer than"),
    ],
)
def test_urls_that_cannot_be_posted_to(url: str, problem: str) -> None:
    found = url_problem(url)
    assert found is not None and problem in found


def test_a_url_becomes_where_to_connect() -> None:
    target = parse_url("https://[::1]:8443/hooks/x?a=1#frag")
    assert (target.secure, target.host, target.port) == (True, "::1", 8443)
    assert (target.target, target.authority) == ("/hooks/x?a=1", "[::1]:8443")
    plain = parse_url("http://example.org")
    assert (plain.port, plain.target, plain.authority) == (80, "/", "example.org")
    assert url_problem("http://example.org/ok") is None


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"text": "pong"}', "pong"),
        (b'{"text": "  "}', None),
        (b'{"text": 3}', None),
        (b'["text"]', None),
        (b"pong", None),
        (b"\xff", None),
        (b"", None),
    ],
)
def test_a_reply_is_posted_only_when_it_has_a_text(body: bytes, text: str | None) -> None:
    assert reply_text(body) == text
