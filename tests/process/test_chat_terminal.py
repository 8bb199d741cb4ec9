"""`imkit chat` in a real terminal (tmux): a message that arrives mid-typing must leave
the typed text intact."""

from __future__ import annotations

import shlex
import shutil
import socket
from collections.abc import Iterator

import pytest

from tests.support import IMKIT, ServerProcess, split_addr
from tests.support.terminal import Pane

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def last_line(lines: list[str]) -> str:
    return [line for line in lines if line.strip()][-1].rstrip()


@pytest.fixture
def pane(server_process: ServerProcess) -> Iterator[Pane]:
    host, port = split_addr(server_process.address)
    command = [*IMKIT, "chat", "--host", host, "--port", str(port), "--name", "alice"]
    # The shell keeps the pane open after chat exits, to show its exit status.
    script = f'{shlex.join(command)}; echo "exit status $?"; sleep 60'
    pane = Pane(["env", "TERM=xterm", "sh", "-c", script])
    try:
        yield pane
    finally:
        pane.close()


def test_message_arriving_mid_typing_keeps_the_typed_text(
    pane: Pane, server_process: ServerProcess
) -> None:
    pane.wait_for("choice?")
    pane.type("1", "Enter")
    pane.wait_for("all>")
    pane.type("hello wor")
    pane.wait_for("all> hello wor")

    # bob writes while alice is typing
    bob = socket.create_connection(split_addr(server_process.address), timeout=10)
    bob.sendall(b"rename|bob\nlook, an interruption\n")
    pane.wait_for("bob: look, an interruption")
    # The message is printed above, then the prompt is redrawn with the half-typed text
    # still last (a capture may fall between the two steps, so wait for the redraw).
    lines = pane.wait_until(
        lambda lines: last_line(lines) == "all> hello wor",
        "the prompt with the half-typed text, last",
    )
    shown = [line for line in lines if line.strip()]
    assert "bob: look, an interruption" in shown[:-1]
    assert not any("hello wor" in line for line in shown[:-1])

    # finishing the line sends exactly what was typed, in one piece
    pane.type("ld, 你好", "Enter")
    received = b""
    while b"alice:hello world" not in received:
        chunk = bob.recv(65536)
        assert chunk
        received += chunk
    assert "]alice:hello world, 你好\n" in received.decode()
    bob.close()

    pane.type("exit", "Enter")
    # The first menu's "choice?" is still on screen: wait for the new one, at the bottom,
    # or Ctrl-D may reach the chat prompt as it closes.
    pane.wait_until(lambda lines: last_line(lines) == "choice?", "the menu again")
    pane.type("C-d")  # Ctrl-D leaves without a traceback
    lines = pane.wait_for("exit status")
    assert "exit status 0" in lines
    assert not any("Traceback" in line for line in lines)


def test_ctrl_c_leaves_cleanly(pane: Pane) -> None:
    pane.wait_for("choice?")
    pane.type("1", "Enter")
    pane.wait_for("all>")
    pane.type("half a thought", "C-c")
    lines = pane.wait_for("exit status")
    assert "exit status 0" in lines
    assert not any("Traceback" in line for line in lines)


def test_login_password_and_password_change_are_not_echoed() -> None:
    from tests.support.scripted import ScriptedServer

    server = ScriptedServer()  # any login works
    command = [*IMKIT, "chat", "--host", "127.0.0.1", "--port", str(server.port)]
    script = f'{shlex.join([*command, "--login", "alex"])}; echo "exit status $?"; sleep 60'
    pane = Pane(["env", "TERM=xterm", "sh", "-c", script])
    try:
        pane.wait_for("password for alex:")
        pane.type("hunter2-secret", "Enter")
        pane.wait_for("you have logged in as alex")
        pane.wait_for("5 change your password")
        pane.type("5", "Enter")
        pane.wait_for("current password?")
        pane.type("hunter2-secret", "Enter")
        pane.wait_for("new password?")
        pane.type("correct-horse", "Enter")
        pane.wait_for("new password again?")
        pane.type("correct-horse", "Enter")
        lines = pane.wait_for("your password has been changed")
        assert not any("hunter2" in line or "correct-horse" in line for line in lines)
        assert [(p["old"], p["new"]) for p in server.of_type("passwd")] == [
            ("hunter2-secret", "correct-horse")
        ]
        pane.wait_until(lambda lines: last_line(lines) == "choice?", "the menu again")
        pane.type("0", "Enter")
        assert "exit status 0" in pane.wait_for("exit status")
    finally:
        pane.close()
        server.close()
