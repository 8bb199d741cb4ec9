"""The client library's accounts: login in the hello and later, passwd, the account of
messages and users, queued private messages, private history, and the error classes of
the new codes.

What the client sends and how it reads each reply is tested against a stand-in server
(tests/support/scripted.py); the end-to-end tests, at the end, against `imkit serve`.

Here the tests that need no sockets and no subprocesses; the others are in
process/test_client_login.py, server/test_client_login.py."""

from __future__ import annotations

import pytest

from imkit.errors import (
    LoggedIn,
    LoginFailed,
    LoginRequired,
    MailboxFull,
    NameReserved,
    ServerError,
    TooManyAttempts,
)

# ---------------------------------------------------------------- end to end (a server)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("name_reserved", NameReserved),
        ("logged_in", LoggedIn),
        ("login_failed", LoginFailed),
        ("too_many_attempts", TooManyAttempts),
        ("login_required", LoginRequired),
        ("mailbox_full", MailboxFull),
    ],
)
def test_each_new_code_has_its_class(code: str, cls: type[ServerError]) -> None:
    raised = ServerError.from_reply(code, "why")
    assert type(raised) is cls
    assert (raised.code, str(raised)) == (code, "why")
