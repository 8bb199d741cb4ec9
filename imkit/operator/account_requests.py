"""The admin socket's account requests: ``imkit account add/passwd/remove/list``.

Each is checked here, its password hashed off the event loop, kept and put in force among
the users online by the hub's directory (imkit.hub.backend: this server's store, or on a
cluster node Redis, so that every node sees it at once), and logged with the uid of the
admin socket's peer. Passwords are never logged. imkit.operator.answers maps each
request type to its function here.

    {"type":"account_add","name":N,"password":P}    -> ok with "renamed" (a guest's new name)
    {"type":"account_passwd","name":N,"password":P} -> ok
    {"type":"account_remove","name":N}              -> ok with "logged_out", "discarded"
    {"type":"accounts"}                             -> {"type":"accounts","accounts":[...]}
"""

from __future__ import annotations

import logging
import time
from typing import Any

from imkit.hub.backend import ACCOUNT_EXISTS, NO_SUCH_ACCOUNT
from imkit.hub.core import Hub
from imkit.hub.credentials import PasswordHasher, find_account
from imkit.operator.served import Administered
from imkit.protocol import BAD_REQUEST, INVALID_NAME, UNAVAILABLE, iso_time
from imkit.rules.accounts import ACCOUNT_GONE, Account, password_problem
from imkit.rules.names import name_key, name_problem

log = logging.getLogger("imkit.admin")

__all__ = ["ACCOUNT_EXISTS", "NO_SUCH_ACCOUNT", "add", "list_accounts", "passwd", "remove"]


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def _name(request: dict[str, Any]) -> str | dict[str, Any]:
    name = request.get("name")
    if not isinstance(name, str) or not name:
        return _error(BAD_REQUEST, f"{request.get('type')} needs a string 'name'")
    return name


def _password(request: dict[str, Any]) -> str | dict[str, Any]:
    password = request.get("password")
    if not isinstance(password, str):
        return _error(BAD_REQUEST, f"{request.get('type')} needs a string 'password'")
    problem = password_problem(password)
    if problem is not None:
        return _error(BAD_REQUEST, problem)
    return password


async def list_accounts(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    return await _list(server.hub)


async def remove(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    name = _name(request)
    if isinstance(name, dict):
        return name
    return await _remove(server.hub, name, by)


async def add(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    name = _name(request)
    if isinstance(name, dict):
        return name
    password = _password(request)
    if isinstance(password, dict):
        return password
    return await _add(server.hub, server.logins.hasher, name, password, by)


async def passwd(server: Administered, request: dict[str, Any], by: str) -> dict[str, Any]:
    name = _name(request)
    if isinstance(name, dict):
        return name
    password = _password(request)
    if isinstance(password, dict):
        return password
    return await _passwd(server.hub, server.logins.hasher, name, password, by)


async def _add(
    hub: Hub, hasher: PasswordHasher, name: str, password: str, by: str
) -> dict[str, Any]:
    problem = name_problem(name)
    if problem is not None:
        return _error(INVALID_NAME, f"invalid name {name!r}: {problem}")
    found = await find_account(hub, name)
    if isinstance(found, str):
        return _error(UNAVAILABLE, found)
    key = name_key(name)
    if found is not None or key in hub.store.adding:
        shown = name if found is None else found.name
        return _error(ACCOUNT_EXISTS, f"there is an account named {shown} already")
    hub.store.adding.add(key)  # one server: a second add of the name is refused meanwhile
    try:
        account = Account(name, await hasher.hash(password), time.time())
        return await _keep_new(hub, account, by)
    finally:
        hub.store.adding.discard(key)


async def _keep_new(hub: Hub, account: Account, by: str) -> dict[str, Any]:
    name = account.name
    renamed = await hub.directory.account_add(account)
    if isinstance(renamed, dict):
        return renamed  # an error
    log.info(
        "account %s added by %s%s",
        name,
        by,
        f"; the guest who had the name is now {renamed}" if renamed else "",
        extra={"event": "account_added", "account": name, "by": by, "renamed": renamed},
    )
    return {"type": "ok", "name": name, "renamed": renamed}


async def _passwd(
    hub: Hub, hasher: PasswordHasher, name: str, password: str, by: str
) -> dict[str, Any]:
    found = await find_account(hub, name)
    if isinstance(found, str):
        return _error(UNAVAILABLE, found)
    if found is None:
        return _error(NO_SUCH_ACCOUNT, f"no account named {name!r}")
    account = found.with_password(await hasher.hash(password))
    problem = await hub.directory.account_update(account.key, {"hash": account.password_hash})
    if problem == ACCOUNT_GONE:
        return _error(NO_SUCH_ACCOUNT, f"no account named {name!r}: it was removed meanwhile")
    if problem is not None:
        return _error(UNAVAILABLE, problem)
    log.info(
        "password of account %s set by %s",
        account.name,
        by,
        extra={"event": "account_password_set", "account": account.name, "by": by},
    )
    return {"type": "ok", "name": account.name}


async def _remove(hub: Hub, name: str, by: str) -> dict[str, Any]:
    outcome = await hub.directory.account_remove(name)
    if outcome["type"] != "ok":
        return outcome
    shown, logged_out, discarded = outcome["name"], outcome["logged_out"], outcome["discarded"]
    log.info(
        "account %s removed by %s: %d sessions logged out, %d waiting messages discarded",
        shown,
        by,
        logged_out,
        discarded,
        extra={
            "event": "account_removed",
            "account": shown,
            "by": by,
            "count": logged_out,
            "discarded": discarded,
        },
    )
    return {"type": "ok", "name": shown, "logged_out": logged_out, "discarded": discarded}


async def _list(hub: Hub) -> dict[str, Any]:
    listed = await hub.directory.accounts()
    if isinstance(listed, dict):
        return listed  # an error
    listed.sort(key=lambda pair: (pair[0].created, pair[0].name))
    rows = [
        {
            "name": account.name,
            "created": iso_time(account.created, milliseconds=False),
            "last_login": (
                None
                if account.last_login is None
                else iso_time(account.last_login, milliseconds=False)
            ),
            "waiting": waiting,
        }
        for account, waiting in listed
    ]
    return {"type": "accounts", "accounts": rows}
