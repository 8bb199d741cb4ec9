"""The hub: who is online and how a message reaches them. Synchronous, no sockets.

core.py         Hub: the chat's decisions (names, messages, logins, bans)
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
