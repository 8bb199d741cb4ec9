"""What imkit's log lines look like, and the records a test captured."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from imkit.cli.logformat import JsonFormatter

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


SNAKE_CASE = re.compile(r"^[a-z]+(_[a-z]+)*$")


PUBLIC_TEXT = "zebra-quartz-4711 said in public"


def json_records(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The records of ``event`` caught in this process, as --log-format json has them."""
    formatter = JsonFormatter()
    entries = [json.loads(formatter.format(record)) for record in caplog.records]
    return [entry for entry in entries if entry["event"] == event]
