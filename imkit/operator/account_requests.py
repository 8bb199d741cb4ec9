"""The admin socket's account requests: ``imkit account add/passwd/remove/list``.

Each is checked here, its password hashed off the event loop, kept in the store (on a
cluster node: in Redis, through imkit.cluster.admin_answers, so that every node sees it at once),
put in force among the users online, and logged with the uid of the admin socket's peer.
Passwords are never logged.

    {"type":"account_add","name":N,"password":P}    -> ok with "renamed" (a guest's new name)
    {"type":"account_passwd","name":N,"password":P} -> ok
    {"type":"account_remove","name":N}              -> ok with "logged_out", "discarded"
    {"type":"accounts"}                             -> {"type":"accounts","accounts":[...]}
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from imkit.hub.credentials import PasswordHasher, find_account
from imkit.protocol import BAD_REQUEST, INVALID_NAME, UNAVAILABLE, iso_time
from imkit.rules.accounts import ACCOUNT_GONE, Account, password_problem
from imkit.rules.names import name_key, name_problem
from imkit.store.base import awaited

if TYPE_CHECKING:
    from imkit.cluster.hub import ClusterHub
    from imkit.hub.core import Hub

log = logging.getLogger("imkit.admin")

REQUESTS = ("account_add", "account_passwd", "account_remove", "accounts")
ACCOUNT_EXISTS = "account_exists"
NO_SUCH_ACCOUNT = "no_such_account"
# How long a change waits for the store to keep it before the request is answered.
STORE_TIMEOUT = 4.0


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def _cluster(hub: Hub) -> ClusterHub | None:
    """``hub`` as a cluster node's hub, or None on one server (which never imports the
    cluster package, nor redis)."""
    if not hub.cluster_wide:
        return None
    from imkit.cluster.hub import ClusterHub

    assert isinstance(hub, ClusterHub)
    return hub


async def answer(
    hub: Hub, hasher: PasswordHasher, request: dict[str, Any], by: str
) -> dict[str, Any]:
    kind = request.get("type")
    if kind == "accounts":
        return await _list(hub)
    name = request.get("name")
    if not isinstance(name, str) or not name:
        return _error(BAD_REQUEST, f"{kind} needs a string 'name'")
    if kind == "account_remove":
        return await _remove(hub, name, by)
    password = request.get("password")
    if not isinstance(password, str):
        return _error(BAD_REQUEST, f"{kind} needs a string 'password'")
    problem = password_problem(password)
    if problem is not None:
        return _error(BAD_REQUEST, problem)
    if kind == "account_add":
        return await _add(hub, hasher, name, password, by)
    return await _passwd(hub, hasher, name, password, by)


async def update_account(hub: Hub, key: str, changes: dict[str, Any]) -> str | None:
    """Change some fields of the account ``key`` (a password, a mute), in the store or
    a cluster's Redis, leaving the others as they are; why not (ACCOUNT_GONE: there is
    no such account any more), or None."""
    if (cluster := _cluster(hub)) is not None:
        from imkit.cluster import admin_answers as cluster_admin

        return await cluster_admin.account_update(cluster, key, changes)
    return await _kept(hub, partial(hub.store.update_account, key, changes))


async def _kept(hub: Hub, ask: Any) -> str | None:
    """What the store said to a change (None: kept), or why it said nothing."""
    try:
        problem: str | None = await awaited(ask, STORE_TIMEOUT)
    except TimeoutError:
        return f"the store did not answer within {STORE_TIMEOUT:g}s"
    return problem


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
    if (cluster := _cluster(hub)) is not None:
        from imkit.cluster import admin_answers as cluster_admin

        outcome = await cluster_admin.account_add(cluster, account)
        if isinstance(outcome, dict):
            return outcome  # an error
        renamed = outcome
    else:
        problem = await _kept(hub, partial(hub.store.save_account, account))
        if problem is not None:
            return _error(UNAVAILABLE, problem)
        renamed = hub.reserve(account)
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
    problem = await update_account(hub, account.key, {"hash": account.password_hash})
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
    if (cluster := _cluster(hub)) is not None:
        from imkit.cluster import admin_answers as cluster_admin

        outcome = await cluster_admin.account_remove(cluster, name)
        if outcome["type"] != "ok":
            return outcome
        shown, logged_out, discarded = outcome["name"], outcome["logged_out"], outcome["discarded"]
    else:
        account = hub.store.accounts.get(name_key(name))
        if account is None:
            return _error(NO_SUCH_ACCOUNT, f"no account named {name!r}")
        shown = account.name
        discarded = hub.store.waiting(account.key)
        problem = await _kept(hub, partial(hub.store.delete_account, account.key))
        if problem is not None:
            return _error(UNAVAILABLE, problem)
        logged_out = hub.log_out(account.name)
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
    if (cluster := _cluster(hub)) is not None:
        from imkit.cluster import admin_answers as cluster_admin

        listed = await cluster_admin.accounts(cluster)
        if isinstance(listed, dict):
            return listed  # an error
    else:
        store = hub.store
        listed = [(account, store.waiting(account.key)) for account in store.accounts.values()]
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
