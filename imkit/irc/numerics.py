"""The lines every IRC client is told alike but for its nick: numerics, FAIL replies,
the capabilities offered, the welcome burst (001-005) with an ISUPPORT that tells the
truth, LUSERS, MOTD, TIME. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from imkit.irc.message import clean, line, trailing_line
from imkit.protocol.queries import Counts
from imkit.rules.names import MAX_NAME_LENGTH
from imkit.rules.rooms import MAX_ROOM_BANS, ROOM_NAME_MAX, TOPIC_MAX

if TYPE_CHECKING:
    from imkit.irc.wire import IrcConnection

# Capabilities offered (CAP LS), docs/irc.md; "sasl" is offered with its mechanism.
CAPABILITIES = (
    "account-notify",
    "account-tag",
    "away-notify",
    "cap-notify",
    "echo-message",
    "extended-join",
    "message-tags",
    "multi-prefix",
    "batch",
    "draft/chathistory",
    "draft/message-redaction",
    "labeled-response",
    "sasl",
    "server-time",
    "setname",
    "userhost-in-names",
)
# RPL_ISUPPORT: what this server is, told truthfully (docs/irc.md).
ISUPPORT = (
    "AWAYLEN=300",
    "CASEMAPPING=rfc8265",
    f"CHANLIMIT=#:{50}",
    "CHANMODES=beI,k,l,imnst",
    f"CHANNELLEN={ROOM_NAME_MAX + 1}",
    "CHANTYPES=#",
    "CHATHISTORY=100",
    "MSGREFTYPES=msgid",
    "CLIENTTAGDENY=*",  # client-only tags are not relayed
    "ELIST=",
    "EXCEPTS=e",
    "INVEX=I",
    "KICKLEN=300",
    f"MAXLIST=b:{MAX_ROOM_BANS},e:{MAX_ROOM_BANS},I:{MAX_ROOM_BANS}",
    "MODES=10",
    "NETWORK=imkit",
    f"NICKLEN={MAX_NAME_LENGTH}",
    "PREFIX=(ov)@+",
    "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:,PART:,KICK:,NAMES:,WHOIS:4,ISON:,USERHOST:5",
    f"TOPICLEN={TOPIC_MAX}",
    "UTF8ONLY",
)
USER_MODES = "iwx"
CHANNEL_MODES = "beiIklmnostv"
CHANNEL_MODES_WITH_ARGS = "beIklov"
# The replies that list a room's masks (MODE #ROOM +b, +e, +I): each mask's numeric, the
# end's, and the end's text.
LIST_NUMERICS = {
    "b": ("367", "368", "End of channel ban list"),
    "e": ("348", "349", "End of channel exception list"),
    "I": ("346", "347", "End of channel invite exception list"),
}


def raw(source: str | None, command: str, *params: str) -> str:
    return line(source, command, *params)


def numeric(conn: IrcConnection, code: str, *params: str) -> str:
    """A numeric reply to ``conn``: ``:SERVER CODE NICK PARAMS...``, the last one
    trailing."""
    return (
        trailing_line(conn.server, code, conn.nick, *params)
        if params
        else line(conn.server, code, conn.nick)
    )


def cap_value(conn: IrcConnection, cap: str) -> str:
    if cap == "sasl" and conn.cap_version >= 302:
        return "sasl=PLAIN"
    return cap


def isupport(conn: IrcConnection) -> str:
    tokens = list(ISUPPORT)
    return "".join(
        line(conn.server, "005", conn.nick, *tokens[i : i + 12], "are supported by this server")
        for i in range(0, len(tokens), 12)
    )


def welcome(conn: IrcConnection) -> str:
    """001 to 005: what a client gets when its registration is done."""
    nick = conn.nick
    return (
        numeric(conn, "001", f"Welcome to the imkit chat, {nick}")
        + numeric(conn, "002", f"Your host is {conn.server}, running version {conn.version}")
        + numeric(conn, "003", f"This server was created {conn.created}")
        + line(
            conn.server,
            "004",
            nick,
            conn.server,
            conn.version,
            USER_MODES,
            CHANNEL_MODES,
            CHANNEL_MODES_WITH_ARGS,
        )
        + isupport(conn)
    )


def motd(conn: IrcConnection) -> str:
    if conn.motd is None:
        return numeric(conn, "422", "MOTD File is missing")
    lines = [numeric(conn, "375", f"- {conn.server} Message of the day - ")]
    lines += [numeric(conn, "372", f"- {clean(text)}") for text in conn.motd]
    lines.append(numeric(conn, "376", "End of /MOTD command."))
    return "".join(lines)


def time_line(conn: IrcConnection) -> str:
    now = datetime.fromtimestamp(conn.clock(), UTC)
    return numeric(conn, "391", conn.server, now.strftime("%A %B %d %Y -- %H:%M:%S +00:00"))


def lusers(conn: IrcConnection, counts: Counts) -> str:
    return (
        numeric(conn, "251", f"There are {counts.users} users and 0 invisible on 1 servers")
        + numeric(conn, "252", "0", "operator(s) online")
        + numeric(conn, "254", str(counts.rooms), "channels formed")
        + numeric(conn, "255", f"I have {counts.here} clients and 0 servers")
        + numeric(
            conn,
            "265",
            str(counts.here),
            str(counts.most_here),
            f"Current local users {counts.here}, max {counts.most_here}",
        )
        + numeric(
            conn,
            "266",
            str(counts.users),
            str(counts.most_users),
            f"Current global users {counts.users}, max {counts.most_users}",
        )
    )


def fail(conn: IrcConnection, command: str, code: str, *context: str) -> str:
    """A standard reply (IRCv3): ``FAIL COMMAND CODE [CONTEXT...] :DESCRIPTION``."""
    return trailing_line(conn.server, "FAIL", command, code, *context)
