"""Incoming webhooks for the tests: a POST with the real ``curl`` (as a CI job or a
shell script sends one), its answer parsed; and the payload shapes Alertmanager and
Grafana really send (their Slack notifiers), for tests/behaviour/test_hooks.py and
tests/process/test_hooks_cli.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import anyio

CURL = shutil.which("curl")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


def parse_curl(output: bytes) -> Answer:
    """``curl -i`` output: the last response's status, headers and body (a ``100
    Continue`` before it skipped)."""
    text = output.decode("utf-8", "replace")
    while True:
        head, _, rest = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        if status != 100:
            break
        text = rest
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status, headers, rest)


def curl_args(url: str, content_type: str | None, method: str = "POST") -> list[str]:
    assert CURL is not None, "the tests of webhooks need curl"
    args = [CURL, "-s", "-i", "-X", method, "--max-time", "20", "--data-binary", "@-"]
    if content_type is not None:
        args += ["-H", f"Content-Type: {content_type}"]
    return [*args, url]


async def curl(
    url: str, body: bytes | str, content_type: str | None = "application/json", method: str = "POST"
) -> Answer:
    """POST ``body`` to ``url`` with curl (in a thread: the event loop goes on serving)."""
    data = body.encode() if isinstance(body, str) else body
    done = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            curl_args(url, content_type, method), input=data, capture_output=True, timeout=30
        )
    )
    assert done.returncode == 0, done.stderr
    return parse_curl(done.stdout)


async def post_json(url: str, payload: dict[str, Any]) -> Answer:
    return await curl(url, json.dumps(payload))


# Alertmanager's Slack notifier with its default templates (slack.default.title,
# .fallback, .titlelink; text and pretext empty): the alert is only in the attachment.
ALERTMANAGER = {
    "channel": "#alerts",
    "username": "alertmanager",
    "icon_emoji": "",
    "icon_url": "",
    "link_names": False,
    "attachments": [
        {
            "title": "[FIRING:1] InstanceDown (node-exporter prod)",
            "title_link": "http://alertmanager.example:9093/#/alerts?receiver=imkit",
            "pretext": "",
            "text": "",
            "fallback": "[FIRING:1] InstanceDown (node-exporter prod) | "
            "http://alertmanager.example:9093/#/alerts?receiver=imkit",
            "callback_id": "",
            "footer": "",
            "color": "danger",
            "mrkdwn_in": ["fallback", "pretext", "text"],
        }
    ],
}

# Grafana's Slack contact point (unified alerting): title, text with the labels on
# several lines, a footer, ts; its Mattermost notifier sends the same shape.
GRAFANA = {
    "channel": "",
    "username": "Grafana",
    "icon_emoji": "",
    "icon_url": "https://grafana.com/static/assets/img/fav32.png",
    "attachments": [
        {
            "title": "[FIRING:1] HighCPU (web-1)",
            "title_link": "http://grafana.example:3000/alerting/list",
            "text": "**Firing**\n\nValue: B=97.2\nLabels:\n - alertname = HighCPU\n"
            " - instance = web-1\nAnnotations:\n - summary = CPU over 95%\n",
            "fallback": "[FIRING:1] HighCPU (web-1)",
            "footer": "Grafana v10.4.1",
            "footer_icon": "https://grafana.com/static/assets/img/fav32.png",
            "color": "#D63232",
            "ts": 1717171717,
            "mrkdwn_in": ["pretext"],
        }
    ],
}
