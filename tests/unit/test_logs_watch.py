"""`imkit serve --log-format json` and `imkit stats --watch`, through real `imkit serve`
processes, real clients, a pipe and a real terminal (tmux).

Here the tests that need no sockets and no subprocesses; the others are in
process/test_logs_watch.py, server/test_logs_watch.py."""

from __future__ import annotations

import ast
import json
import logging
import sys
from pathlib import Path

import pytest

import imkit
from imkit.cli.logformat import FALLBACK_EVENT, JsonFormatter
from imkit.hub.core import Hub
from imkit.hub.outbox import Outbox
from imkit.protocol import PublicMessage, Rename, ServerConnection
from tests.support.logs import ISO_TIME, PUBLIC_TEXT, SNAKE_CASE, json_records

# ------------------------------------------------------------------ --log-format json


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


def _is_log_call(node: ast.AST) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    if node.func.attr not in LOG_METHODS:
        return False
    target = node.func.value
    if isinstance(target, ast.Name):
        return target.id in {"log", "logger"}
    return (
        isinstance(target, ast.Call)
        and isinstance(target.func, ast.Attribute)
        and target.func.attr == "getLogger"
    )


# ------------------------------------------------------------------ stats --watch


def test_a_slow_consumer_is_logged_by_name(caplog: pytest.LogCaptureFixture) -> None:
    hub = Hub(wall_clock=lambda: 0.0)
    members = []
    for addr, limit in (("10.0.0.1:1", 1 << 20), ("10.0.0.2:2", 200)):
        member = hub.new_member(addr, ServerConnection(), Outbox(limit), now=0.0)
        hub.join(member)
        members.append(member)
    fast, slow = members
    hub.handle(slow, Rename(name="sloth"))
    with caplog.at_level(logging.INFO, logger="imkit.hub"):
        for _ in range(20):
            hub.handle(fast, PublicMessage(text=PUBLIC_TEXT))
            fast.outbox.take()  # the fast one reads; the slow one never does
    [entry] = json_records(caplog, "slow_consumer")
    assert entry["level"] == "warning"
    assert (entry["user"], entry["addr"], entry["limit"]) == ("sloth", "10.0.0.2:2", 200)
    assert entry["message"] == (
        "sloth (10.0.0.2:2): disconnected as a slow consumer: more than 200 bytes waited"
    )
    assert "zebra" not in caplog.text


def test_a_traceback_and_odd_line_breaks_stay_on_one_line() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("imkit.test").makeRecord(
            "imkit.test",
            logging.ERROR,
            __file__,
            1,
            "%s: failed",
            ("a\u2028b",),
            sys.exc_info(),
            extra={"event": "failed", "user": "c\x85d", "count": 3},
        )
    line = formatter.format(record)
    assert len(line.splitlines()) == 1
    entry = json.loads(line)
    assert ISO_TIME.match(entry.pop("time"))
    exc = entry.pop("exc")
    assert exc.startswith("Traceback") and exc.endswith("ValueError: boom")
    assert entry == {
        "level": "error",
        "logger": "imkit.test",
        "event": "failed",
        "message": "a\u2028b: failed",
        "user": "c\x85d",
        "count": 3,
    }
    # A line logged by someone else (a library) still has an event.
    other = logging.LogRecord("asyncio", logging.WARNING, __file__, 1, "hello", None, None)
    assert json.loads(formatter.format(other))["event"] == FALLBACK_EVENT


def test_every_log_call_in_imkit_names_its_event() -> None:
    # So that a new log line cannot reach a collector without its event.
    root = Path(imkit.__file__).parent
    found, missing = 0, []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not _is_log_call(node):
                continue
            assert isinstance(node, ast.Call)
            found += 1
            extra = next((k.value for k in node.keywords if k.arg == "extra"), None)
            event = None
            if isinstance(extra, ast.Dict):
                for key, value in zip(extra.keys, extra.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "event":
                        event = value.value if isinstance(value, ast.Constant) else None
            if not (isinstance(event, str) and SNAKE_CASE.match(event)):
                missing.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found > 20
    assert not missing, f"log calls without extra={{'event': ...}}: {missing}"
