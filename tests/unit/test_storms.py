"""Storms and bursts: a reconnect storm must not stall the server, hide signals or leave
ghost users, and a burst of lines must not get readers that keep up dropped.

The storms are bounded in time and in connections, and stay on loopback.

Here the tests that need no sockets and no subprocesses; the others are in
process/test_storms.py, server/test_storms.py, slow/test_storms.py."""

from __future__ import annotations

from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.rules.names import name_problem

# ------------------------------------------------------------------------- bursts


def test_the_kernel_reusing_an_address_makes_a_second_default_name() -> None:
    """Unit-level twin of the RST storm: two members with one address at once."""
    from imkit.protocol import Mode, ServerConnection

    hub = Hub(wall_clock=lambda: 0.0)

    def member(addr: str) -> Member:
        wire = ServerConnection()
        wire.mode = Mode.TEXT
        m = hub.new_member(addr, wire, Outbox(), 0.0)
        hub.join(m)
        return m

    watcher = member("10.0.0.9:1")
    old = member("10.0.0.1:5000")
    new = member("10.0.0.1:5000")  # the old one's leave has not been seen yet
    newest = member("10.0.0.1:5000")
    assert [old.name, new.name, newest.name] == [
        "10.0.0.1:5000",
        "10.0.0.1:5000#2",
        "10.0.0.1:5000#3",
    ]
    hub.leave(old)
    assert hub.find("10.0.0.1:5000#2") is new  # the old one's leave removed nobody else
    hub.leave(new)
    hub.leave(newest)
    assert hub.members == [watcher]
    lines = watcher.outbox.take().decode().splitlines()
    assert lines[-3:] == [
        "[10.0.0.1:5000]10.0.0.1:5000:user offline",
        "[10.0.0.1:5000]10.0.0.1:5000#2:user offline",
        "[10.0.0.1:5000]10.0.0.1:5000#3:user offline",
    ]
    # Nobody can take such a name: like an address, it contains ':'.
    assert name_problem("10.0.0.1:5000#2") is not None
