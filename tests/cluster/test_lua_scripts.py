"""The cluster's Lua scripts (imkit/cluster/lua/, loaded by imkit.cluster.scripts) compile
in a real redis-server: a syntax error fails here, not at a node's start in production.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json

import pytest
import redis

from imkit.cluster import scripts
from tests.support.cluster import RedisServer

LUA = importlib.resources.files("imkit.cluster") / "lua"


def test_every_lua_file_is_loaded() -> None:
    on_disk = {entry.name for entry in LUA.iterdir() if entry.name.endswith(".lua")}
    assert on_disk == {f"{name}.lua" for name in scripts.FILES}
    assert set(scripts.OPERATIONS) == set(scripts.OPERATION_NAMES)
    assert set(scripts.ALL) == set(scripts.OPERATION_NAMES) | {"batch"}


def test_no_placeholder_is_left() -> None:
    for name, text in scripts.ALL.items():
        assert not scripts.PLACEHOLDER.search(text), name
        assert "${" not in text, name
        # the Python constants are the values the Lua uses
        assert f"local LOG_LENGTH = {scripts.LOG_LENGTH}\n" in text, name
        assert f"local HELD_MS = {scripts.HELD_MS}\n" in text, name


def test_an_unknown_constant_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scripts, "CONSTANTS", {"HELD_MS": scripts.HELD_MS})
    with pytest.raises(ValueError, match="LOG_LENGTH"):
        scripts.read("prelude")


def test_every_script_loads_in_redis(redis_server: RedisServer) -> None:
    client = redis_server.client()
    try:
        for name, text in scripts.ALL.items():
            sha = client.script_load(text)
            # the sha under which imkit.cluster.link runs it (EVALSHA)
            assert sha == hashlib.sha1(text.encode()).hexdigest(), name
    finally:
        client.close()


def test_scripts_run(redis_server: RedisServer) -> None:
    # Compiling is not all: the prelude runs (its globals are Redis'), and BATCH
    # dispatches to the operations by name.
    client = redis_server.client()
    try:
        assert client.eval(scripts.ALL["who"], 0, "lua-test") == []
        (now,) = client.eval(scripts.ALL["nodes"], 0, "lua-test")
        assert int(now) > 0
        names, arguments = ["who", "accounts"], [["lua-test"], ["lua-test", "0"]]
        replies = client.eval(
            scripts.ALL["batch"], 0, "lua-test", json.dumps(names), json.dumps(arguments)
        )
        assert replies == [[], []]
    finally:
        client.close()


def test_a_broken_script_fails_to_load(redis_server: RedisServer) -> None:
    # So that the test above can fail: Redis compiles what SCRIPT LOAD is given.
    client = redis_server.client()
    try:
        broken = scripts.ALL["who"].replace("return redis.call", "return redis.call(", 1)
        with pytest.raises(redis.ResponseError, match="(?i)compil"):
            client.script_load(broken)
        # and the Lua files as they are on disk, before the loader puts the constants in
        raw = (LUA / "prelude.lua").read_text("utf-8")
        with pytest.raises(redis.ResponseError, match="(?i)compil.*'\\$'"):
            client.script_load(raw)
    finally:
        client.close()
