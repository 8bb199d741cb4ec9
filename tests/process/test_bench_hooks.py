"""bench/hooks.py (issue 30's webhook benchmark) in its quick mode, with tiny numbers:
it sets up the room and the hooks through the real CLI and admin socket, posts, watches
and writes a well-formed record, on one node and on two through a real Redis. Speed is
the benchmark's to measure, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import imkit_env
from tests.support.cluster import HAVE_REDIS

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "hooks.py"


def run_bench(out: Path, *args: str) -> tuple[dict[str, Any], str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--pause", "0", "--out", str(out), "--json"]
        + list(args),
        capture_output=True,
        text=True,
        timeout=120,
        env=imkit_env(),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    [raw] = out.glob("hooks-*.jsonl")
    assert json.loads(raw.read_text().splitlines()[0]) == record
    return record, result.stderr


@pytest.mark.parametrize(
    "mode",
    [
        "one",
        pytest.param(
            "cluster", marks=pytest.mark.skipif(not HAVE_REDIS, reason="needs redis-server")
        ),
    ],
)
def test_quick_run_writes_a_record(tmp_path: Path, mode: str) -> None:
    record, stderr = run_bench(tmp_path, "--modes", mode, "--duration", "1")
    assert record["mode"] == mode and record["round"] == 1
    assert record["members_ready"] == 20 and record["server_alive_after_run"]
    # 10 hooks, 10 a second for 1 s: each under its limit, every POST stored and seen
    assert record["posts"] == 10 and record["statuses"] == {"200": 10}
    assert record["stored"] == 10 and record["undelivered"] == 0
    assert record["delivered_not_200"] == 0
    for key in ("http_ms", "delivery_ms"):
        found = record[key]
        assert found["samples"] == 10
        assert 0 < found["p50"] <= found["p95"] <= found["p99"] <= found["max"]
    assert record["chat_deliveries_per_s"] > 0 and record["bot_deliveries_per_s"] > 0
    assert record["member_errors"] == 0 and record["dropped"] == 0
    assert set(record["cpu"]) == {"server_pct", "bench_pct", "other_pct"}
    assert "| mode | runs | posts/s |" in stderr  # the table of medians


def test_one_hook_over_its_limit_is_told_429(tmp_path: Path) -> None:
    """One hook posting 40 at once: its burst of 30 is stored, the rest refused (429,
    counted by status), never lost silently."""
    record, stderr = run_bench(
        tmp_path, "--hooks", "1", "--rate", "40", "--duration", "1", "--members", "4",
        "--chat-senders", "1",
    )  # fmt: skip
    assert "expect 429s" in stderr
    statuses = record["statuses"]
    assert set(statuses) == {"200", "429"} and statuses["200"] + statuses["429"] == 40
    assert statuses["200"] >= 30 and statuses["429"] >= 5
    assert record["stored"] == statuses["200"] and record["undelivered"] == 0
    assert "429: " in stderr.split("| mode |", 1)[1]  # the table's errors column
