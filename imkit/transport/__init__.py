"""The transport: everything between the hub's outboxes and the sockets.

    links.py         a connected byte stream: a plain socket, or a TLS stream
    connection.py    one client's reader (the pump) and writer, and its rate limit
    backpressure.py  readers wait while a client that keeps up is behind
    writes.py        the write thread that shares the flusher's sends
    listener.py      the fair accept loop, TLS, the descriptor limit
    limits.py        connections per client address (--max-per-ip, --connect-rate)

Arrows point one way: :mod:`imkit.server` wires these together with the hub, and
nothing here imports the server. Transport errors are translated here, at one boundary:
a connection that breaks ends that connection, never the server.
"""
