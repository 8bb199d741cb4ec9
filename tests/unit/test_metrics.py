"""``--metrics``: /metrics scraped over real HTTP and read with prometheus_client's own
parser, counters against the exact traffic a test sends, /healthz and its 503s (full,
store, shutdown), and the option's errors.

Here the tests that need no sockets and no subprocesses; the others are in
process/test_metrics.py, server/test_metrics.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from imkit.cli import main
from imkit.transport.listener import parse_address

# ------------------------------------------------------------------- imkit serve


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("9464", "is not HOST:PORT"),
        (":9464", "is not HOST:PORT"),
        ("127.0.0.1:", "the port must be a number from 0 to 65535"),
        ("127.0.0.1:65536", "the port must be a number from 0 to 65535"),
        ("127.0.0.1:-1", "the port must be a number from 0 to 65535"),
        ("::1:9464", "write an IPv6 address in brackets"),
        ("[]:9464", "is not HOST:PORT"),
    ],
)
def test_a_malformed_address_is_a_usage_error(given: str, words: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--metrics", given])
    assert result.exit_code == 2
    assert words in result.output


def test_an_empty_imkit_metrics_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve"], env={"IMKIT_METRICS": ""})
    assert result.exit_code == 2
    assert "IMKIT_METRICS is set but empty" in result.output


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:9464", ("::1", 9464)),
    ],
)
def test_parse_address(given: str, expected: tuple[str, int]) -> None:
    assert parse_address(given) == expected
