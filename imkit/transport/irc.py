"""An IRC client's way in (``--irc``, docs/irc.md): its registration, before it is a
member of the chat. Its wire (:class:`~imkit.irc.wire.IrcConnection`) answers CAP and
PING itself and yields a :class:`~imkit.protocol.queries.Register` once NICK and USER
are in; here the server's password (PASS) is checked, a SASL login awaited
(:class:`~imkit.hub.credentials.Logins`), the nick checked against the names online,
and the client joined to the chat (in no channel: ``in_lobby`` False until it joins
``#lobby``). Nothing reaches it before but its own replies."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, cast

import anyio

from imkit.protocol import (
    NAME_RESERVED,
    NAME_TAKEN,
    Bye,
    Command,
    Error,
    Invalid,
    Login,
)
from imkit.protocol.queries import Answer, Quit, Register
from imkit.rules.names import name_key
from imkit.transport.links import TooLate

if TYPE_CHECKING:
    from imkit.irc.wire import IrcConnection
    from imkit.transport.connection import Connection

# How long a client may take to register (CAP negotiation, SASL, NICK and USER).
REGISTRATION_TIMEOUT = 60.0


async def admit_irc(connection: Connection) -> list[Command] | None:
    """Until the IRC client is registered: the commands after its registration, the
    client joined; None when it was refused or left."""
    member, hub, outbox = connection.member, connection.hub, connection.outbox
    wire = member.wire
    member.in_lobby = False  # in no channel until it joins one, #lobby too
    deadline = anyio.current_time() + max(REGISTRATION_TIMEOUT, connection.auth_timeout)
    commands: list[Command] | None = []
    while commands is not None:
        for index, command in enumerate(commands):
            if isinstance(command, Answer):
                outbox.put(wire.encode(command.event))
            elif isinstance(command, Invalid):
                outbox.put(wire.encode(Error(command.id, command.code, command.message)))
            elif isinstance(command, Quit):
                outbox.close(wire.encode(Bye("quit", command.reason or "Client Quit")))
                return None
            elif isinstance(command, Login):
                await connection.logins.login(member, command)
            elif isinstance(command, Register):
                if not _password_ok(connection, command):
                    return None
                if connection.logins.accounts_only and member.account is None:
                    hub.stats.refused_unauthorized += 1
                    why = "this server is for accounts only: log in with SASL"
                    outbox.close(wire.encode(Bye("login_required", why)))
                    return None
                if not member.online:
                    refusal = _name_refused(connection, command)
                    if refusal is not None:
                        outbox.put(wire.encode(refusal))
                        continue
                    member.ident, member.realname = command.ident, command.realname
                    hub.join(member)  # outside the lobby (a cluster's online event says so)
                hub.handle(member, command)
                return commands[index + 1 :]
            if outbox.closed:
                return None
        try:
            commands = await connection.receive_commands(deadline)
        except TooLate:
            outbox.close(wire.encode(Bye("idle", "Registration timeout")))
            return None
    return None


def _password_ok(connection: Connection, command: Register) -> bool:
    password = connection.password
    if password is None:
        return True
    offered = command.password
    if offered is not None and hmac.compare_digest(offered.encode(), password.encode()):
        return True
    wire = cast("IrcConnection", connection.member.wire)
    connection.hub.stats.refused_unauthorized += 1
    connection.outbox.put(wire.encode(wire.numeric("464", "Password incorrect").event))
    connection.outbox.close(wire.encode(Bye("unauthorized", "Bad password")))
    return False


def _name_refused(connection: Connection, command: Register) -> Error | None:
    """A nick that is someone's (online, or an account's) before the client joins."""
    hub, key = connection.hub, name_key(command.nick)
    if hub.find(command.nick) is not None:
        return Error(command.id, NAME_TAKEN, "taken", command.nick)
    account = hub.store.accounts.get(key)
    if account is not None:
        return Error(command.id, NAME_RESERVED, "reserved", command.nick)
    return None
