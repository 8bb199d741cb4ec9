"""Names: the rules before look-alikes, and accounts added the way an operator adds them."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from imkit.operator import answers
from imkit.rules.names import MAX_NAME_LENGTH
from imkit.server import Server


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


async def _add_account(server: Server, name: str, password: str) -> dict[str, Any]:
    request = {"type": "account_add", "name": name, "password": password}
    reply: dict[str, Any] = await answers.answer(server, json.dumps(request).encode(), by="test")
    return reply
