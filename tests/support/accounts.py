"""A real ``imkit serve`` with accounts, as a subprocess, for the clients' end-to-end
tests: passwords hashed cheaply (``--password-hash-cost 4``), its admin socket in a
short folder, and accounts added the way an operator adds them (``imkit account add``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imkit.server import Server, ServerConfig
from tests.support import (
    LineClient,
    ServerProcess,
    ask,
    run_imkit,
    split_addr,
    start_server_process,
)

COST = 4  # scrypt N = 16: tests hash in microseconds (--password-hash-cost)


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
        *("--idle-timeout", "0", "--password-hash-cost", str(COST), "--db", "none"),
        *("--admin-socket", str(admin_socket), *args),
    )
    return AccountsServer(process, admin_socket)


async def add(server: Server, name: str, password: str = "secret") -> dict[str, Any]:
    reply = await ask(server, type="account_add", name=name, password=password)
    assert reply["type"] == "ok", reply
    return reply


async def json_hello(address: str, **hello: Any) -> tuple[LineClient, dict[str, Any]]:
    client = await LineClient.connect(address)
    reply = await client.request(type="hello", **hello)
    return client, reply


def config(short_dir: Path, **extra: Any) -> ServerConfig:
    settings: dict[str, Any] = {
        "port": 0,
        "db": "none",
        "idle_timeout": 0,
        "rate": 0,
        "admin_socket": str(short_dir / "a.sock"),
        "password_hash_cost": COST,
    }
    return ServerConfig(**(settings | extra))
