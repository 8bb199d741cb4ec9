"""The admin socket's webhook requests: ``imkit hook add``, ``add-outgoing``, ``list``,
``remove`` (docs/integrations.md, "Managing hooks").

    {"type":"hook_add","room":R,"name":N|null,"allow_username":B}
        -> {"type":"ok","hook":{...},"key":K,"urls":[BASE + K, ...]}
    {"type":"hook_add_outgoing","room":R,"url":U,"name":N|null,"triggers":[W,...]}
        -> {"type":"ok","hook":{...},"secret":S}
    {"type":"hooks"}             -> {"type":"hooks","hooks":[{...}, ...]}
    {"type":"hook_remove","name":N} -> {"type":"ok","hook":{...}}

A hook's room must be a registered room (``imkit room add``): a hook outlives its
posts, and so must its room. A hook's name is a valid user name, no account's, and no
other hook's (of either kind). An incoming hook's key is in the reply to its
``hook_add`` only (the store keeps its digest); an outgoing hook's secret in the reply
to its ``hook_add_outgoing`` only. ``hooks`` lists neither. Errors: bad_request,
bad_room_name, no_such_room, invalid_name, name_reserved (an account's name),
hook_exists, no_such_hook, unavailable. Each change is logged with the admin socket's
peer, never with a key or secret.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from imkit.hub.credentials import find_account
from imkit.hub.directory import kept
from imkit.operator.room_requests import room_name
from imkit.operator.served import Administered, HookService, error_reply
from imkit.protocol import BAD_REQUEST, INVALID_NAME, NAME_RESERVED, NO_SUCH_ROOM, UNAVAILABLE
from imkit.rules.hooks import (
    DEFAULT_INCOMING_NAME,
    MAX_TRIGGERS,
    DeliveryStatus,
    Hook,
    IncomingHook,
    OutgoingHook,
    key_digest,
    new_key,
    trigger_problem,
    url_problem,
)
from imkit.rules.names import name_key, name_problem
from imkit.rules.rooms import room_key

log = logging.getLogger("imkit.admin")

HOOK_EXISTS = "hook_exists"
NO_SUCH_HOOK = "no_such_hook"
# The name an outgoing hook is given without --name.
DEFAULT_OUTGOING_NAME = "outgoing"

Reply = dict[str, Any]


def _service(server: Administered) -> HookService:
    return server.hooks


def hook_row(hook: Hook, status: Callable[[OutgoingHook], DeliveryStatus]) -> Reply:
    """A hook as ``imkit hook list`` shows it: never its key nor its secret."""
    row: Reply = {"name": hook.name, "room": hook.room, "created": hook.created}
    if isinstance(hook, IncomingHook):
        row |= {"kind": "incoming", "allow_username": hook.allow_username}
        return row
    done = status(hook)
    row |= {
        "kind": "outgoing",
        "url": hook.url,
        "triggers": list(hook.triggers),
        "queued": done.queued,
        "delivered": done.delivered,
        "failed": done.failed,
        "last_error": done.last_error,
        "last_error_time": done.last_error_time,
    }
    return row


async def _room(server: Administered, request: dict[str, Any]) -> str | Reply:
    """The request's room as a hook keeps it (its key): a registered room."""
    name = room_name(server, request)
    if isinstance(name, dict):
        return name
    rooms = await server.hub.directory.rooms()
    if rooms.get("type") == "error":
        return rooms
    key = room_key(name)
    for row in rooms.get("rooms", []):
        if room_key(row["room"]) == key and row.get("registered"):
            return key
    message = f"{name} is not a registered room: register it first (imkit room add {name})"
    return error_reply(NO_SUCH_ROOM, message)


async def _name(server: Administered, request: dict[str, Any], default: str) -> str | Reply:
    """The request's name for a new hook (``default`` when none): valid, no account's,
    no other hook's."""
    name = request.get("name") or default
    if not isinstance(name, str):
        return error_reply(BAD_REQUEST, "'name' is a string")
    problem = name_problem(name)
    if problem is not None:
        return error_reply(INVALID_NAME, f"{name!r} cannot be a hook's name: {problem}")
    account = await find_account(server.hub, name)
    if isinstance(account, str):
        return error_reply(UNAVAILABLE, account)
    if account is not None:
        return error_reply(NAME_RESERVED, f"{name} is an account's name")
    hooks = await _service(server).current(fresh=0.0)
    if isinstance(hooks, str):
        return error_reply(UNAVAILABLE, f"the hooks cannot be read: {hooks}")
    if name_key(name) in hooks:
        return error_reply(HOOK_EXISTS, f"there is a hook named {hooks[name_key(name)].name}")
    return name


