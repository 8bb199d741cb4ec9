"""User names: validity and the one name key (imkit/names.py), pure."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import strategies as st

from imkit.operator import account_requests, answers
from imkit.rules.names import MAX_NAME_LENGTH
from imkit.server import Server
from tests.support import joined

# ------------------------------------------------------------------ what collides


# ------------------------------------------------------------------ stable keys


# ------------------------------------------------------------------ validity


def _old_name_problem(name: str) -> str | None:
    """The rules before look-alike names (once in protocol.py), kept to compare against."""
    if not name:
        return "a name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a name has at most {MAX_NAME_LENGTH} characters"
    for char in name:
        if char in "|:":
            return f"a name cannot contain {char!r}"
        if char.isspace():
            return "a name cannot contain spaces"
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            return "a name cannot contain control or unassigned characters"
    return None


# ------------------------------------------------------------------ properties

names = st.text(min_size=1, max_size=MAX_NAME_LENGTH)


async def _add_account(server: Server, name: str, password: str) -> dict[str, Any]:
    request = {"type": "account_add", "name": name, "password": password}
    reply: dict[str, Any] = await answers.answer(server, json.dumps(request).encode(), by="test")
    return reply


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
