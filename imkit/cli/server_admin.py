"""``imkit who``, ``kick``, ``stats`` and ``history``: the running server, through its
admin socket (with ``--room``, a room's)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click
from click.core import ParameterSource

from imkit.cli.options import TEXT, Bounded, Duration, Usage, option
from imkit.client.output import write_line
from imkit.protocol import HISTORY_DEFAULT, HISTORY_MAX, ChatMessage, parse_iso_time
from imkit.protocol.codes import DEFAULT_PORT
from imkit.rules.msgid import parse_msgid

F = TypeVar("F", bound=Callable[..., Any])


def _admin_options(func: F) -> F:
    """Which server: --port (to find its default admin socket) or --admin-socket."""
    func = option(
        "--admin-socket",
        type=click.Path(dir_okay=False),
        nonempty=True,
        default=None,
        show_default="derived from --port",
        help="The server's admin socket.",
    )(func)
    return option(
        "--port",
        type=click.IntRange(1, 65535),
        default=DEFAULT_PORT,
        help="The server's port, to find its default admin socket.",
    )(func)


def room_option(help: str) -> Callable[[F], F]:
    """--room on who, kick, history, ban and unban. No IMKIT_ROOM variable: a room set
    in the environment (for imkit send) must never turn a server-wide kick or ban into
    a room's."""
    return click.option("--room", type=TEXT, metavar="#ROOM", default=None, help=help)


