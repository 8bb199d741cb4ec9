"""A tmux pane running a command, read as a user sees it."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections.abc import Callable


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], check=True, capture_output=True, text=True, timeout=10
    ).stdout


class Pane:
    def __init__(self, command: list[str]) -> None:
        self.name = f"imkit-{uuid.uuid4().hex[:8]}"
        tmux("new-session", "-d", "-s", self.name, "-x", "120", "-y", "30", shlex.join(command))

    def type(self, *keys: str) -> None:
        tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> list[str]:
        return tmux("capture-pane", "-p", "-t", self.name).rstrip("\n").split("\n")

    def wait_for(self, text: str, timeout: float = 15) -> list[str]:
        return self.wait_until(lambda lines: any(text in line for line in lines), repr(text))

    def wait_until(
        self, shows: Callable[[list[str]], bool], what: str, timeout: float = 15
    ) -> list[str]:
        """The screen once ``shows`` holds for it (the terminal is redrawn in steps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.screen()
            if shows(lines):
                return lines
            time.sleep(0.1)
        raise AssertionError(f"{what} never appeared:\n" + "\n".join(self.screen()))

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)
