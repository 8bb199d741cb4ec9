"""Replies and kept mail that a server owes a client that reads slowly."""

from __future__ import annotations

from imkit.server import Server
from tests.support import ask, joined


async def waiting(server: Server, account: str) -> int:
    listed = await ask(server, type="accounts")
    [entry] = [a for a in listed["accounts"] if a["name"] == account]
    count: int = entry["waiting"]
    return count


def control_text(number: int, size: int) -> str:
    """A message of raw control characters, as the hostile test sent them: each is six
    bytes in JSON (\\u0001), so the JSON form is about six times the text's length."""
    return f"{number:03d}" + "\x01" * (size - 3)


async def mail(address: str, to: str, texts: list[str]) -> None:
    """A guest leaves ``texts`` for the offline account ``to`` as the hostile test did,
    over text (a JSON request could not carry 4,000 control characters: escaped, it
    would pass the JSON line limit); each is acknowledged as kept."""
    sender = await joined(address)
    kept = f"{to} is offline; the message will be delivered when {to} logs in\n"
    for text in texts:
        await sender.send(f"to|{to}|{text}\n")
        assert await sender.line() == kept
    await sender.aclose()
