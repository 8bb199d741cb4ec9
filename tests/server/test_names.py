"""User names: validity and the one name key (imkit/names.py), pure.

Here the tests that need an in-process server on loopback; the others are in
behaviour/test_names.py, unit/test_names.py."""

from __future__ import annotations

import pytest

from imkit.operator import account_requests
from imkit.server import Server
from tests.support import joined
from tests.support.names import _add_account, _old_name_problem

# ------------------------------------------------------------------ properties


async def test_an_account_added_before_the_rule_keeps_its_name(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An account whose name an older server allowed ("ᴀlice": small capital A) still
    # logs in under it and still reserves it; nobody may take it as a new name.
    with monkeypatch.context() as older_server:
        older_server.setattr(account_requests, "name_problem", _old_name_problem)
        assert (await _add_account(server, "\u1d00lice", "pw"))["type"] == "ok"
    assert (await _add_account(server, "\u1d00lice", "pw"))["code"] == "invalid_name"
    user = await joined(server.addresses[0])
    await user.send("login|\u1d00lice|pw\n".encode())
    assert await user.line() == "you have logged in as \u1d00lice\n"
    await user.send(b"hi\n")
    assert await user.line() == f"[{user.addr}]\u1d00lice:hi\n"
    guest = await joined(server.addresses[0])
    await guest.send("rename|\u1d00lice\n".encode())
    assert (await guest.line_matching("error")).startswith("error: invalid name")
