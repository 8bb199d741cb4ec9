"""``imkit hook add|add-outgoing|list|remove``: the running server's webhooks
(docs/integrations.md, "Managing hooks"), through its admin socket.

Client side only, like server_admin.py: nothing of the server is imported. A new
incoming hook's key (in its URL) and a new outgoing hook's secret are printed once,
by the command that made the hook: the server keeps only the key's digest, and lists
neither.
"""

from __future__ import annotations

import json
from typing import Any

import click

from imkit.cli.options import TEXT, option
from imkit.cli.server_admin import _admin_options, _admin_request, _table
from imkit.client.output import write_line

_ROOM = click.argument("room", type=TEXT, metavar="'#ROOM'")
_NAME = click.option(
    "--name", type=TEXT, default=None, metavar="NAME", help="The hook's name (a user name)."
)


@click.group(short_help="Add, list and remove webhooks (through the admin socket).")
def hook() -> None:
    """Incoming webhooks (add: a URL that posts into a room) and outgoing ones
    (add-outgoing: a room's messages POSTed to a URL); list them; remove one.
    docs/integrations.md.

    \b
    Exit status: 0 done; 1 refused (no such room, a name taken, the store cannot
    write...: the reason is on stderr); 2 usage error; 3 no server answers on the
    admin socket.
    """


@hook.command(short_help="Add an incoming webhook: prints its URL (and key) once.")
@_ROOM
@_NAME
@click.option(
    "--allow-username",
    is_flag=True,
    help="A payload's username is posted as (if nobody holds it and no account has it).",
)
@_admin_options
def add(
    room: str, name: str | None, allow_username: bool, port: int, admin_socket: str | None
) -> None:
    """Add an incoming webhook to the registered room #ROOM (quote it: '#' begins a
    comment in a shell): a POST of Slack's or Mattermost's JSON to its URL posts into
    the room as the hook's name (webhook without --name), marked as a bot. The URL's
    last part is the hook's key: it is printed now and never again (the server keeps
    only its digest); remove the hook and add it again to get a new one."""
    payload = {"type": "hook_add", "room": room, "name": name, "allow_username": allow_username}
    reply = _admin_request(port, admin_socket, payload)
    made = reply["hook"]
    write_line(f"incoming hook {made['name']} added to {made['room']}")
    for url in reply["urls"]:
        write_line(url)
    if not reply["urls"]:
        write_line(f"key: {reply['key']}")
        write_line("(this server serves no hooks: start it with --web or --hooks HOST:PORT;")
        write_line(" the URL is then http://HOST:PORT/hooks/KEY)")


@hook.command("add-outgoing", short_help="Add an outgoing webhook: prints its secret once.")
@_ROOM
@click.argument("url", type=TEXT)
@_NAME
@click.option(
    "--trigger",
    "triggers",
    type=TEXT,
    multiple=True,
    metavar="WORD",
    help="POST only messages whose first word is WORD (any case); repeatable. None: every message.",
)
@_admin_options
def add_outgoing(
    room: str,
    url: str,
    name: str | None,
    triggers: tuple[str, ...],
    port: int,
    admin_socket: str | None,
) -> None:
    """Add an outgoing webhook to the registered room #ROOM: its messages (those whose
    first word is a --trigger, or all) are POSTed as JSON to URL, signed with the
    secret printed now and never again (X-Imkit-Signature: sha256=HMAC of the body)."""
    payload = {
        "type": "hook_add_outgoing",
        "room": room,
        "url": url,
        "name": name,
        "triggers": list(triggers),
    }
    reply = _admin_request(port, admin_socket, payload)
    made = reply["hook"]
    write_line(f"outgoing hook {made['name']} added to {made['room']}: POSTs to {made['url']}")
    write_line(f"secret: {reply['secret']}")


def _row(row: dict[str, Any]) -> list[str]:
    if row["kind"] == "incoming":
        detail = "username allowed" if row["allow_username"] else "-"
        return [row["name"], "in", row["room"], detail, "-", "-", "-", "-"]
    triggers = ",".join(row["triggers"]) or "*"
    counts = [str(row[field]) for field in ("queued", "delivered", "failed")]
    return [row["name"], "out", row["room"], f"{row['url']} ({triggers})", *counts,
            row["last_error"] or "-"]  # fmt: skip


@hook.command("list", short_help="List the webhooks (never their keys or secrets).")
@_admin_options
@option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_hooks(port: int, admin_socket: str | None, as_json: bool) -> None:
    """List every hook: its name, kind (in, out), room; an outgoing hook's URL and
    triggers (* every message), and its deliveries: queued, delivered, failed, the
    last error. Keys and secrets are never shown."""
    listed = _admin_request(port, admin_socket, {"type": "hooks"})["hooks"]
    if as_json:
        write_line(json.dumps(listed, ensure_ascii=False, indent=2))
        return
    header = ["NAME", "KIND", "ROOM", "URL/OPTIONS", "QUEUED", "DELIVERED", "FAILED", "ERROR"]
    write_line(_table(header, [_row(r) for r in listed]))


@hook.command(short_help="Remove a webhook: its URL stops working.")
@click.argument("name", type=TEXT)
@_admin_options
def remove(name: str, port: int, admin_socket: str | None) -> None:
    """Remove the hook NAME (either kind): an incoming hook's URL answers 404 from now
    on (within a second on every node of a cluster)."""
    reply = _admin_request(port, admin_socket, {"type": "hook_remove", "name": name})
    write_line(f"hook {reply['hook']['name']} removed")
