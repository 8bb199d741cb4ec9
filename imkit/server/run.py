"""``imkit serve`` as a process: the server runs until a signal stops it."""

from __future__ import annotations

import logging
import signal

import anyio

from imkit.server.config import ServerConfig
from imkit.server.node import Server

log = logging.getLogger("imkit.server")

# Signals that stop the server gracefully. SIGHUP too: a server started in a terminal
# that closes gets it, and there is nothing to reload yet.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


async def run(config: ServerConfig) -> None:
    """Serve until SIGTERM, SIGINT or SIGHUP, then shut down gracefully (``imkit serve``).

    A second signal during the shutdown stops waiting for clients and exits at once.
    """
    server = Server(config)
    await server.listen()  # outside the task group: a ServeError stays plain
    # Signals are caught before the server says it is listening, so that whoever waits
    # for that line may stop it at once.
    with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve)
            async for signum in signals:
                name = signal.Signals(signum).name
                log.info("received %s", name, extra={"event": "signal", "signal": name})
                if server.stopping:
                    tg.cancel_scope.cancel()
                    break
                server.stop()
                tg.start_soon(_cancel_when_done, server, tg.cancel_scope)


async def _cancel_when_done(server: Server, scope: anyio.CancelScope) -> None:
    await server.stopped.wait()
    scope.cancel()  # ends the signal loop too
