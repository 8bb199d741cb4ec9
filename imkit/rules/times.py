"""Time as imkit writes it everywhere (the wire, the admin socket, Redis): ISO 8601 in
UTC, ``2026-11-27T07:00:00.123Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_time(timestamp: float, *, milliseconds: bool = True) -> str:
    """ISO-8601 UTC, e.g. ``2026-11-27T07:00:00.123Z`` (without milliseconds:
    ``2026-11-27T07:00:00Z``)."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    spec = "milliseconds" if milliseconds else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_iso_time(value: object) -> float:
    """The timestamp of an ``iso_time`` string (0.0 when it is missing or malformed)."""
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
