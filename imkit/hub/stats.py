"""What the server counts (:class:`Stats`): the admin socket's ``stats`` and
``--metrics`` report these counters; the hub and the transport increment them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Stats:
    """Counters since the server started; the admin socket and --metrics report them."""

    connections_total: int = 0
    public_received: int = 0  # public chat messages accepted
    private_received: int = 0  # private chat messages accepted
    room_messages: int = 0  # of the public ones, those sent to a room (not the lobby)
    messages_delivered: int = 0  # copies of them queued for a recipient
    slow_consumers: int = 0
    idle_kicks: int = 0
    admin_kicks: int = 0
    closed_by_client: int = 0  # connections the client closed (or that broke)
    shutdown_byes: int = 0  # connections ended by the server's shutdown
    refused_full: int = 0
    refused_per_address: int = 0  # --max-per-ip or --connect-rate
    refused_unauthorized: int = 0
    refused_tls: int = 0  # TLS handshakes that failed or timed out
    refused_unavailable: int = 0  # public messages refused while the store could not write
    refused_proxy_header: int = 0  # --proxy-protocol connections without a valid header
    refused_banned: int = 0  # connections refused because their address is banned
    banned: int = 0  # users removed by a ban
    refused_muted: int = 0  # messages and renames refused from muted users
    logins: int = 0  # logins to an account that worked
    failed_logins: int = 0  # wrong name or password, and too many attempts
    replaced: int = 0  # sessions ended by a login to their account elsewhere
    queued: int = 0  # private messages kept for an offline account
    # Bytes read from and handed to clients' connections (TLS: before encryption),
    # counted once per read and once per send, not per message.
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def messages_received(self) -> int:
        """Chat messages accepted, public and private."""
        return self.public_received + self.private_received
