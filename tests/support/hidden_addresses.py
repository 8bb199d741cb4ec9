"""``--hide-addresses``: clients that record what they are told; checks that no address leaks."""

from __future__ import annotations

import re

import anyio

from tests.support import (
    TIMEOUT,
    LineClient,
    split_addr,
)


class Recorded(LineClient):
    """A line client that keeps every line it received, for the scan."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[str] = []

    async def line(self, timeout: float = TIMEOUT) -> str:
        line = await super().line(timeout)
        self.seen.append(line)
        return line

    @property
    def ip(self) -> str:
        return split_addr(self.addr)[0]

    async def read_all(self) -> None:
        """Read whatever is still on its way (into ``seen``)."""
        while not await self.silent(0.3):
            pass


async def connect_from(ip: str, address: str) -> Recorded:
    host, port = split_addr(address)
    return Recorded(await anyio.connect_tcp(host, port, local_host=ip))


def leaks(client: Recorded, others: list[Recorded]) -> list[str]:
    """Every other client's address, port or IP found in what ``client`` received (its
    own IP is allowed: its welcome shows its own address)."""
    received = "".join(client.seen)
    found = []
    for other in others:
        if other is client:
            continue
        ip, port = split_addr(other.addr)
        if other.addr in received or re.search(rf":{port}\b", received):
            found.append(other.addr)
        if ip != client.ip and ip in received:
            found.append(ip)
    return found


PSEUDONYM = re.compile(r"^anon:[a-z2-7]{6}$")
