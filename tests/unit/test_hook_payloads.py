"""An incoming webhook's body into the line it posts (imkit.rules.hook_payloads), and
each hook's rate limit (imkit.server.hooks.HookRate): pure."""

from __future__ import annotations

import json
from urllib.parse import quote

from imkit.rules.hook_payloads import (
    MAX_ATTACHMENTS,
    HookPayload,
    PayloadProblem,
    clip,
    parse_body,
)
from imkit.rules.hooks import chosen_name
from imkit.server.hooks import HookRate
from tests.support.hooks import ALERTMANAGER, GRAFANA

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def test_a_text_is_posted_as_it_is_and_username_read() -> None:
    body = json.dumps({"text": "deploy ok", "username": " ci ", "channel": "#other"})
    assert parse_body(body.encode(), JSON) == HookPayload("deploy ok", "ci")
    assert parse_body(b'{"text":"x"}', "Application/JSON; charset=utf-8") == HookPayload("x")


def test_several_lines_become_one_message() -> None:
    body = json.dumps({"text": "first\n\n  second  \r\nthird"}).encode()
    assert parse_body(body, JSON) == HookPayload("first | second | third")


def test_slacks_form_encoding_carries_the_same_json() -> None:
    body = "payload=" + quote(json.dumps({"text": "via form & more"}))
    assert parse_body(body.encode(), FORM) == HookPayload("via form & more")
    assert parse_body(b"text=hello", FORM) == PayloadProblem(
        400, "a form body needs a 'payload' field (JSON)"
    )


def test_alertmanagers_alert_is_in_its_attachment_only() -> None:
    payload = parse_body(json.dumps(ALERTMANAGER).encode(), JSON)
    assert payload == HookPayload(
        "[FIRING:1] InstanceDown (node-exporter prod) "
        "<http://alertmanager.example:9093/#/alerts?receiver=imkit>",
        "alertmanager",
    )


def test_grafanas_attachment_keeps_title_and_every_line_of_its_text() -> None:
    payload = parse_body(json.dumps(GRAFANA).encode(), JSON)
    assert isinstance(payload, HookPayload)
    assert payload.text == (
        "[FIRING:1] HighCPU (web-1) <http://grafana.example:3000/alerting/list> | **Firing** | "
        "Value: B=97.2 | Labels: | - alertname = HighCPU | - instance = web-1 | Annotations: | "
        "- summary = CPU over 95%"
    )


def test_fields_and_fallback() -> None:
    fields = {"fields": [{"title": "env", "value": "prod"}, {"title": "n", "value": 3}]}
    assert parse_body(json.dumps({"attachments": [fields]}).encode(), JSON) == HookPayload(
        "env: prod | n: 3"
    )
    only_fallback = {"attachments": [{"fallback": "plain", "color": "good"}]}
    assert parse_body(json.dumps(only_fallback).encode(), JSON) == HookPayload("plain")
    many = {"attachments": [{"text": str(n)} for n in range(MAX_ATTACHMENTS + 5)]}
    payload = parse_body(json.dumps(many).encode(), JSON)
    assert isinstance(payload, HookPayload)
    assert payload.text.split(" | ") == [str(n) for n in range(MAX_ATTACHMENTS)]


def test_what_is_refused_and_why() -> None:
    assert parse_body(b"{nope", JSON).status == 400  # type: ignore[union-attr]
    assert parse_body(b"[1]", JSON) == PayloadProblem(400, "the payload is not a JSON object")
    assert parse_body(b'{"text":"  \\n "}', JSON).status == 400  # type: ignore[union-attr]
    assert parse_body(b'{"attachments":{}}', JSON) == PayloadProblem(
        400, "'attachments' is not a list"
    )
    assert parse_body(b"\xff", JSON) == PayloadProblem(400, "the body is not UTF-8")
    problem = parse_body(b'{"text":"x"}', "text/plain")
    assert isinstance(problem, PayloadProblem) and problem.status == 415
    assert parse_body(b'{"text":"x"}', None).status == 415  # type: ignore[union-attr]


def test_a_long_text_is_clipped_with_an_ellipsis() -> None:
    assert clip("abcdef", 10) == "abcdef"
    assert clip("abcdef", 4) == "a\u2026"  # bytes, as --max-line counts: the ellipsis is 3
    assert clip("\u00fc" * 10, 9) == "\u00fc" * 3 + "\u2026"  # never half a character
    assert clip("\u00fc" * 10, 8) == "\u00fc" * 2 + "\u2026"
    assert all(len(clip("\u00fc\U0001f600" * 50, n).encode()) <= n for n in range(3, 60))


def test_a_username_only_when_allowed_and_a_name() -> None:
    assert chosen_name("ci", "deploy", allow_username=False) is None
    assert chosen_name("ci", "deploy", allow_username=True) == "deploy"
    assert chosen_name("ci", "has space", allow_username=True) is None
    assert chosen_name("ci", None, allow_username=True) is None


def test_the_rate_limit_is_a_burst_then_one_a_second() -> None:
    rate = HookRate(burst=3, per_second=1.0)
    assert [rate.take("ci", 100.0) for _ in range(3)] == [None, None, None]
    assert rate.take("ci", 100.0) == 1
    assert rate.take("other", 100.0) is None  # each hook its own bucket
    assert rate.take("ci", 101.0) is None  # a second later: one more
    assert rate.take("ci", 101.0) == 1


def test_an_irc_client_with_message_tags_sees_the_bot_tag() -> None:
    from imkit.irc.render import chat_line
    from imkit.protocol import ChatMessage

    event = ChatMessage("ci", "webhook", None, "done", 0.0, "1", None, "#ops", bot=True)
    assert chat_line(event, frozenset({"message-tags"})) == (
        "@msgid=1;bot :ci!~u@webhook PRIVMSG #ops :done\r\n"
    )
    assert chat_line(event, frozenset()) == ":ci!~u@webhook PRIVMSG #ops :done\r\n"