def _admin_request(port: int, admin_socket: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    from imkit.client import admin

    path = Path(admin_socket) if admin_socket else admin.default_path(port)
    return anyio.run(admin.request, path, payload, backend="asyncio")


def _duration(seconds: float) -> str:
    """5s, 4m05s, 2h03m, 3d04h: two units at most, for a table."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


@click.command(short_help="List who is online (through the admin socket).")
@room_option("Only the members of this room, with a ROOM column: operator or voice.")
@_admin_options
@option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def who(room: str | None, port: int, admin_socket: str | None, as_json: bool) -> None:
    """List the users online, in order of arrival: name, address, connected for, idle
    for, mode (text or json), and the account each is logged in to (- for a guest).

    In a cluster (--cluster), everyone on every node, with a NODE column. With
    --hide-addresses, a PSEUDONYM column: what users see in place of each address.

    \b
    Exit status: 0 listed; 1 refused, or (in a cluster) only this node's users could be
    listed because the cluster's Redis cannot be reached; 2 usage error; 3 no server
    answers on the admin socket; 4 standard output could not be written; 141 it was
    closed by its reader.
    """
    if room is not None:
        reply = _admin_request(port, admin_socket, {"type": "who", "room": room})
        _who_table(reply["users"], as_json, room=True)
        return
    reply = _admin_request(port, admin_socket, {"type": "who"})
    _who_table(reply["users"], as_json)
    if reply.get("partial"):
        message = f"only this node's users: {reply.get('problem')}"
        click.echo(f"imkit who: {message}", err=True)
        sys.exit(1)


def _who_table(users: list[dict[str, Any]], as_json: bool, *, room: bool = False) -> None:
    """The users as JSON or a table; ``room``: a ROOM column (operator or voice)."""
    if as_json:
        write_line(json.dumps(users, ensure_ascii=False, indent=2))
        return
    header = ["NAME", "ADDRESS", "CONNECTED", "IDLE", "MODE", "ACCOUNT"]
    rows = [
        [
            u["name"],
            u["addr"],
            _duration(u["connected_s"]),
            _idle(u["idle_s"]),
            u["mode"],
            u.get("account") or "-",
        ]
        for u in users
    ]
    columns = [("NODE", "node"), ("PSEUDONYM", "pseudonym")]  # a cluster; --hide-addresses
    if room:
        header.append("ROOM")
        for row, u in zip(rows, users, strict=True):
            row.append("operator" if u["operator"] else "voice" if u["voice"] else "-")
    for title, field in columns:
        if any(field in u for u in users):
            header.append(title)
            for row, u in zip(rows, users, strict=True):
                row.append(u[field])
    write_line(_table(header, rows))


def _idle(seconds: float | None) -> str:
    # In a cluster only a user's own node knows how long it has been idle.
    return "-" if seconds is None else _duration(seconds)


@click.command(short_help="Disconnect a user (through the admin socket).")
@click.argument("name", type=TEXT)
@option("--reason", type=TEXT, metavar="TEXT", default=None, help="Told to the user.")
@room_option("Take NAME out of this room only: it stays online.")
@_admin_options
def kick(
    name: str, reason: str | None, room: str | None, port: int, admin_socket: str | None
) -> None:
    """Disconnect the user NAME, telling them an administrator removed them and why.
    With --room '#ROOM', take NAME out of that room only (the room's members, NAME too,
    are told it was kicked by the administrator); it stays online.

    \b
    Exit status: 0 kicked; 1 no such user is online (or room, or NAME is not in it); 2
    usage error; 3 no server answers; 4 standard output could not be written; 141 it was
    closed by its reader.
    """
    payload = {"type": "kick", "name": name, "reason": reason}
    if room is not None:
        payload["room"] = room
        reply = _admin_request(port, admin_socket, payload)
        write_line(f"kicked {reply['name']} from {reply['room']}")
        return
    reply = _admin_request(port, admin_socket, payload)
    if reply.get("pending"):  # a cluster node that is silent: done when it answers
        write_line(
            f"kicked {reply['name']}: its node {reply['node']} has been silent for"
            f" {reply['silent_s']}s; the kick takes effect when it answers again"
            " (or its users go offline when it is declared dead)"
        )
        return
    write_line(f"kicked {reply['name']}")


_STATS_LABELS = {
    "uptime_s": "uptime",
    "users_online": "users online",
    "connections_now": "connections now",
    "connections_total": "connections total",
    "messages_received": "messages received",
    "messages_delivered": "messages delivered",
    "slow_consumers": "dropped as slow consumers",
    "idle_kicks": "idle kicks",
    "admin_kicks": "admin kicks",
    "refused_full": "refused: server full",
    "refused_per_address": "refused: too many from one address",
    "refused_unauthorized": "refused: wrong password",
    "refused_unavailable": "refused: store or cluster unavailable",
    "refused_proxy_header": "refused: no valid PROXY header",
    "rooms": "rooms",
    "room_members": "room memberships",
    "room_messages": "room messages received",
    "backpressure_pauses": "readers held back",
    "backpressure_given_up": "clients not waited for",
    "store": "history kept in",
    "store_problem": "store problem",
}


@click.command(short_help="Show the server's counters (through the admin socket).")
@_admin_options
@option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@option(
    "--watch",
    is_flag=True,
    help="Print a row of counts and rates every --interval seconds, until Ctrl-C.",
)
@option(
    "--interval",
    type=Bounded(0.1, 3600),
    default=1.0,
    metavar="SECONDS",
    help="With --watch: seconds between rows (0.1 to 3600).",
)
@click.pass_context
def stats(
    ctx: click.Context,
    port: int,
    admin_socket: str | None,
    as_json: bool,
    watch: bool,
    interval: float,
) -> None:
    """Show uptime, connections now and in total, messages received and delivered,
    clients dropped as slow consumers, idle kicks and admin kicks, messages refused,
    and where history is kept (and why it cannot be written, while it cannot).

    --watch is a live view, like redis-cli --stat: a row every --interval seconds
    (default 1) with the users online, connections open, messages received and copies
    delivered per second over that interval, clients dropped as slow consumers and
    refusals (connections and messages) since the start; the header comes back every
    20 rows. With --json, each row is one JSON object a line: the counters of plain
    --json, plus "time", "messages_per_s" and "deliveries_per_s" (null in the first).

    \b
    Exit status: 0 shown (--watch: stopped with Ctrl-C); 2 usage error; 3 no server
    answers on the admin socket (--watch: at the start, or any more); 4 standard output
    could not be written; 141 it was closed by its reader.
    """
    if not watch:
        if ctx.get_parameter_source("interval") is ParameterSource.COMMANDLINE:
            raise Usage("--interval goes with --watch")
        _stats_once(port, admin_socket, as_json)
        return
    from imkit.client import admin

    path = Path(admin_socket) if admin_socket else admin.default_path(port)
    try:
        anyio.run(_watch, path, as_json, interval, backend="asyncio")
    except KeyboardInterrupt:  # Ctrl-C is how a watch ends
        pass


def _stats_once(port: int, admin_socket: str | None, as_json: bool) -> None:
    reply = _admin_request(port, admin_socket, {"type": "stats"})
    del reply["type"]
    if as_json:
        write_line(json.dumps(reply, indent=2))
        return
    rows = []
    for key, label in _STATS_LABELS.items():
        value = reply.get(key, 0)
        if key == "uptime_s":
            shown = _duration(value)
        elif key == "store_problem":
            shown = "none" if value is None else str(value)
        elif isinstance(value, str):
            shown = value
        else:
            shown = f"{value:,}"
        rows.append([label, shown])
    write_line(_table(["COUNTER", "VALUE"], rows))
    cluster = reply.get("cluster")
    if cluster:
        write_line("")
        write_line(_cluster_table(cluster))


def _cluster_table(cluster: dict[str, Any]) -> str:
    """The cluster section of `imkit stats`: this node, the totals, the live nodes."""
    rows = [
        ["cluster", f"{cluster['name']} on {cluster['redis']}"],
        ["this node", cluster["node"]],
        ["cluster problem", cluster["problem"] or "none"],
        ["Redis found empty", f"{cluster['data_lost']:,} times"],
        ["Redis outages", f"{cluster.get('outages', 0):,} times"],
        ["Redis full", f"{cluster.get('redis_full', 0):,} times"],
    ]
    totals = cluster.get("totals")
    if totals is None:
        rows.append(["cluster totals", "unknown: Redis cannot be reached"])
        return _table(["CLUSTER", "VALUE"], rows)
    for key, value in totals.items():
        rows.append([f"cluster {key.replace('_', ' ')}", f"{value:,}"])
    lines = [_table(["CLUSTER", "VALUE"], rows), ""]
    nodes = [
        [n["id"], n["addr"], f"{n['users']:,}", f"{n['last_seen_s']:.1f}s ago"]
        for n in cluster["nodes"]
    ]
    lines.append(_table(["NODE", "ADDRESS", "USERS", "LAST SEEN"], nodes))
    return "\n".join(lines)


# stats --watch: each column's title and width; the header is repeated every so many rows.
WATCH_COLUMNS = (
    ("TIME", 8),
    ("USERS", 7),
    ("CONNS", 7),
    ("MSGS/S", 10),
    ("DELIVERIES/S", 13),
    ("SLOW", 6),
    ("REFUSED", 8),
)
WATCH_HEADER_EVERY = 20
_REFUSALS = (
    "refused_full",
    "refused_per_address",
    "refused_unauthorized",
    "refused_unavailable",
)


def _watch_line(cells: list[str]) -> str:
    """The time left-aligned, the numbers right-aligned, as in vmstat."""
    (_, width), *rest = WATCH_COLUMNS
    shown = [cells[0].ljust(width)]
    shown += [cell.rjust(w) for cell, (_, w) in zip(cells[1:], rest, strict=True)]
    return " ".join(shown)


def watch_rates(
    previous: dict[str, Any] | None, current: dict[str, Any]
) -> tuple[float | None, float | None]:
    """Messages received and deliveries per second between two stats replies, over the
    time that passed on the server's clock (its uptime); None for the first reply, or
    when the counters went back (a server restarted on the same socket)."""
    if previous is None:
        return None, None
    span = current["uptime_s"] - previous["uptime_s"]
    received = current["messages_received"] - previous["messages_received"]
    delivered = current["messages_delivered"] - previous["messages_delivered"]
    if span <= 0 or received < 0 or delivered < 0:
        return None, None
    return received / span, delivered / span


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


async def _watch(path: Path, as_json: bool, interval: float) -> None:
    """stats --watch: a row every ``interval`` seconds until cancelled (Ctrl-C)."""
    from imkit.client import admin
    from imkit.errors import AdminUnavailable
    from imkit.protocol import iso_time

    previous: dict[str, Any] | None = None
    rows = 0
    due = anyio.current_time()
    while True:
        try:
            reply = await admin.request(path, {"type": "stats"})
        except AdminUnavailable as error:
            if previous is None:
                raise  # nothing answers at all: as plain stats, exit 3
            raise AdminUnavailable(f"the server went away: {error}") from None
        del reply["type"]
        messages, deliveries = watch_rates(previous, reply)
        previous = reply
        if as_json:
            row = {
                "time": iso_time(time.time()),
                **reply,
                "messages_per_s": None if messages is None else round(messages, 3),
                "deliveries_per_s": None if deliveries is None else round(deliveries, 3),
            }
            write_line(json.dumps(row))
        else:
            if rows % WATCH_HEADER_EVERY == 0:
                write_line(_watch_line([title for title, _ in WATCH_COLUMNS]))
            refused = sum(reply.get(key, 0) for key in _REFUSALS)
            cells = [
                time.strftime("%H:%M:%S"),
                f"{reply['users_online']:,}",
                f"{reply['connections_now']:,}",
                _rate(messages),
                _rate(deliveries),
                f"{reply['slow_consumers']:,}",
                f"{refused:,}",
            ]
            write_line(_watch_line(cells))
        rows += 1
        # Rows keep to the interval's beat; one that came late (a busy server) is not
        # made up for with a burst of rows.
        due = max(due + interval, anyio.current_time())
        await anyio.sleep(due - anyio.current_time())


def _msgid(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and parse_msgid(value) is None:
        raise click.BadParameter(f"{value!r} is not a msgid (16 digits, from --json)")
    return value


def _query(value: str | None) -> str | None:
    """--grep's WORDS, refused here as the server would refuse them (a usage error)."""
    from imkit.rules.search import QueryError, query_words

    if value is not None:
        try:
            query_words(value)
        except QueryError as error:
            raise click.BadParameter(str(error)) from None
    return value


def _msgids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    return [v for v in values if _msgid(ctx, param, v)]


@click.group(
    short_help="Show past public messages, or delete some (through the admin socket).",
    invoke_without_command=True,
)
@option(
    "--limit",
    "-n",
    type=click.IntRange(1, HISTORY_MAX),
    default=HISTORY_DEFAULT,
    metavar="N",
    help=f"How many messages: the newest N (1 to {HISTORY_MAX}).",
)
@option(
    "--before",
    metavar="MSGID",
    default=None,
    callback=_msgid,
    help="Only messages older than this one (a msgid from --json), to page back.",
)
@room_option("This room's messages (a room that has ended too) instead of the lobby's.")
@option(
    "--grep",
    metavar="WORDS",
    default=None,
    callback=lambda ctx, param, value: _query(value),
    help="Only messages with every one of WORDS (whole words, any case): a search.",
)
@_admin_options
@option("--json", "as_json", is_flag=True, help="Print JSON, with msgids, instead of lines.")
@click.pass_context
def history(
    ctx: click.Context,
    limit: int,
    before: str | None,
    room: str | None,
    grep: str | None,
    port: int,
    admin_socket: str | None,
    as_json: bool,
) -> None:
    """Show the newest public messages kept, oldest first, one line each:
    "past TIME [ADDRESS]NAME:TEXT", TIME in UTC (control characters in names and texts
    are shown as U+FFFD). --json prints {"messages": [...], "more": ...}, each message
    with its msgid, time, from, addr and text; "more" is true when older ones are kept.
    With --room '#ROOM', that room's messages, each line beginning with the room's name
    ("#ROOM past TIME [ADDRESS]NAME:TEXT"). With --grep WORDS, only the newest
    messages that have every word (whole words, case and accents ignored; a word like
    prod-1 is its parts in a row).

    \b
    `imkit history delete` removes messages (see its --help).

    \b
    Exit status: 0 shown; 1 refused (history cannot be read); 2 usage error; 3 no
    server answers on the admin socket; 4 standard output could not be written; 141 it
    was closed by its reader.
    """
    if ctx.invoked_subcommand is not None:
        return
    from imkit.client.chat import printable

    payload: dict[str, Any] = {"type": "history", "limit": limit}
    if before is not None:
        payload["before"] = before
    if room is not None:
        payload["room"] = room
    if grep is not None:
        payload["query"] = grep
    reply = _admin_request(port, admin_socket, payload)
    del reply["type"]
    shown_room = reply.pop("room", None)
    if as_json:
        write_line(json.dumps(reply, ensure_ascii=False, indent=2))
        return
    for item in reply["messages"]:
        message = ChatMessage(
            printable(item["from"]),
            item["addr"],
            None,
            printable(item["text"]),
            parse_iso_time(item["time"]),
            room=shown_room,
        )
        write_line(message.past_line())


@history.command(short_help="Delete messages from history (spam).")
@click.argument(
    "msgids", nargs=-1, callback=lambda ctx, param, values: [_msgid(ctx, param, v) for v in values]
)
@option("--user", type=TEXT, metavar="NAME", default=None, help="Every message sent under NAME.")
@option(
    "--since",
    type=Duration(),
    default=None,
    metavar="DURATION",
    help="With --user: only those of the last DURATION (90s, 10m, 2h, 7d).",
)
@_admin_options
def delete(
    msgids: list[str],
    user: str | None,
    since: float | None,
    port: int,
    admin_socket: str | None,
) -> None:
    """Delete the messages MSGID... (from `imkit history --json`), or with --user every
    message sent under the name NAME (case and look-alikes ignored, as names are
    compared), only the last --since DURATION when given. They are gone from every later
    history page and replay, on every node of a cluster; the deletion is logged with who
    made it.

    \b
    Exit status: 0 done (it says how many were deleted); 1 refused (the store cannot
    write); 2 usage error; 3 no server answers on the admin socket.
    """
    if bool(msgids) == (user is not None):
        raise Usage("give MSGIDs or --user NAME, not both")
    if since is not None and user is None:
        raise Usage("--since goes with --user")
    payload: dict[str, Any] = {"type": "history_delete"}
    if user is not None:
        payload |= {"user": user, "since": since}
    else:
        payload["msgids"] = list(msgids)
    deleted = _admin_request(port, admin_socket, payload)["deleted"]
    write_line(f"deleted {deleted} message{'s' * (deleted != 1)}")
