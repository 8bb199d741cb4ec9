"""The completion scripts in completions/ match what click generates for imkit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import imkit_env, run_imkit

COMPLETIONS = Path(__file__).resolve().parents[2] / "completions"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_current(shell: str) -> None:
    result = run_imkit(env=imkit_env(_IMKIT_COMPLETE=f"{shell}_source"))
    assert result.returncode == 0, result.stderr
    generated = result.stdout
    assert generated.strip(), "click generated nothing"
    saved = (COMPLETIONS / f"imkit.{shell}").read_text()
    assert saved == generated, (
        f"completions/imkit.{shell} is stale; regenerate it (see completions/README.md)"
    )


def test_completion_offers_the_subcommands() -> None:
    result = run_imkit(
        env=imkit_env(_IMKIT_COMPLETE="bash_complete", COMP_WORDS="imkit se", COMP_CWORD="1")
    )
    assert "plain,send" in result.stdout.splitlines()
    assert "plain,serve" in result.stdout.splitlines()


def test_completion_offers_the_account_subcommands() -> None:
    result = run_imkit(
        env=imkit_env(_IMKIT_COMPLETE="bash_complete", COMP_WORDS="imkit account p", COMP_CWORD="2")
    )
    assert "plain,passwd" in result.stdout.splitlines()
    result = run_imkit(
        env=imkit_env(
            _IMKIT_COMPLETE="bash_complete", COMP_WORDS="imkit send --login-", COMP_CWORD="2"
        )
    )
    assert "plain,--login-password-stdin" in result.stdout.splitlines()
