"""irctest's controller for imkit (the conformance suite in ../shared/irctest, MIT):
how irctest starts `imkit serve --irc` for each test. Run from irctest's folder:

    PYTHONPATH=/path/to/imkit/tests/irc python -m pytest \\
        --controller irctest_controller \\
        -m "not services and not implementation-specific and not deprecated and not strict"

tests/irc/run_irctest.py does that and compares the outcome with ngircd's passing set
(tests/irc/ngircd_passing.txt); .ci/run runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.cases import BaseServerTestCase
from irctest.runner import NotImplementedByController

# The capabilities whose tests irctest runs (the others are skipped when NAKed):
# those imkit implements in full (docs/irc.md).
CAPABILITIES = frozenset()


def record_pid(pid: int) -> None:
    """Note a server this run started, for run_irctest.py to stop whatever irctest
    leaves running (IMKIT_IRCTEST_PIDS: the file it reads)."""
    pids = os.environ.get("IMKIT_IRCTEST_PIDS")
    if pids:
        with open(pids, "a") as recorded:
            recorded.write(f"{pid}\n")


class ImkitController(BaseServerController, DirectoryBasedController):
    software_name = "imkit"
    supported_sasl_mechanisms: set[str] = {"PLAIN"}
    supports_sts = False

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: str | None,
        ssl: bool,
        run_services: bool,
        faketime: str | None,
        websocket_hostname: str | None,
        websocket_port: int | None,
    ) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()
        assert self.directory is not None
        self.admin_socket = str(self.directory / "admin.sock")
        command = [
            sys.executable,
            "-m",
            "imkit",
            "serve",
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--db",
            "none",
            "--irc",
            f"{hostname}:{port}",
            "--server-name",
            "My.Little.Server",
            "--admin-socket",
            self.admin_socket,
            "--irc-operator",
            "operuser:operpassword",
            "--password-hash-cost",
            "10",
            "--log-level",
            "debug" if self.debug_mode else "warning",
        ]
        if password is not None:
            command += ["--password", password]
        if ssl:
            self.gen_ssl()
            command += ["--tls-cert", str(self.pem_path), "--tls-key", str(self.key_path)]
        self.proc = self.execute(command)
        record_pid(self.proc.pid)

    def registerUser(
        self,
        case: BaseServerTestCase,  # type: ignore[override]
        username: str,
        password: str | None = None,
    ) -> None:
        """An account, made with `imkit account add` on the server's admin socket."""
        self.wait_for_port()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "imkit",
                "account",
                "add",
                username,
                "--password-stdin",
                "--admin-socket",
                self.admin_socket,
            ],
            input=f"{password or 'password'}\n",
            text=True,
            check=True,
            env=os.environ,
            capture_output=True,
        )


def get_irctest_controller_class() -> type[ImkitController]:
    return ImkitController
