"""Hardening over real sockets: slow readers, floods, capacity, bad input, abrupt
disconnects, password and TLS. (Shutdown is in test_cli_serve.py and test_shutdown.py.)

Here the tests that need no sockets and no subprocesses; the others are in
behaviour/test_hardening.py, server/test_hardening.py."""

from __future__ import annotations

import pytest

from imkit.transport.connection import TokenBucket

# ---------------------------------------------------------------------------- TLS


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.1) == pytest.approx(0.1)  # paced at the rate from then on
    assert bucket.take(10.0) == 0.0  # refilled, up to the burst only
    assert bucket.take(10.0) == 0.0 and bucket.take(10.0) == 0.0
    assert bucket.take(10.0) > 0


def test_token_bucket_try_take_never_goes_into_debt() -> None:
    # The reader's loop callback takes a line's allowance only when it is there; when
    # it is not, the line goes to the reader task, whose take() then says how long to wait.
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.tokens == 0  # the refusal took nothing
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert not bucket.try_take(0.05)  # half a token refilled: still in debt
    assert bucket.try_take(0.2)  # the debt paid back and one token earned: taken
    assert not bucket.try_take(0.2)
