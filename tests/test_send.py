"""`imkit send` as a subprocess: public, private, stdin, and every exit status."""

from __future__ import annotations

import socket
import subprocess

from tests.support import ServerProcess, run_imkit, split_addr


def send(address: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    host, port = split_addr(address)
    return run_imkit("send", "--host", host, "--port", str(port), *args, stdin=stdin)


class Listener:
    """A raw text client that collects lines (as netcat would)."""

    def __init__(self, address: str, name: str) -> None:
        self.sock = socket.create_connection(split_addr(address), timeout=10)
        self.buffer = b""
        self.sock.sendall(f"rename|{name}\n".encode())
        self.until("you have updated user name")

    def until(self, text: str) -> str:
        while True:
            if b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                decoded = line.decode()
                if text in decoded:
                    return decoded
                continue
            chunk = self.sock.recv(65536)
            assert chunk, "EOF"
            self.buffer += chunk


def test_public_message_words_are_joined(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--as", "ci", "build", "finished", "✓")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert alex.until("build finished").endswith("]ci:build finished ✓")


def test_private_message(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--to", "alex", "build finished")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert alex.until("say:").endswith(" say: build finished")


def test_stdin_sends_each_line_as_one_message(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--to", "alex", "-v", "-", stdin="one two\n\nthree\r\n")
    assert result.returncode == 0
    assert result.stdout == "sent to alex: one two\nsent to alex: three\n"
    assert alex.until("say:").endswith("say: one two")
    assert alex.until("say:").endswith("say: three")


def test_unknown_recipient_exits_1_with_the_reason(server_process: ServerProcess) -> None:
    result = send(server_process.address, "--to", "nobody", "hello")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "Error: no user named 'nobody' is online\n"


def test_taken_name_exits_1(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    result = send(server_process.address, "--as", "ALEX", "hello")
    alex.sock.close()
    assert result.returncode == 1
    assert result.stderr == "Error: the name 'ALEX' is taken\n"


def test_refusal_stops_the_rest(server_process: ServerProcess) -> None:
    alex = Listener(server_process.address, "alex")
    long_line = "x" * 5000  # over the server's --max-line
    result = send(server_process.address, "--to", "alex", "-", stdin=f"first\n{long_line}\nthird\n")
    assert result.returncode == 1
    assert "line too long" in result.stderr
    assert alex.until("say:").endswith("say: first")
    alex.sock.sendall(b"who\n")
    alex.until("online...")  # the next thing alex sees is its own who, not "third"


def test_usage_errors_exit_2(server_process: ServerProcess) -> None:
    assert send(server_process.address).returncode == 2
    result = send(server_process.address, "-", "extra")
    assert result.returncode == 2
    assert "must be the only MESSAGE" in result.stderr


def test_no_server_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        result = send(f"127.0.0.1:{port}", "hello")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == f"Error: cannot connect to 127.0.0.1:{port}: Connection refused\n"


def test_timeout_exits_3() -> None:
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        port = mute.getsockname()[1]
        result = send(f"127.0.0.1:{port}", "--timeout", "0.5", "hello")
    assert result.returncode == 3
    assert result.stderr == "Error: timed out after 0.5s waiting for the server\n"
