"""labeled-response (IRCv3): the replies to a line that carried ``@label=`` come back
with that label, one line tagged, several in a ``labeled-response`` batch, none as an
``ACK``. The wire brackets a labeled line's commands with two markers that travel
through the hub in order (:class:`LabelStart`, :class:`LabelEnd`); what the connection
is given between them is held and sent, labeled, at the end. Replies the hub gives later
(a page of history read from the disk, a cluster's answers) come unlabeled."""

from __future__ import annotations

from typing import Any

from imkit.irc.message import escape_tag, line
from imkit.protocol import Event
from imkit.protocol.records import record


@record
class LabelStart(Event):
    label: str

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {}


@record
class LabelEnd(Event):
    label: str

    def text_line(self) -> None:
        return None

    def json_fields(self) -> dict[str, Any]:
        return {}


def _tagged(text: str, tags: str) -> str:
    """``text`` (one line) with ``tags`` (``a=b;c=d``) added in front of its own."""
    if text.startswith("@"):
        return f"@{tags};{text[1:]}"
    return f"@{tags} {text}"


def labeled(server: str, label: str, held: list[str], reference: str) -> str:
    """The labeled response: ``held`` (the lines given meanwhile) under ``label``."""
    lines = [text for chunk in held for text in chunk.split("\r\n") if text]
    tag = f"label={escape_tag(label)}"
    if not lines:
        return _tagged(line(server, "ACK"), tag)
    if len(lines) == 1:
        return _tagged(lines[0], tag) + "\r\n"
    out = [_tagged(line(server, "BATCH", f"+{reference}", "labeled-response"), tag)]
    out += [_tagged(text, f"batch={reference}") + "\r\n" for text in lines]
    out.append(line(server, "BATCH", f"-{reference}"))
    return "".join(out)
