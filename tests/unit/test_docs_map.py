"""docs/architecture.md is the one map of the source tree: it cannot drift from it.

Every module of ``imkit/`` is named there by its path relative to ``imkit/`` in
backquotes (```hub/core.py```), every package by its folder (```hub/```), and every
folder of non-Python files by its folder (```web/static/```, ```cluster/lua/```); and
every such path the map names exists. A module added without its line in the map, or
a line left behind by a module moved or removed, fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "imkit"
MAP = ROOT / "docs" / "architecture.md"

# Files named by their folder rather than one by one: data the package ships.
DATA_SUFFIXES = {".lua", ".html", ".css", ".js"}
# Paths the map may name outside imkit/, relative to the project's root.
ROOT_FOLDERS = ("imkit/", "tests/", "docs/", "bench/", "completions/", ".ci/")
# A path in backquotes: a module or script (.py, .lua), or a folder (a trailing /).
PATH = re.compile(r"`([\w./-]+(?:\.py|\.lua|/))`")


def named_paths() -> set[str]:
    return set(PATH.findall(MAP.read_text()))


def tree_paths() -> set[str]:
    """What the map must name: modules, packages, and folders of data files."""
    wanted: set[str] = set()
    for path in PACKAGE.rglob("*"):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        relative = path.relative_to(PACKAGE)
        if path.suffix == ".py":
            if path.name == "__init__.py":
                if relative.parent != Path("."):
                    wanted.add(f"{relative.parent.as_posix()}/")
            else:
                wanted.add(relative.as_posix())
        elif path.suffix in DATA_SUFFIXES:
            wanted.add(f"{relative.parent.as_posix()}/")
    return wanted


def test_every_module_of_imkit_is_in_the_map() -> None:
    missing = sorted(tree_paths() - named_paths())
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_every_path_the_map_names_exists() -> None:
    gone = []
    for name in named_paths():
        base = ROOT if name.startswith(ROOT_FOLDERS) else PACKAGE
        if not (base / name).exists():
            gone.append(name)
    assert not gone, f"docs/architecture.md names paths that do not exist: {sorted(gone)}"


def test_the_map_is_checked_against_a_real_tree() -> None:
    # Guards the two tests above against passing on nothing (a moved map, a bad pattern).
    assert {"hub/core.py", "protocol/", "web/static/"} <= tree_paths()
    assert len(named_paths()) >= len(tree_paths())
