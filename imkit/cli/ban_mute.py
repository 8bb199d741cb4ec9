"""``imkit ban``, ``unban``, ``bans``, ``mute``, ``unmute``: moderation of the running
server (every node of a cluster), through its admin socket."""

from __future__ import annotations

import json
from typing import Any

import click

from imkit.cli.options import TEXT, Duration, Usage, option
from imkit.cli.server_admin import _admin_options, _admin_request, _table, room_option
from imkit.client.output import write_line

_FOR = option(
    "--for",
    "duration",
    type=Duration(),
    default=None,
    metavar="DURATION",
    show_default="permanent",
    help="How long: 90s, 10m, 2h, 7d.",
)
_REASON = option("--reason", type=TEXT, metavar="TEXT", default=None, help="Told to the user.")


@click.command(short_help="Ban an address, a network, an account or an online guest's address.")
@click.argument("target", type=TEXT)
@_FOR
@_REASON
@room_option("Ban TARGET from this room only (a name, account:NAME, an address, a network).")
@_admin_options
def ban(
    target: str,
    duration: float | None,
    reason: str | None,
    room: str | None,
    port: int,
    admin_socket: str | None,
) -> None:
    """Ban TARGET: an IPv4 or IPv6 address, a network (CIDR, e.g. 198.51.100.0/24), an
    account (it can no longer log in, from anywhere), or the name of a guest online (its
    address is banned). An IPv6 address stands for its /64, as in the per-address limits
    (one host has a whole /64); give a longer prefix (2001:db8::1/128) for less.
    Matching users are removed at once, with a bye that says why and until when;
    matching new connections and logins are refused. The ban is kept (it survives a
    restart) and ends by itself after --for.

    With --room '#ROOM', a room ban instead (docs/rooms.md): TARGET is a user name (the
    name it joins under), account:NAME, an address or a network; it keeps matching
    users from joining the room (who is in it stays until kicked: imkit kick --room),
    the room's members are told (+b by the administrator), and a registered room keeps
    it across restarts. A room ban has no --for and no --reason.

    \b
    Exit status: 0 banned; 1 refused (no such user online, no such room, store
    unavailable); 2 usage error; 3 no server answers on the admin socket.
    """
    if room is not None:
        if duration is not None or reason is not None:
            raise Usage("a room ban (--room) has no --for and no --reason")
        from imkit.cli.rooms import ban_room

        request = {"type": "ban", "target": target, "room": room}
        ban_room(_admin_request(port, admin_socket, request), on=True)
        return
    payload: dict[str, Any] = {"type": "ban", "target": target, "for": duration, "reason": reason}
    reply = _admin_request(port, admin_socket, payload)
    until = f" until {reply['until']}" if reply.get("until") else ""
    removed = reply["removed"]
    # An IPv6 address's owner has its whole /64: say that the ban covers it.
    covers = f" (the /64 of {reply['of']})" if reply.get("of") else ""
    write_line(
        f"banned {reply['target']}{covers}{until}; {removed} user{'s' * (removed != 1)} removed"
    )


@click.command(short_help="Lift a ban.")
@click.argument("target", type=TEXT)
@room_option("Lift the room's ban on TARGET (as imkit rooms --json lists its bans).")
@_admin_options
def unban(target: str, room: str | None, port: int, admin_socket: str | None) -> None:
    """Lift the ban on TARGET (the address or network as `imkit bans` shows it). With
    --room '#ROOM', the room's ban on TARGET (its members are told: -b).

    \b
    Exit status: 0 lifted; 1 no such ban (or room); 2 usage error; 3 no server answers.
    """
    if room is not None:
        from imkit.cli.rooms import ban_room

        payload = {"type": "unban", "target": target, "room": room}
        ban_room(_admin_request(port, admin_socket, payload), on=False)
        return
    reply = _admin_request(port, admin_socket, {"type": "unban", "target": target})
    write_line(f"unbanned {reply['target']}")


@click.command(short_help="List the bans in force.")
@_admin_options
@option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bans(port: int, admin_socket: str | None, as_json: bool) -> None:
    """List the bans in force, oldest first: target, kind (address or network), until
    when (or permanent), reason, and who made it.

    \b
    Exit status: 0 listed; 2 usage error; 3 no server answers on the admin socket.
    """
    listed = _admin_request(port, admin_socket, {"type": "bans"})["bans"]
    if as_json:
        write_line(json.dumps(listed, ensure_ascii=False, indent=2))
        return
    rows = [
        [b["target"], b["kind"], b["until"] or "permanent", b["reason"] or "-", b["by"]]
        for b in listed
    ]
    write_line(_table(["TARGET", "KIND", "UNTIL", "REASON", "BY"], rows))


@click.command(short_help="Mute a user: it reads, but may not speak or rename.")
@click.argument("name", type=TEXT)
@_FOR
@_REASON
@_admin_options
def mute(
    name: str, duration: float | None, reason: str | None, port: int, admin_socket: str | None
) -> None:
    """Mute the user NAME (on any node of a cluster): it stays online and reads, but its
    messages and renames are refused (error code muted) until --for ends, or, without
    --for, for as long as it is connected. A mute on an account is kept with it: it
    holds across reconnects and restarts (without --for, until unmute), and an account
    that is offline is muted from its next login.

    \b
    Exit status: 0 muted; 1 no such user online; 2 usage error; 3 no server answers.
    """
    payload = {"type": "mute", "name": name, "for": duration, "reason": reason}
    reply = _admin_request(port, admin_socket, payload)
    end = reply.get("until")
    # A cluster node that is silent: the mute is held, in force when it answers again.
    pending = ""
    if reply.get("pending"):
        pending = (
            f"; its node has been silent for {reply['silent_s']}s: the mute takes effect"
            " when it answers again"
        )
    if reply.get("account"):  # kept with the account: reconnecting does not end it
        until = f"until {end}" if end else "until unmuted"
        write_line(f"muted {reply['name']} {until}, also after reconnects (an account){pending}")
    else:  # a guest's mute is its connection's: it ends when the guest disconnects
        until = f"until {end} or until it disconnects" if end else "until it disconnects"
        write_line(f"muted {reply['name']} {until}{pending}")


@click.command(short_help="Lift a mute.")
@click.argument("name", type=TEXT)
@_admin_options
def unmute(name: str, port: int, admin_socket: str | None) -> None:
    """Let the user NAME speak again.

    \b
    Exit status: 0 done; 1 no such user online; 2 usage error; 3 no server answers.
    """
    reply = _admin_request(port, admin_socket, {"type": "unmute", "name": name})
    write_line(f"unmuted {reply['name']}")
