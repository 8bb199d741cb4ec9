"""``--metrics``: /metrics scraped over real HTTP and read with prometheus_client's own
parser, counters against the exact traffic a test sends, /healthz and its 503s (full,
store, shutdown), and the option's errors.

Here the tests that run imkit subprocesses; the others are in server/test_metrics.py,
unit/test_metrics.py."""

from __future__ import annotations

import re
import signal
import socket
import time

from tests.support import (
    TIMEOUT,
    run_imkit,
    split_addr,
    start_server_process,
)
from tests.support.metrics import get, parse, value

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
