"""Fixtures of the tests that run ``imkit`` subprocesses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.accounts import AccountsServer, start_accounts_server


@pytest.fixture
def real(short_dir: Path) -> Iterator[AccountsServer]:
    """A real ``imkit serve`` with accounts (cheap hashes, its admin socket in
    ``short_dir``). A module that needs accounts on it overrides this fixture with one
    that takes it and adds them (``def real(real): real.add(...)``)."""
    server = start_accounts_server(short_dir)
    yield server
    server.stop()
