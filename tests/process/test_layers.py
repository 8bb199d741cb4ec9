"""The commands that only talk to a running server load neither the server nor its
hub, store, cluster or transport (the import-linter contract in pyproject.toml checks
the source; this checks what a real process loads)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imkit.cli import COMMANDS

SERVER_SIDE = (
    "imkit.server",
    "imkit.operator",
    "imkit.web",
    "imkit.cluster",
    "imkit.transport",
    "imkit.hub",
    "imkit.store",
)

PROBE = """
import sys
from imkit.cli import main
try:
    main([{command!r}, "--help"], standalone_mode=False)
except SystemExit:
    pass
print(" ".join(sorted(name for name in sys.modules if name.startswith("imkit"))))
"""


def loaded_by(command: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(command=command)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()[-1].split()


@pytest.mark.parametrize(
    "command",
    ["send", "chat", "who", "kick", "stats", "history", "ban", "mute", "account", "bench"],
)
def test_a_client_command_loads_nothing_of_the_server(command: str) -> None:
    loaded = loaded_by(command)
    assert COMMANDS[command].split(":")[0] in loaded  # the probe did reach the command
    assert [name for name in loaded if name.startswith(SERVER_SIDE)] == []


def test_the_probe_sees_what_serve_loads() -> None:
    # The check above can fail: serve's module does load the server.
    loaded = loaded_by("serve")
    assert "imkit.server.node" in loaded and "imkit.hub.core" in loaded
