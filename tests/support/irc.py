"""An IRC client for the tests, on a raw socket (tests/server/test_irc.py): it
registers, reads lines and waits for one that matches."""

from __future__ import annotations

import base64
import re

from imkit.server import Server
from tests.support import TIMEOUT, LineClient


def irc_address(server: Server) -> str:
    assert server.irc is not None
    return server.irc.addresses[0]


class IrcClient:
    def __init__(self, client: LineClient, nick: str) -> None:
        self.client = client
        self.nick = nick

    @classmethod
    async def connect(
        cls,
        server: Server,
        nick: str,
        *,
        caps: tuple[str, ...] = (),
        sasl: tuple[str, str] | None = None,
        password: str | None = None,
    ) -> IrcClient:
        client = cls(await LineClient.connect(irc_address(server)), nick)
        if password is not None:
            await client.send(f"PASS {password}")
        if caps or sasl:
            await client.send("CAP LS 302")
            wanted = " ".join(caps + (("sasl",) if sasl else ()))
            await client.send(f"CAP REQ :{wanted}")
            await client.expect(r" CAP \S+ ACK ")
        if sasl:
            await client.send("AUTHENTICATE PLAIN")
            await client.expect(r"^AUTHENTICATE \+")
            blob = base64.b64encode(f"\0{sasl[0]}\0{sasl[1]}".encode()).decode()
            await client.send(f"AUTHENTICATE {blob}")
            await client.expect(r" 90[34] ")
        await client.send(f"NICK {nick}", f"USER {nick} 0 * :Real {nick}")
        if caps or sasl:
            await client.send("CAP END")
        await client.expect(r" 001 ")
        await client.expect(r" (376|422) ")
        return client

    async def send(self, *lines: str) -> None:
        await self.client.send("".join(f"{line}\r\n" for line in lines))

    async def line(self, timeout: float = TIMEOUT) -> str:
        return (await self.client.line(timeout)).rstrip("\r\n")

    async def expect(self, pattern: str, timeout: float = TIMEOUT) -> str:
        """The first line matching ``pattern`` (the lines before it are skipped)."""
        while True:
            text = await self.line(timeout)
            if re.search(pattern, text):
                return text

    async def sync(self) -> list[str]:
        """Every line until the answer to a PING sent now (the server answers in order)."""
        await self.send("PING sync")
        lines: list[str] = []
        while True:
            text = await self.line()
            if text.endswith("PONG") or " PONG " in text and text.endswith(" sync"):
                return lines
            lines.append(text)
