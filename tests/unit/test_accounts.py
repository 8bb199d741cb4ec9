"""Accounts on one server (issue 13) over real TCP: reserved names in both modes, login
and what others see, failed logins and their limit, takeover, --accounts-only, private
messages kept for an offline account (across a kill -9 too, once, in order, within the
limit and --offline-days), private history between accounts, password changes, and
an event loop that stays responsive while passwords are hashed. The cluster's side is
in tests/cluster/test_cluster_accounts.py.

Here the tests that need no sockets and no subprocesses; the others are in
process/test_accounts.py, server/test_accounts.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from imkit.hub.core import Hub
from imkit.hub.outbox import Outbox
from imkit.protocol import Mode, Rename, ServerConnection
from imkit.rules.accounts import (
    Account,
    LoginAttempts,
    hash_password,
    password_problem,
    verify_password,
)
from imkit.rules.names import name_key
from tests.support.accounts import COST

# ------------------------------------------------------------------ the invariant


class ReservedNames(RuleBasedStateMachine):
    """Random renames, logins and account changes on a hub: a name with an account is
    never held by anyone not logged in to it."""

    def __init__(self) -> None:
        super().__init__()
        self.hub = Hub(wall_clock=lambda: 0.0)
        self.members: list[Any] = []
        self.port = 1

    @rule()
    def connect(self) -> None:
        wire = ServerConnection()
        wire.mode = Mode.JSON
        member = self.hub.new_member(f"10.0.0.1:{self.port}", wire, Outbox(), 0.0)
        self.port += 1
        self.hub.join(member)
        self.members.append(member)

    def online(self) -> list[Any]:
        return [m for m in self.members if m.online]

    @precondition(lambda self: self.online())
    @rule(data=st.data(), name=st.sampled_from(["alex", "Alex", "ALEX", "sam", "Sam", "bob"]))
    def rename(self, data: st.DataObject, name: str) -> None:
        self.hub.handle(data.draw(st.sampled_from(self.online())), Rename(name=name))

    @rule(name=st.sampled_from(["alex", "sam", "Bob"]))
    def add_account(self, name: str) -> None:
        if name_key(name) not in self.hub.store.accounts:
            account = Account(name, "scrypt$1$8$1$x$y", 0.0)
            self.hub.store.save_account(account, lambda problem: None)
            self.hub.reserve(account)

    @rule(name=st.sampled_from(["alex", "sam", "bob"]))
    def remove_account(self, name: str) -> None:
        account = self.hub.store.accounts.get(name_key(name))
        if account is not None:
            self.hub.store.delete_account(account.key, lambda problem: None)
            self.hub.log_out(account.name)

    @precondition(lambda self: self.online() and self.hub.store.accounts)
    @rule(data=st.data())
    def login(self, data: st.DataObject) -> None:
        member = data.draw(st.sampled_from(self.online()))
        account = data.draw(st.sampled_from(sorted(self.hub.store.accounts.values(), key=str)))
        self.hub.login(member, account, None, hello=False)

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        self.hub.leave(data.draw(st.sampled_from(self.online())))

    @invariant()
    def reserved_names_are_held_by_their_accounts(self) -> None:
        accounts = self.hub.store.accounts
        names = [name_key(m.name) for m in self.hub.members]
        assert len(names) == len(set(names))
        for member in self.hub.members:
            account = accounts.get(name_key(member.name))
            if account is not None:
                assert member.account == account.name
            if member.account is not None:
                assert member.name == member.account


# ------------------------------------------------ races and look-alikes (review)


def test_password_hashes_are_salted_and_verified() -> None:
    first, second = hash_password("pw", COST), hash_password("pw", COST)
    assert first != second  # a random salt each
    assert first.startswith(f"scrypt${COST}$8$1$")
    assert verify_password("pw", first) and verify_password("pw", second)
    assert not verify_password("pW", first)
    assert not verify_password("pw", "not a hash")
    assert password_problem("") and password_problem("a\nb") and password_problem("x" * 2000)
    assert password_problem("correct horse") is None


def test_openssl_cost_of_owasp_is_allowed() -> None:
    """The stdlib's default maxmem (32 MiB) refuses N = 2^17; ours is sized per cost."""
    stored = hash_password("pw", 17)
    assert verify_password("pw", stored)


def test_failed_attempts_per_address() -> None:
    now = [0.0]
    attempts = LoginAttempts(lambda: now[0])
    for _ in range(3):
        assert attempts.wait("127.0.0.2") == 0
        attempts.failed("127.0.0.2")
    assert attempts.wait("127.0.0.2") == pytest.approx(60)
    assert attempts.wait("127.0.0.3") == 0  # another address
    now[0] = 30.0
    assert attempts.wait("127.0.0.2") == pytest.approx(30)
    now[0] = 60.5
    assert attempts.wait("127.0.0.2") == 0  # the minute is over


def test_account_fields_round_trip() -> None:
    account = Account("Alex", "scrypt$4$8$1$a$b", 1.0, 2.0, float("inf"), "spam")
    assert Account.from_fields(json.loads(json.dumps(account.fields()))) == account
    assert account.key == name_key("ALEX")


TestReservedNames = ReservedNames.TestCase
TestReservedNames.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
