"""--hide-addresses (issue 14, requirement 4): users see pseudonyms, never each other's
addresses; the operator (`imkit who`, the log) sees the addresses.

Clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3 ...), so that a
scan of everything a client received can look for another client's IP at all, not
only for its ``ip:port``.

Here the tests that need no sockets and no subprocesses; the others are in
cluster/test_hidden_addresses.py, process/test_hidden_addresses.py."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

from imkit.cluster.terms import DEFAULT_NAMES, numbered_names
from imkit.rules.names import name_key, name_problem
from imkit.rules.pseudonyms import host_of, pseudonym
from imkit.store import SqliteStore
from imkit.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from tests.support.hidden_addresses import PSEUDONYM

# ----------------------------------------------------------------- pseudonyms


def test_a_pseudonym_is_per_ip_keyed_and_never_a_name() -> None:
    secret = bytes(range(32))
    one = pseudonym(secret, "203.0.113.7:50312")
    assert PSEUDONYM.match(one)
    assert pseudonym(secret, "203.0.113.7:1") == one  # the port does not count
    assert pseudonym(secret, "[::ffff:203.0.113.7]:9") == one  # nor IPv4 mapped in IPv6
    assert pseudonym(secret, "203.0.113.8:50312") != one
    assert pseudonym(bytes(32), "203.0.113.7:50312") != one  # another secret
    assert host_of("[2001:db8::1]:443") == "2001:db8::1"
    assert host_of("[2001:DB8:0::1]:443") == "2001:db8::1"
    assert PSEUDONYM.match(pseudonym(secret, "[2001:db8::1]:443"))
    assert host_of("unix") == "unix"
    # Like an address, a pseudonym (and a numbered one) cannot be taken as a name.
    assert name_problem(one) is not None
    assert name_problem(f"{one}#2") is not None


def test_numbered_pseudonyms_keys_are_their_characters_keys() -> None:
    """The cluster's join script makes SHOWN#N's key from numbered_names' pieces."""
    rng = random.Random(14)
    for _ in range(50):
        shown = pseudonym(rng.randbytes(32), f"10.0.0.{rng.randrange(256)}:1")
        more = json.loads(numbered_names(shown))
        assert more["name"] == shown
        for n in [*range(DEFAULT_NAMES + 1, 200), 1009, 65536, 999999]:
            key = more["key"] + "".join(more["digits"][int(d)] for d in str(n))
            assert key == name_key(f"{shown}#{n}")


async def test_the_secret_is_kept_in_the_file_and_added_to_an_older_one(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as db:  # a file written by the imkit of schema 1
        for statement in MIGRATIONS[1]:
            db.execute(statement)
        db.execute(
            "INSERT INTO messages (id, time, sender, addr, recipient, text)"
            " VALUES (1795764673091000, 1795764673.091, 'alex', '127.0.0.1:50312', NULL, 'hi')"
        )
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")
        db.execute("PRAGMA user_version=1")
    assert SCHEMA_VERSION >= 4  # 2: bans, 3: the secret
    secrets = []
    for _ in range(2):
        store = SqliteStore(path, clock=lambda: 1795764680.0, retain_days=0)
        store.open()
        secrets.append(store.address_secret)
        assert [m.text for m in store.recent(5)] == ["hi"]  # migrated, not lost
        await store.close()
    assert len(secrets[0]) == 32 and secrets[0] == secrets[1]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
