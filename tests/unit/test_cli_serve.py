"""`imkit serve` as a real subprocess, talked to exactly as netcat would.

Here the tests that need no sockets and no subprocesses; the others are in
process/test_cli_serve.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from imkit.cli import main


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], "70000 is not in the range"),
        (["--idle-timeout", "-1"], "-1"),
        (["--log-level", "loud"], "loud"),
        (["--max-line", "abc"], "abc"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], words: str) -> None:
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2
    assert words in result.output


def test_help_lists_every_option_with_its_environment_variable() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("host", "port", "idle-timeout", "max-line", "log-level"):
        assert f"--{option}" in result.output
        assert "IMKIT_" + option.upper().replace("-", "_") in result.output
