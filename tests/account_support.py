"""A real ``imkit serve`` with accounts, as a subprocess, for the clients' end-to-end
tests: passwords hashed cheaply (``--password-hash-cost 4``), its admin socket in a
short folder, and accounts added the way an operator adds them (``imkit account add``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.support import ServerProcess, run_imkit, split_addr, start_server_process

COST = "4"  # scrypt N = 16: hashing takes microseconds


@dataclass
class AccountsServer:
    process: ServerProcess
    admin_socket: Path

    @property
    def address(self) -> str:
        return self.process.address

    @property
    def host(self) -> str:
        return split_addr(self.address)[0]

    @property
    def port(self) -> int:
        return split_addr(self.address)[1]

    def account(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        """``imkit account ARGS`` on this server: (status, stdout, stderr)."""
        result = run_imkit("account", *args, "--admin-socket", str(self.admin_socket), stdin=stdin)
        return result.returncode, result.stdout, result.stderr

    def add(self, name: str, password: str = "pw") -> None:
        status, out, err = self.account("add", name, "--password-stdin", stdin=password + "\n")
        assert status == 0, err
        assert out.startswith(f"added account {name}")

    def stop(self) -> None:
        self.process.stop()


def start_accounts_server(folder: Path, *args: str) -> AccountsServer:
    admin_socket = folder / "admin.sock"
    process = start_server_process(
        *("--idle-timeout", "0", "--password-hash-cost", COST, "--db", "none"),
        *("--admin-socket", str(admin_socket), *args),
    )
    return AccountsServer(process, admin_socket)
