"""bench/rooms.py (issue 28's benchmark) in its quick mode, with tiny numbers: it sets
up, sends, churns and writes a well-formed record. Speed is the benchmark's to measure,
never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import imkit_env

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "rooms.py"


@pytest.mark.parametrize("mode", ["rooms", "lobby"])
def test_quick_run_writes_a_record(tmp_path: Path, mode: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--quick",
            "--clients",
            "60",
            "--rooms",
            "3",
            "--duration",
            "2",
            "--warmup",
            "1",
            "--churn-rate",
            "10",
            "--churn-hold",
            "0.5",
            "--procs",
            "1",
            "--pause",
            "0",
            "--modes",
            mode,
            "--out",
            str(tmp_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=imkit_env(),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    [raw] = tmp_path.glob("rooms-*.jsonl")
    assert json.loads(raw.read_text().splitlines()[0]) == record
    assert record["mode"] == mode and record["round"] == 1
    assert record["set_up"] == 60 and record["setup_failed"] == 0
    assert record["server_alive_after_run"] and record["dropped"] == 0
    assert record["deliveries"] > 0 and record["lines"] > 0 and record["malformed"] == 0
    # every line reached the others of its room (or of the lobby), churners included
    assert record["deliveries_per_line"] >= record["receivers_per_line"] - 1
    latency = record["latency_ms"]
    assert latency["samples"] > 0 and 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert record["churn"]["connects"] > 0 and record["churn"]["failed"] == 0
    assert record["presence_lines_per_s"] > 0  # the churn's joins, parts and offline lines
    assert set(record["cpu"]) >= {"server_pct", "load_pct", "other_pct"}
    assert record["rss_mib"] > 0
    assert "| mode | runs | deliveries/s |" in result.stderr  # the table of medians
