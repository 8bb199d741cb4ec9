"""``--metrics``: /metrics scraped over real HTTP and read with prometheus_client's own
parser, counters against the exact traffic a test sends, /healthz and its 503s (full,
store, shutdown), and the option's errors."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from imkit import __version__
from imkit.cli import main
from imkit.client import admin as admin_client
from imkit.errors import ServeError
from imkit.server import Server, ServerConfig
from imkit.server.metrics import LoopReader, Metrics, MetricsServer, Observed, parse_address
from tests.conftest import run_server
from tests.support import TIMEOUT, LineClient, joined, run_imkit, split_addr, start_server_process

# One sample: its name and labels.
Key = tuple[str, frozenset[tuple[str, str]]]
Samples = dict[Key, float]





def get(url: str, timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """A GET's status, content type and body; 4xx and 5xx answers included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            headers = response.headers
            return int(response.status), str(headers["Content-Type"]), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, str(error.headers["Content-Type"]), error.read().decode()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]




# ----------------------------------------------------------------- in process
















# ------------------------------------------------------------------- imkit serve


def test_serve_logs_the_metrics_address_and_answers_503_until_it_exits() -> None:
    proc = start_server_process("--idle-timeout", "0", "--metrics", "127.0.0.1:0")
    try:
        found = re.search(r"metrics on (http://127\.0\.0\.1:\d+)/metrics\n", proc.stderr())
        assert found, proc.stderr()
        base = found.group(1)
        status, _, body = get(base + "/metrics")
        assert status == 200
        assert value(parse(body), "imkit_users_online") == 0
        assert get(base + "/healthz")[0] == 200

        client = socket.create_connection(split_addr(proc.address), timeout=TIMEOUT)
        assert client.recv(1000).endswith(b"user is online\n")
        proc.proc.send_signal(signal.SIGTERM)
        answers: list[int | str] = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                answers.append(get(base + "/healthz", timeout=2)[0])
            except OSError:  # refused, or the process exited mid-answer
                answers.append("gone")
                break
            if answers[-1] == 503:
                client.close()  # the server stops waiting for its bye to be read
            time.sleep(0.02)
        assert answers[-1] == "gone", answers
        assert 503 in answers, answers
        after = answers[answers.index(503) :]
        assert set(after) <= {503, "gone"}, answers
        assert proc.proc.wait(TIMEOUT) == 0
    finally:
        proc.stop()


def test_metrics_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_imkit("serve", "--port", "0", "--metrics", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: cannot listen on 127.0.0.1:{port} for metrics: Address already in use\n"
    )
