"""User names: validity and the one name key (imkit/names.py), pure.

Here the tests that run on one node and on two; the others are in server/test_names.py,
unit/test_names.py."""

from __future__ import annotations

from tests.behaviour.conftest import Chat
from tests.support import LineClient, joined
from tests.support.names import _add_account

# ------------------------------------------------------------------ properties


async def test_look_alikes_collide_over_tcp_in_renames_and_private_messages(
    chat: Chat,
) -> None:
    alice = await joined(chat.address(0), "alice")
    other = await joined(chat.address(1))
    await alice.line()  # other's join
    for look_alike in ("\u0430lice", "\uff41\uff4c\uff49\uff43\uff45", "ALICE"):
        await other.send(f"rename|{look_alike}\n".encode())
        assert await other.line() == f"{look_alike} has existed...\n"
    await other.send("to|\uff41\uff4c\uff49\uff43\uff45|psst\n".encode())
    assert await alice.line() == f"{other.addr} say: psst\n"
    await other.send("rename|e\u0301mile\n".encode())
    assert await other.line() == "you have updated user name: e\u0301mile\n"
    await alice.send("rename|\u00e9mile\n".encode())
    assert await alice.line() == "\u00e9mile has existed...\n"


async def test_a_braille_blank_cannot_make_a_second_alice_over_tcp(chat: Chat) -> None:
    # Issue 25, item 5: alice is an account; "alice⠀" was taken by anyone.
    assert (await _add_account(chat.servers[0], "alice", "pw"))["type"] == "ok"
    guest = await joined(chat.address(0))
    await guest.send("rename|alice\u2800\n".encode())
    assert await guest.line() == (
        "error: invalid name 'alice\u2800': a name cannot contain '\u2800' (U+2800): a name"
        " is made of letters, digits and ASCII punctuation (RFC 8265)\n"
    )
    await guest.send(b"rename|alice\n")
    assert (await guest.line()).startswith("error: the name alice belongs to an account")
    program = await LineClient.connect(chat.address(1))
    reply = await program.request(type="hello", name="\u2800\u2800")
    assert (reply["type"], reply["code"]) == ("error", "invalid_name")
    refused = await _add_account(chat.servers[0], "alice\u2800", "pw")
    assert (refused["type"], refused["code"]) == ("error", "invalid_name")
