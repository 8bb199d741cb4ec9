"""Real IRC clients against ``imkit serve --irc`` (docs/irc.md): WeeChat
(weechat-headless, Debian's package) and a Python IRC library (jaraco's ``irc``, in the
test extra) join #lobby and a room, log in with SASL to an account, and talk with a
netcat user and a JSON user in public and in private."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ServerProcess, run_imkit, start_server_process

WEECHAT = shutil.which("weechat-headless")


@pytest.fixture
def irc_server(short_dir: Path) -> Iterator[tuple[ServerProcess, int, Path]]:
    """``imkit serve --irc`` with an account alex (password sesame): the process, the IRC
    port and its admin socket."""
    admin = short_dir / "a.sock"
    proc = start_server_process(
        "--db", "none", "--idle-timeout", "0", "--rate", "0", "--irc", "127.0.0.1:0",
        "--server-name", "irc.test", "--admin-socket", str(admin), "--password-hash-cost", "10",
    )  # fmt: skip
    try:
        port = int(re.findall(r"IRC on irc://[^ ]+:(\d+)", proc.stderr())[0])
        added = run_imkit("account", "add", "alex", "--password-stdin",
                          "--admin-socket", str(admin), stdin="sesame\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
        yield proc, port, admin
    finally:
        proc.stop()


class LineUser:
    """A netcat-like text user (or a JSON one) on the chat port, read in a thread."""

    def __init__(self, address: str, first: str) -> None:
        import socket

        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.sock.settimeout(None)  # the reader thread waits as long as it takes
        self.received = ""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.send(first)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.received += data.decode(errors="replace")

    def send(self, line: str) -> None:
        self.sock.sendall((line + "\n").encode())

    def wait_for(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if text in self.received:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never came; got:\n{self.received}")

    def close(self) -> None:
        self.sock.close()


def wait_for_file(path: Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} never in {path.name}:\n{content}")


@pytest.mark.skipif(WEECHAT is None, reason="weechat-headless is not installed")
def test_weechat_logs_in_joins_and_talks_with_netcat_and_json(
    irc_server: tuple[ServerProcess, int, Path], tmp_path: Path
) -> None:
    proc, port, _ = irc_server
    nc = LineUser(proc.address, "rename|nc")
    js = LineUser(proc.address, '{"type":"hello","name":"jay"}')
    js.wait_for('"type":"welcome"')
    home = tmp_path / "weechat"
    commands = "; ".join([
        "/set logger.file.flush_delay 0",
        f"/server add imkit 127.0.0.1/{port} -notls -nicks=wee -sasl_mechanism=plain"
        " -sasl_username=alex -sasl_password=sesame -autojoin=#lobby,#builds",
        "/connect imkit",
        "/wait 3 /msg -server imkit #lobby hello from weechat",
        "/wait 3 /msg -server imkit #builds builds from weechat",
        "/wait 3 /msg -server imkit nc psst netcat",
        "/wait 3 /msg -server imkit jay psst json",
    ])  # fmt: skip
    weechat = subprocess.Popen(
        [str(WEECHAT), "-d", str(home), "-r", commands],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        nc.wait_for("alex:hello from weechat")
        nc.wait_for("alex say: psst netcat")
        js.wait_for('"text":"psst json"')
        nc.send("join|#builds")
        nc.send("hi lobby from nc")
        nc.send("to|alex|hi weechat from nc")
        js.send('{"type":"message","to":"alex","text":"hi weechat from json"}')
        nc.send("to|#builds|builds from nc")
        logs = home / "logs"
        wait_for_file(logs / "irc.imkit.#lobby.weechatlog", "hi lobby from nc")
        wait_for_file(logs / "irc.imkit.nc.weechatlog", "hi weechat from nc")
        wait_for_file(logs / "irc.imkit.jay.weechatlog", "hi weechat from json")
        wait_for_file(logs / "irc.imkit.#builds.weechatlog", "builds from nc")
        server_log = (logs / "irc.server.imkit.weechatlog").read_text()
        assert "SASL authentication successful" in server_log
    finally:
        weechat.terminate()
        weechat.wait(10)
        nc.close()
        js.close()


def test_a_python_irc_library_joins_and_talks(irc_server: tuple[ServerProcess, int, Path]) -> None:
    import irc.client

    proc, port, _ = irc_server
    nc = LineUser(proc.address, "rename|nc")
    seen: list[tuple[str, str, str]] = []
    reactor = irc.client.Reactor()
    connection = reactor.server().connect(
        "127.0.0.1", port, "bot", sasl_login="alex", password="sesame"
    )

    def on_welcome(conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        conn.join("#lobby")
        conn.join("#bots")

    def on_join(conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        if (
            event.target == "#lobby"
            and irc.client.NickMask(event.source).nick == conn.get_nickname()
        ):
            conn.privmsg("#lobby", "beep from the library")
            conn.privmsg("nc", "beep to netcat")

    def on_message(conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        seen.append((event.type, event.target, event.arguments[0]))

    connection.add_global_handler("welcome", on_welcome)
    connection.add_global_handler("join", on_join)
    connection.add_global_handler("pubmsg", on_message)
    connection.add_global_handler("privmsg", on_message)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            reactor.process_once(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        nc.wait_for("alex:beep from the library")
        nc.wait_for("alex say: beep to netcat")
        nc.send("from nc to the lobby")
        nc.send("to|alex|from nc in private")
        deadline = time.monotonic() + 20
        wanted = {
            ("pubmsg", "#lobby", "from nc to the lobby"),
            ("privmsg", "alex", "from nc in private"),
        }
        while not wanted <= set(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wanted <= set(seen), seen
        assert connection.get_nickname() == "alex"  # logged in: the account's name
    finally:
        stop.set()
        thread.join(5)
        connection.disconnect("done")
        nc.close()
