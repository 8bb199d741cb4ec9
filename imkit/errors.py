"""Every error imkit raises on purpose, in one hierarchy.

::

    ImkitError                      anything imkit reports in one line, never as a traceback
    ├── ServeError                  the server could not start (port in use, bad TLS files, ...)
    ├── ConnectError                a client could not reach or stay with the server  -> exit 3
    │   ├── Unreachable             connect refused, DNS failure, TLS failure
    │   ├── TimedOut                no connection or no reply in time
    │   └── Disconnected            the server closed the connection (carries the bye reason)
    ├── ServerError                 the server refused one request, with a stable code -> exit 1
    │   ├── NoSuchUser              no_such_user
    │   ├── NameTaken               name_taken
    │   ├── InvalidName             invalid_name
    │   ├── InvalidMessage          invalid_message
    │   ├── Unauthorized            unauthorized
    │   ├── Unavailable             unavailable: the server cannot store messages now
    │   ├── NameReserved            name_reserved: the name belongs to an account
    │   ├── LoggedIn                logged_in: a logged-in user keeps its account's name
    │   ├── LoginFailed             login_failed: wrong name or password
    │   ├── TooManyAttempts         too_many_attempts: too many failed logins, wait
    │   ├── LoginRequired           login_required: log in first
    │   └── MailboxFull             mailbox_full: the account has too many messages waiting
    ├── AdminError                  the admin socket refused or failed a request         -> exit 1
    │   └── AdminUnavailable        no server answers on the admin socket                 -> exit 3
    ├── InputError                  a line of standard input is not valid UTF-8          -> exit 1
    └── OutputError                 standard output could not be written                 -> exit 4
        └── OutputClosed            its reader went away (EPIPE): quietly               -> exit 141

The server side never raises these at a peer: bad input from a peer becomes an error
*reply* (see :mod:`imkit.protocol`), and transport failures end that one connection.
"""

from __future__ import annotations


class ImkitError(Exception):
    """Base class; ``str(error)`` is a complete one-line message for a person."""


class ServeError(ImkitError):
    """``imkit serve`` cannot start."""


class ConnectError(ImkitError):
    """The client has no usable connection to the server."""


class Unreachable(ConnectError):
    """Connecting failed: refused, unresolvable, or the TLS handshake failed."""


class TimedOut(ConnectError):
    """The server did not accept the connection, or did not reply, in time."""


class Disconnected(ConnectError):
    """The server closed the connection; ``reason`` is the bye reason when one was sent."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class ServerError(ImkitError):
    """The server answered a request with an error reply."""

    code: str = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @staticmethod
    def from_reply(code: str, message: str, *, delivered: bool = False) -> ServerError:
        """The most specific subclass for a reply's error code (``delivered``: the
        reply's own field, which only ``unavailable`` carries)."""
        cls = _BY_CODE.get(code, ServerError)
        if cls is Unavailable:
            return Unavailable(message, delivered=delivered)
        return cls(message, code)


class NoSuchUser(ServerError):
    code = "no_such_user"


class NameTaken(ServerError):
    code = "name_taken"


class InvalidName(ServerError):
    code = "invalid_name"


class InvalidMessage(ServerError):
    code = "invalid_message"


class Unauthorized(ServerError):
    code = "unauthorized"


class Unavailable(ServerError):
    """The server's store cannot write (disk full, file removed, ...), or could not read
    history.

    ``delivered`` True: the message reached the users online but was not stored, so it
    must not be sent again. False: nobody saw it (or it was not a message).
    """

    code = "unavailable"

    def __init__(self, message: str, code: str | None = None, *, delivered: bool = False) -> None:
        super().__init__(message, code)
        self.delivered = delivered


class NameReserved(ServerError):
    """The name is registered to an account: only its user, logged in, may take it."""

    code = "name_reserved"


class LoggedIn(ServerError):
    """A rename by a user logged in to an account: it keeps its account's name."""

    code = "logged_in"


class LoginFailed(ServerError):
    """A wrong account name or password (also a wrong old password when changing it)."""

    code = "login_failed"


class TooManyAttempts(ServerError):
    """Too many failed logins from this address: none is tried until the minute is over."""

    code = "too_many_attempts"


class LoginRequired(ServerError):
    """The request needs a login first (changing one's password; any request on a
    server with ``--accounts-only``)."""

    code = "login_required"


class MailboxFull(ServerError):
    """The offline account has as many messages waiting as it may (100)."""

    code = "mailbox_full"


_BY_CODE: dict[str, type[ServerError]] = {
    cls.code: cls
    for cls in (
        NoSuchUser,
        NameTaken,
        InvalidName,
        InvalidMessage,
        Unauthorized,
        Unavailable,
        NameReserved,
        LoggedIn,
        LoginFailed,
        TooManyAttempts,
        LoginRequired,
        MailboxFull,
    )
}


class AdminError(ImkitError):
    """The admin socket answered with an error (for example: no such user to kick)."""


class AdminUnavailable(AdminError):
    """Nothing answers on the admin socket."""


class InputError(ImkitError):
    """A line of standard input cannot be sent (it is not valid UTF-8); ``line`` counts
    from 1. Reading may go on after it: ``imkit chat`` skips the line, ``imkit send``
    stops."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class OutputError(ImkitError):
    """Standard output could not be written (disk full, an I/O error, closed)."""


class OutputClosed(OutputError):
    """Whoever read standard output has gone (EPIPE, as in ``imkit send -v - | head -1``)."""
