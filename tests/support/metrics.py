"""/metrics and /healthz of an in-process server, parsed as Prometheus would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import anyio
from prometheus_client.parser import text_string_to_metric_families

from imkit.server import Server
from tests.support import (
    TIMEOUT,
)

# One sample: its name and labels.
Key = tuple[str, frozenset[tuple[str, str]]]


Samples = dict[Key, float]


def get(url: str, timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """A GET's status, content type and body; 4xx and 5xx answers included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            headers = response.headers
            return int(response.status), str(headers["Content-Type"]), response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, str(error.headers["Content-Type"]), error.read().decode()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


class Scraper:
    """/metrics and /healthz of an in-process server, fetched from a thread (the
    server's HTTP thread needs the event loop to answer)."""

    def __init__(self, server: Server) -> None:
        assert server.metrics is not None
        self.base = f"http://{server.metrics.address}"

    async def get(self, path: str) -> tuple[int, str, str]:
        return await anyio.to_thread.run_sync(get, self.base + path)

    async def metrics(self) -> Samples:
        status, content_type, body = await self.get("/metrics")
        assert status == 200, body
        assert content_type.startswith("text/plain; version=0.0.4")
        return parse(body)

    async def health(self) -> tuple[int, dict[str, Any]]:
        status, content_type, body = await self.get("/healthz")
        assert content_type == "application/json"
        answer = json.loads(body)
        assert isinstance(answer, dict)
        return status, answer

    async def until(self, done: Callable[[Samples], bool]) -> Samples:
        """Scrape until ``done`` says the samples are as expected."""
        with anyio.fail_after(TIMEOUT):
            while not done(samples := await self.metrics()):
                await anyio.sleep(0.02)
        return samples

    async def health_until(self, status: int) -> dict[str, Any]:
        with anyio.fail_after(TIMEOUT):
            while (answer := await self.health())[0] != status:
                await anyio.sleep(0.05)
        return answer[1]
