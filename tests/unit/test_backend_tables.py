"""The hub's backend and its dispatch tables (issue 27): one table entry per command
and per admin request, the shared decisions behind the backend, and an operator
package that never imports the cluster."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import imkit
from imkit.hub.core import Hub
from imkit.hub.directory import LocalDirectory
from imkit.hub.local import LocalBackend
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.operator import answers
from imkit.protocol import Command, Login, Passwd, PublicMessage, ServerConnection

PACKAGE = Path(imkit.__file__).parent


def _subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        found |= {sub} | _subclasses(sub)
    return found


def _member(hub: Hub, addr: str = "127.0.0.1:5000") -> Member:
    return hub.new_member(addr, ServerConnection(), Outbox(1 << 20), now=0.0)


def test_every_command_the_hub_handles_has_one_entry() -> None:
    # Login and passwd are a connection's to await (imkit.hub.credentials), never the hub's.
    hub = Hub()
    handled_elsewhere: set[type] = {Login, Passwd}
    assert set(hub._commands) == _subclasses(Command) - handled_elsewhere


def test_a_hub_on_its_own_has_the_local_backend_and_directory() -> None:
    hub = Hub()
    assert isinstance(hub.backend, LocalBackend)
    assert isinstance(hub.directory, LocalDirectory)
    assert hub.features == ("history", "accounts", "rooms", "search", "edit")
    assert hub.on_command is None


class _Recording(LocalBackend):
    """The local backend, with its public entry replaced and every command noted."""

    def __init__(self) -> None:
        self.public_seen: list[str] = []
        self.noticed: list[int] = []
        self.on_command = self._notice

    def _notice(self, member: Member) -> None:
        self.noticed.append(member.id)

    def public(self, member: Member, command: PublicMessage) -> None:
        self.public_seen.append(command.text)


def test_a_backend_overrides_an_entry_of_the_command_table() -> None:
    backend = _Recording()
    hub = Hub(backend=backend)
    member = _member(hub)
    hub.join(member)
    hub.handle(member, PublicMessage(id=None, text="hello"))
    assert backend.public_seen == ["hello"]
    assert backend.noticed == [member.id]
    assert hub.stats.public_received == 0  # the local entry never ran


def test_every_admin_request_is_one_entry_of_one_table() -> None:
    assert set(answers.REQUESTS) == {
        "who",
        "kick",
        "stats",
        "history",
        "ban",
        "unban",
        "bans",
        "mute",
        "unmute",
        "history_delete",
        "account_add",
        "account_passwd",
        "account_remove",
        "accounts",
        "rooms",
        "room_add",
        "room_remove",
        "room_op",
        "room_deop",
        "room_set",
        "hook_add",
        "hook_add_outgoing",
        "hooks",
        "hook_remove",
    }


class _Served:
    def __init__(self) -> None:
        self.hub = Hub()


async def _ask(request: Any) -> dict[str, Any]:
    served: Any = _Served()
    return await answers.answer(served, json.dumps(request).encode())


async def test_an_unknown_or_unhashable_request_type_is_refused_by_name() -> None:
    for kind in ("nope", ["who"], None, 3):
        reply = await _ask({"type": kind})
        assert reply == {
            "type": "error",
            "code": "bad_request",
            "message": f"unknown request type {kind!r}",
        }


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, TYPE_CHECKING ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_neither_the_hub_nor_the_operator_imports_the_cluster() -> None:
    # Only the server (imkit.server.node) chooses the Redis backend.
    for package in ("hub", "operator"):
        for path in sorted((PACKAGE / package).glob("*.py")):
            cluster = {name for name in _imports(path) if name.startswith("imkit.cluster")}
            assert not cluster, f"{path.name} imports {cluster}"


def test_the_cluster_imports_nothing_of_the_operator() -> None:
    for path in sorted((PACKAGE / "cluster").glob("*.py")):
        operator = {name for name in _imports(path) if name.startswith("imkit.operator")}
        assert not operator, f"{path.name} imports {operator}"


def test_no_module_of_imkit_is_over_600_lines() -> None:
    # What one person holds in mind (issue 27): a module that grows past it is split.
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50
    too_long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in modules
        if (lines := path.read_text().count("\n")) > 600
    }
    assert too_long == {}
