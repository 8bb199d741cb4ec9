"""``imkit serve --log-format json``: one JSON object per log line, for a log collector.

Each line is a JSON object with ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger``, ``event`` (a stable snake_case name for the kind of line: ``connected``,
``kicked``, ``store_failed`` ...), ``message`` (the sentence the text format shows) and
the line's fields, given at the call site as ``extra=``:

    log.info("%s: connected", addr, extra={"event": "connected", "addr": addr})

A traceback goes into ``exc``, so that a line is always one event. The fields are chosen
at each call site; none is ever a password or a message's text (docs/operations.md, "Logs").
``name`` is taken by :class:`logging.LogRecord` (the logger's name), so a user's name
is the field ``user``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = ["FALLBACK_EVENT", "JsonFormatter"]

# The event of a line logged without one (by a library, say).
FALLBACK_EVENT = "log"

# Everything a LogRecord carries by itself: what is left over came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName", "event"}

# json.dumps(ensure_ascii=False) escapes the C0 controls but not these, and
# str.splitlines() (and some collectors) would break a line at them.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (JSON Lines)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", FALLBACK_EVENT),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str).translate(_LINE_BREAKS)
