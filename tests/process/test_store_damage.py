"""Files `imkit serve` must refuse before serving from them: damaged ones (a partial copy,
zeroed pages) and ones in a folder it cannot write. Each is a real SQLite file, refused
by the real `imkit serve` with one line, exit status 1, and left exactly as it was."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from imkit.store import SqliteStore
from tests.support import IMKIT, Clock, imkit_env, run_imkit
from tests.support.store import T0, append_all, digest, message

MESSAGES = 4000
PAGE = 4096  # SQLite's default page size


async def full_database(path: Path) -> None:
    """A real imkit file holding MESSAGES messages, its journal folded into it."""
    store = SqliteStore(path, clock=Clock(T0), retain_days=0)
    store.open()
    store.start()
    try:
        assert set(await append_all(store, [message(store, f"m{i}", T0) for i in range(MESSAGES)]))
        assert store.problem is None
    finally:
        await store.close()  # the last connection to close checkpoints and removes -wal
    assert not path.with_name(path.name + "-wal").exists()


def damage(path: Path, how: str) -> None:
    if how == "truncated":  # a partial copy or restore
        os.truncate(path, path.stat().st_size - 1000)
    else:  # the last pages zeroed (a disk that lost them)
        with path.open("r+b") as file:
            file.seek(path.stat().st_size - 4 * PAGE)
            file.write(bytes(4 * PAGE))


@pytest.mark.parametrize("how", ["truncated", "zeroed_last_pages"])
async def test_a_damaged_file_is_refused_with_one_line_and_left_untouched(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "imkit.db"
    await full_database(path)
    damage(path, how)
    before = digest(path)
    for log_format in ("text", "json"):
        result = run_imkit("serve", "--port", "0", "--db", str(path), "--log-format", log_format)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        if log_format == "json":
            record = json.loads(line)
            assert record["event"] == "start_failed", record
            line = record["reason"]
        assert f"{path} is damaged" in line and "left untouched" in line, line
        assert "When the file is damaged" in line  # where the recovery steps are
        assert digest(path) == before


def without_root_privileges() -> list[str]:
    """A prefix that runs a command without root's power to write any folder (these
    tests often run as root, whose writes no mode bits stop), or [] when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv (util-linux) is not there to drop that")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


def serve_once(prefix: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    command = [*prefix, *IMKIT, "serve", "--port", "0", "--db", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, env=imkit_env())


async def test_a_folder_that_cannot_be_written_is_said_so(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    path = folder / "imkit.db"
    store = SqliteStore(path, clock=Clock(T0))
    store.open()
    store.start()
    await store.close()
    prefix = without_root_privileges()
    before = digest(path)
    folder.chmod(0o500)
    try:
        result = serve_once(prefix, path)
    finally:
        folder.chmod(0o700)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "not an imkit database" not in line, line
    assert f"its folder {folder} cannot be written" in line, line
    assert digest(path) == before
