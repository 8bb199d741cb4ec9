"""`imkit chat`'s rooms (docs/rooms.md, docs/clients.md): the menu's items 6 to 9, with
piped input and in a real terminal (tmux): join a room, talk in it, see the others'
room lines with their room, and the lobby's without one."""

from __future__ import annotations

import shlex
import shutil
import socket

import pytest

from tests.support import IMKIT, ServerProcess, chat, split_addr
from tests.support.terminal import Pane


class TextUser:
    """A netcat-like text client (docs/rooms.md's text mode)."""

    def __init__(self, address: str, name: str) -> None:
        self.sock = socket.create_connection(split_addr(address), timeout=10)
        self.buffer = b""
        self.sock.sendall(f"rename|{name}\n".encode())
        self.until("you have updated user name")

    def send(self, line: str) -> None:
        self.sock.sendall(f"{line}\n".encode())

    def until(self, text: str) -> str:
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if text in line.decode():
                    return line.decode()
                continue
            chunk = self.sock.recv(65536)
            assert chunk, "EOF"
            self.buffer += chunk


def test_join_talk_and_leave_a_room_with_piped_input(server_process: ServerProcess) -> None:
    address = server_process.address
    bob = TextUser(address, "bob")
    bob.send("join|#builds")
    bob.until("#builds * you have joined #builds")
    bob.send("to|#builds|before alice came")
    bob.until("#builds [")
    alice = chat(address, "--name", "alice")
    try:
        alice.expect("^you are now alice$")
        alice.send("7", "builds")  # the '#' is added
        alice.expect(r"^you have joined #builds \(2 members\)$")
        alice.expect(r"^past \d\d:\d\d #builds bob: before alice came$")
        alice.send("hello room")
        line = bob.until("alice:")
        assert line.startswith("#builds [") and line.endswith("]alice:hello room")
        bob.send("to|#builds|hi alice")
        alice.expect("^#builds bob: hi alice$")
        bob.send("in the lobby")
        alice.expect("^bob: in the lobby$")  # the lobby's lines have no room

        alice.send("exit", "6")
        alice.expect(r"^rooms \(\d+\):$")
        alice.expect(r"^  #builds  2 members \(you are in it\)$")

        bob.send("part|#builds|lunch")
        alice.expect("^#builds \\* bob has left: lunch$")

        alice.send("9", "#builds")
        alice.expect("^you have left #builds$")
        alice.send("8", "#nowhere-yet", "first words", "exit", "0")
        alice.expect(r"^you have joined #nowhere-yet \(1 member, you are its operator\)$")
        assert alice.finish() == (0, "")
    finally:
        alice.kill()
        bob.sock.close()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_room_in_the_terminal(server_process: ServerProcess) -> None:
    host, port = split_addr(server_process.address)
    command = [*IMKIT, "chat", "--host", host, "--port", str(port), "--name", "alice"]
    script = f'{shlex.join(command)}; echo "exit status $?"; sleep 60'
    pane = Pane(["env", "TERM=xterm", "sh", "-c", script])
    bob = TextUser(server_process.address, "bob")
    try:
        pane.wait_for("9 leave a room")
        pane.type("7", "Enter")
        pane.wait_for("room to join (#name)?")
        pane.type("#ops", "Enter")
        pane.wait_for("you have joined #ops (1 member, you are its operator)")
        pane.wait_for("#ops>")  # the prompt shows the room

        bob.send("join|#ops")
        pane.wait_for("#ops * bob has joined")
        pane.type("deploy at noon", "Enter")
        line = bob.until("alice:")
        assert line.startswith("#ops [") and line.endswith("]alice:deploy at noon")

        bob.send("to|#ops|ok, noon")
        lines = pane.wait_for("#ops bob: ok, noon")
        assert not any("Traceback" in line for line in lines)
        bob.send("part|#ops")
        pane.wait_for("#ops * bob has left")

        pane.type("exit", "Enter")
        pane.wait_for("choice?")
        pane.type("0", "Enter")
        assert "exit status 0" in pane.wait_for("exit status")
    finally:
        pane.close()
        bob.sock.close()
