"""The transport: everything between the hub's outboxes and the sockets.

    links.py         a connected byte stream: a plain socket, or a TLS stream
    connection.py    one client's reader (the pump) and writer, and its rate limit
    backpressure.py  readers wait while a client that keeps up is behind
    flusher.py       one flush round per round of the event loop: every ready outbox
                     written with one send
    writes.py        the write thread that shares the flusher's sends
    listener.py      the fair accept loop, TLS, binding a port
    limits.py        connections per client address (--max-per-ip, --connect-rate)
    proxy.py         --proxy-protocol: the user's address from a load balancer's header
    refusals.py      turning a connection away before it is a client: counted, logged,
                     one bye

Arrows point one way: :mod:`imkit.server` wires these together with the hub, and
nothing here imports the server. Transport errors are translated here, at one boundary:
a connection that breaks ends that connection, never the server.
"""
