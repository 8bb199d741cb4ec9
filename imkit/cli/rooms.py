"""``imkit rooms`` and ``imkit room add|remove|op|deop|set``: the running server's rooms
(docs/rooms.md, "What the administrator can do"), through its admin socket; and what
``ban`` and ``unban`` print with ``--room``.

Client side only, like server_admin.py: nothing of the server is imported.
"""

from __future__ import annotations

import json
from typing import Any

import click

from imkit.cli.options import TEXT, Usage, option
from imkit.cli.server_admin import _admin_options, _admin_request, _table
from imkit.client.output import write_line

_ROOM = click.argument("room", type=TEXT, metavar="'#ROOM'")


def _modes(row: dict[str, Any]) -> str:
    return " ".join((row["modes"], *row.get("args", [])))


@click.command(short_help="List every room (through the admin socket).")
@_admin_options
@option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def rooms(port: int, admin_socket: str | None, as_json: bool) -> None:
    """List every room, secret ones too: its name (registered ones marked *), how many
    members it has, its settings (IRC's channel modes: +i invite-only, +k key, +l limit,
    +m moderated, +n no messages from outside, +s secret, +t topic locked; the key is
    shown) and its topic. The lobby is not listed (imkit who lists its users). --json
    adds each room's operators (accounts), bans, ban exceptions and invite exceptions.

    \b
    Exit status: 0 listed; 1 refused; 2 usage error; 3 no server answers on the admin
    socket; 4 standard output could not be written; 141 it was closed by its reader.
    """
    listed = _admin_request(port, admin_socket, {"type": "rooms"})["rooms"]
    if as_json:
        write_line(json.dumps(listed, ensure_ascii=False, indent=2))
        return
    from imkit.client.chat import printable

    rows = [
        [
            r["room"] + (" *" if r["registered"] else ""),
            f"{r['members']:,}",
            _modes(r),
            printable(r["topic"]) if r["topic"] else "-",
        ]
        for r in listed
    ]
    write_line(_table(["ROOM", "MEMBERS", "MODES", "TOPIC"], rows))
    if any(r["registered"] for r in listed):
        write_line("* registered: kept across restarts (imkit room remove ends it)")


@click.group(short_help="Register, remove and set up rooms (through the admin socket).")
def room() -> None:
    """Register a room (add), end one (remove), make an account one of its operators
    (op, deop), change its topic and settings (set). Each prints what it did.

    \b
    Exit status: 0 done; 1 refused (no such room, no such account, the store cannot
    write...: the reason is on stderr); 2 usage error; 3 no server answers on the
    admin socket.
    """


@room.command(short_help="Register a room: it is kept, with its settings, across restarts.")
@_ROOM
@click.option("--topic", type=TEXT, metavar="TEXT", default=None, help="Its topic.")
@click.option("--secret", is_flag=True, help="Listed and shown to its members only (+s).")
@click.option("--invite-only", is_flag=True, help="Only invited users join (+i).")
@click.option("--moderated", is_flag=True, help="Only operators and voiced users speak (+m).")
@_admin_options
def add(
    room: str,
    topic: str | None,
    secret: bool,
    invite_only: bool,
    moderated: bool,
    port: int,
    admin_socket: str | None,
) -> None:
    """Register the room #ROOM (quote it: '#' begins a comment in a shell): it is kept
    with its topic, settings, bans and operators across restarts, and does not end when
    its last member leaves. A room that exists (made by a join) is registered as it is,
    its members staying. Its operators are the accounts `imkit room op` names.
    """
    payload = {
        "type": "room_add",
        "room": room,
        "topic": topic,
        "secret": secret or None,
        "invite_only": invite_only or None,
        "moderated": moderated or None,
    }
    reply = _admin_request(port, admin_socket, payload)
    members = reply["members"]
    write_line(
        f"registered {reply['room']} ({reply['modes']}, {members} member{'s' * (members != 1)})"
    )