async def _save(server: Administered, hook: Hook, by: str) -> Reply | None:
    """Keep ``hook``; the error reply when the store could not."""
    service = _service(server)
    problem = await kept(lambda done: server.hub.store.save_hook(hook, done))
    await service.changed()
    if problem is not None:
        return error_reply(UNAVAILABLE, f"the hook was not kept: {problem}")
    log.info(
        "hook %s (%s) added to %s by %s",
        hook.name,
        "incoming" if isinstance(hook, IncomingHook) else "outgoing",
        hook.room,
        by,
        extra={"event": "hook_admin", "action": "hook_add", "hook": hook.name, "by": by},
    )
    return None


async def add(server: Administered, request: dict[str, Any], by: str) -> Reply:
    room = await _room(server, request)
    if isinstance(room, dict):
        return room
    name = await _name(server, request, DEFAULT_INCOMING_NAME)
    if isinstance(name, dict):
        return name
    allow = request.get("allow_username", False)
    if not isinstance(allow, bool):
        return error_reply(BAD_REQUEST, "'allow_username' is true or false")
    key = new_key()
    hook = IncomingHook(name, room, key_digest(key), allow, time.time())
    failed = await _save(server, hook, by)
    if failed is not None:
        return failed
    urls = [base + key for base in _service(server).urls()]
    return {"type": "ok", "hook": hook_row(hook, _service(server).status), "key": key, "urls": urls}


def _url_problem(url: Any) -> str | None:
    """Why an outgoing hook cannot POST to ``url`` (the delivery's own rule), or None."""
    if not isinstance(url, str):
        return "the URL is a string"
    problem = url_problem(url)
    return None if problem is None else f"{url!r} cannot be an outgoing hook's URL: {problem}"


async def add_outgoing(server: Administered, request: dict[str, Any], by: str) -> Reply:
    url = request.get("url")
    problem = _url_problem(url)
    if problem is not None:
        return error_reply(BAD_REQUEST, problem)
    assert isinstance(url, str)
    triggers = request.get("triggers") or []
    if not isinstance(triggers, list) or len(triggers) > MAX_TRIGGERS:
        return error_reply(BAD_REQUEST, f"'triggers' is a list of at most {MAX_TRIGGERS} words")
    for word in triggers:
        problem = trigger_problem(word) if isinstance(word, str) else "a trigger is a string"
        if problem is not None:
            return error_reply(BAD_REQUEST, problem)
    room = await _room(server, request)
    if isinstance(room, dict):
        return room
    name = await _name(server, request, DEFAULT_OUTGOING_NAME)
    if isinstance(name, dict):
        return name
    secret = new_key()
    words = tuple(dict.fromkeys(word.casefold() for word in triggers))
    hook = OutgoingHook(name, room, url, secret, words, time.time())
    failed = await _save(server, hook, by)
    if failed is not None:
        return failed
    return {"type": "ok", "hook": hook_row(hook, _service(server).status), "secret": secret}


async def list_hooks(server: Administered, request: dict[str, Any], by: str) -> Reply:
    service = _service(server)
    hooks = await service.current(fresh=0.0)
    if isinstance(hooks, str):
        return error_reply(UNAVAILABLE, f"the hooks cannot be read: {hooks}")
    rows = [hook_row(h, service.status) for h in sorted(hooks.values(), key=lambda h: h.key)]
    return {"type": "hooks", "hooks": rows}


async def remove(server: Administered, request: dict[str, Any], by: str) -> Reply:
    name = request.get("name")
    if not isinstance(name, str) or not name:
        return error_reply(BAD_REQUEST, "hook_remove needs a string 'name'")
    service = _service(server)
    hooks = await service.current(fresh=0.0)
    if isinstance(hooks, str):
        return error_reply(UNAVAILABLE, f"the hooks cannot be read: {hooks}")
    hook = hooks.get(name_key(name))
    if hook is None:
        return error_reply(NO_SUCH_HOOK, f"there is no hook named {name}")
    problem = await kept(lambda done: server.hub.store.remove_hook(hook.key, done))
    await service.changed()
    if problem is not None:
        return error_reply(UNAVAILABLE, f"the hook was not removed: {problem}")
    log.info(
        "hook %s removed by %s",
        hook.name,
        by,
        extra={"event": "hook_admin", "action": "hook_remove", "hook": hook.name, "by": by},
    )
    return {"type": "ok", "hook": hook_row(hook, service.status)}
