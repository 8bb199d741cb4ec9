"""The store against real SQLite files: ids, restarts, retention, files it must refuse,
the lock, and a file that stops taking writes.

Here the tests that run imkit subprocesses; the others are in unit/test_store.py."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from imkit.store.schema import APPLICATION_ID, SCHEMA_VERSION
from tests.support import run_imkit, start_server_process
from tests.support.store import digest

# ------------------------------------------------------------ files it refuses


def test_a_file_from_a_newer_imkit_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        db.execute("CREATE TABLE future (x)")
    before = digest(path)
    result = run_imkit("serve", "--port", "0", "--db", str(path))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()[-1:]
    assert "newer imkit" in line and "left untouched" in line and "Traceback" not in result.stderr
    assert digest(path) == before
    assert sorted(os.listdir(tmp_path)) == ["newer.db"]


@pytest.mark.parametrize("kind", ["text", "other_database"])
def test_a_file_that_is_not_an_imkit_database_is_refused_untouched(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "notes.db"
    if kind == "text":
        path.write_text("these are my notes, not a database\n" * 100)
    else:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE accounts (owner TEXT)")
    before = digest(path)
    result = run_imkit("serve", "--port", "0", "--db", str(path))
    assert result.returncode == 1, result.stderr
    assert "is not an imkit database" in result.stderr and "Traceback" not in result.stderr
    assert digest(path) == before


def test_two_servers_cannot_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    first = start_server_process("--db", str(path))
    try:
        result = run_imkit("serve", "--port", "0", "--db", str(path))
        assert result.returncode == 1
        assert "in use by another imkit server" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        assert first.stop() == 0
    # Once the first has stopped, the file is free again.
    second = start_server_process("--db", str(path))
    assert second.stop() == 0


@pytest.mark.parametrize("where", ["a_folder", "under_a_file"])
def test_a_path_that_cannot_be_a_database_is_one_line(tmp_path: Path, where: str) -> None:
    if where == "a_folder":  # refused by the option itself: a usage error
        path, expected, status = tmp_path, "is a directory", 2
    else:
        (tmp_path / "plain").write_text("x")
        path, expected, status = tmp_path / "plain" / "imkit.db", "cannot create the folder", 1
    result = run_imkit("serve", "--port", "0", "--db", str(path))
    assert result.returncode == status, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