@room.command(short_help="End a room: its members are taken out, it is unregistered.")
@_ROOM
@_admin_options
def remove(room: str, port: int, admin_socket: str | None) -> None:
    """End the room #ROOM: every member is told it was removed by the administrator and
    taken out of it, a registered room is forgotten, and no account is put back in it
    at login. Its history is kept (imkit history --room).
    """
    reply = _admin_request(port, admin_socket, {"type": "room_remove", "room": room})
    removed = reply["removed"]
    what = "unregistered and ended" if reply["registered"] else "ended"
    write_line(f"{reply['room']} {what}; {removed} member{'s' * (removed != 1)} taken out")


@room.command(short_help="Make an account an operator of a registered room.")
@_ROOM
@click.argument("account", type=TEXT)
@_admin_options
def op(room: str, account: str, port: int, admin_socket: str | None) -> None:
    """Make the account ACCOUNT an operator of the registered room #ROOM: its users in
    the room are operators now, and whenever it joins (logged in) later."""
    _op(room, account, port, admin_socket, on=True)


@room.command(short_help="Make an account no longer an operator of a registered room.")
@_ROOM
@click.argument("account", type=TEXT)
@_admin_options
def deop(room: str, account: str, port: int, admin_socket: str | None) -> None:
    """The account ACCOUNT is no longer an operator of the registered room #ROOM (its
    users in the room lose operator status now)."""
    _op(room, account, port, admin_socket, on=False)


def _op(room: str, account: str, port: int, admin_socket: str | None, *, on: bool) -> None:
    kind = "room_op" if on else "room_deop"
    reply = _admin_request(port, admin_socket, {"type": kind, "room": room, "account": account})
    what = "now" if on else "no longer"
    write_line(f"{reply['account']} is {what} an operator of {reply['room']}")


@room.command(name="set", short_help="Change a room's topic and settings.")
@_ROOM
@click.option("--topic", type=TEXT, metavar="TEXT", default=None, help="'' clears it.")
@click.option("--secret/--no-secret", default=None, help="+s / -s.")
@click.option("--invite-only/--no-invite-only", default=None, help="+i / -i.")
@click.option("--moderated/--no-moderated", default=None, help="+m / -m.")
@click.option("--key", type=TEXT, metavar="KEY", default=None, help="A key to join (+k).")
@click.option("--no-key", is_flag=True, help="No key (-k).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), metavar="N", default=None, help="+l N.")
@click.option("--no-limit", is_flag=True, help="No member limit (-l).")
@_admin_options
def set_room(
    room: str,
    topic: str | None,
    secret: bool | None,
    invite_only: bool | None,
    moderated: bool | None,
    key: str | None,
    no_key: bool,
    limit: int | None,
    no_limit: bool,
    port: int,
    admin_socket: str | None,
) -> None:
    """Change the topic and settings of the room #ROOM; what is not given stays as it
    is. The room's members are told (as by "the administrator"); a registered room's
    change is kept first.
    """
    if key is not None and no_key:
        raise Usage("give --key or --no-key, not both")
    if limit is not None and no_limit:
        raise Usage("give --limit or --no-limit, not both")
    payload: dict[str, Any] = {"type": "room_set", "room": room, "topic": topic}
    payload |= {"secret": secret, "invite_only": invite_only, "moderated": moderated}
    if key is not None or no_key:
        payload["key"] = key
    if limit is not None or no_limit:
        payload["limit"] = limit
    if all(
        payload.get(f) is None for f in ("topic", "secret", "invite_only", "moderated")
    ) and not ({"key", "limit"} & payload.keys()):
        raise Usage("nothing to change: give --topic, --secret, --key, --limit... (see --help)")
    reply = _admin_request(port, admin_socket, payload)
    modes = " ".join((reply["modes"], *reply["mode_args"]))
    topic_shown = f"; topic: {reply['topic']}" if reply["topic"] else ""
    write_line(f"{reply['room']} is {modes}{topic_shown}")


# ------------------------------------------------ --room on the other commands


def ban_room(reply: dict[str, Any], on: bool) -> None:
    """``imkit ban --room`` and ``unban --room``: what was done, and who is still in."""
    if not on:
        write_line(f"{reply['mask']} is no longer banned from {reply['room']}")
        return
    line = f"banned {reply['mask']} from {reply['room']}"
    matching = reply.get("matching") or []
    if matching:
        names = ", ".join(matching)
        line += f"; still in it until kicked (imkit kick NAME --room): {names}"
    write_line(line)
