"""The hub: who is online and how a message reaches them. Synchronous, no sockets.

core.py         Hub: the chat's rules (names, messages, logins, bans) and its command
                table; the shared decisions are its backend's
backend.py      Backend and Directory: the interfaces of what differs on a cluster node
local.py        LocalBackend: the shared decisions of a server on its own
directory.py    LocalDirectory: who, kick, stats, bans, mutes, accounts for the admin
                socket, on a server on its own
members.py      Member (who a client is to the hub) and the byes
stats.py        Stats: the counters
outbox.py       Outbox: a client's bounded queue of bytes not yet written
credentials.py  a login as a connection's reader awaits it: the account looked up,
                the password checked off the loop (PasswordHasher), then the hub
"""

from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox

__all__ = ["Hub", "Member", "Outbox"]
