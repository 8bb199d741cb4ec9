"""Several ``imkit serve`` nodes as one chat, through Redis (``--cluster``): the hub's
Redis backend.

    backend.py     RedisBackend: the hub's backend, with Redis deciding names, presence,
                   order and accounts
    events.py      ClusterEvents: what Redis' event streams bring back, applied to the hub
    terms.py       what the backend, the events and the scripts agree on: default names,
                   the keys of names, what a user is told while Redis cannot be used
    admin_answers.py  RedisDirectory: who, kick, stats, bans, mutes and accounts over
                   the whole cluster, for the admin socket
    store.py       RedisHistory: the history and the conversations of accounts, in
                   Redis streams
    link.py        the writer (commands in order, pipelined) and the heartbeat that
                   supervises both Redis connections
    reader.py      the reader: both event streams, applied in sequence order
    pace.py        the writers paced to the slowest reader
    connection.py  one Redis connection, the one place that touches redis-py's
                   connection layer, and what its errors mean
    scripts.py     loads lua/*.lua (package data): every change to the shared state, as
                   a Lua script Redis runs atomically, one file per script

Only this package imports redis, and only a node started with ``--cluster`` imports it;
the constants below are all the command line needs. docs/cluster.md says what the
cluster promises and how it fails.
"""

from __future__ import annotations

DEFAULT_CLUSTER_NAME = "imkit"
DEFAULT_NODE_TIMEOUT = 10.0  # seconds without a heartbeat before a node is dead
# The data format of the keys in Redis: a node refuses to join a cluster whose format
# is another (docs/cluster.md, "Upgrades"). 2: accounts. A node without them would
# let guests take accounts' names and broadcast a login line, password and all, as a
# public message: the two must never share a cluster.
DATA_FORMAT = "2"
# Why a node refuses what needs Redis (error lines, the bye, /healthz).
UNREACHABLE = "its server cannot reach the cluster's Redis"
# Why, when Redis answers but refuses every write (maxmemory reached, noeviction).
FULL = "the cluster's Redis is full"
