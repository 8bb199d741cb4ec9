"""The imkit command itself: --version, --help, option parsing."""

from __future__ import annotations

from click.testing import CliRunner

from imkit import __version__
from imkit.cli import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"imkit, version {__version__}\n"


def test_help_has_one_whole_line_per_subcommand() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    commands = result.output.split("Commands:\n", 1)[1].splitlines()
    names = [line.split()[0] for line in commands if line.strip()]
    assert {"serve", "chat", "send"} <= set(names)
    assert len(commands) == len(names)  # one line each
    assert not any(line.endswith("...") for line in commands)


def test_options_are_read_from_imkit_variables() -> None:
    result = CliRunner().invoke(
        main, ["send", "--help"], env={"IMKIT_PORT": "1234"}, terminal_width=200
    )
    assert "IMKIT_PORT" in result.output and "IMKIT_TO" in result.output


def test_send_needs_a_message() -> None:
    result = CliRunner().invoke(main, ["send"])
    assert result.exit_code == 2
    assert "Missing argument 'MESSAGE...'" in result.output


def test_bad_port_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["chat", "--port", "0"])
    assert result.exit_code == 2
