"""The wheel that `pip install .` builds: every module, the PEP 561 marker, and the
cluster's Lua scripts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_every_module_and_py_typed(tmp_path: Path) -> None:
    # Build from a copy of what the wheel is made of, so that setuptools' build/ and
    # egg-info never land in the work tree while others use it.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "imkit", source / "imkit", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheels"
    # No build isolation: the test extra's setuptools builds it, with no index needed.
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--quiet", "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("imkit-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "imkit/py.typed" in names
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "imkit").rglob("*.py")}
    assert modules <= names, f"missing from the wheel: {sorted(modules - names)}"
    # imkit.cluster.scripts reads these at import: without them no node can start.
    lua = {path.relative_to(ROOT).as_posix() for path in (ROOT / "imkit/cluster/lua").glob("*.lua")}
    assert lua, "no Lua scripts found"
    assert lua <= names, f"missing from the wheel: {sorted(lua - names)}"
