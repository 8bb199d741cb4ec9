"""Property-based tests of the hub: random sequences of connect, rename, message, kick,
drain and disconnect, checked against a simple model after every step (and, for what
every client received, at the end of each sequence)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.protocol import (
    Mode,
    PrivateMessage,
    PublicMessage,
    Rename,
    ServerConnection,
    Who,
)
from imkit.rules.names import name_key

NAMES = st.sampled_from(["alex", "Alex", "ALEX", "bob", "carol", "dave", "bad name", "x:y", ""])


@dataclass
class Client:
    member: Member
    received: list[str] = field(default_factory=list)  # message tags seen
    expected: set[str] = field(default_factory=set)  # tags it must see unless dropped
    dropped: bool = False
    gone: bool = False

    def dropped_now(self) -> bool:
        """Offline without having been kicked or having left: dropped as a slow consumer."""
        return not self.member.online and not self.gone

    def drain(self) -> None:
        outbox = self.member.outbox
        taken = outbox.take()
        outbox.wrote(taken, len(taken))  # as the transport reports a whole write
        data = taken.decode()
        for line in data.splitlines():
            if self.member.mode is Mode.JSON:
                obj = json.loads(line)
                text = obj.get("text", "") if obj.get("type") == "message" else ""
            else:  # [ADDR]NAME:TEXT or NAME say: TEXT; tags are ours and end the line
                found = re.search(r"(?:\]\S+:| say: )(tag\d+)$", line)
                text = found.group(1) if found else ""
            if text.startswith("tag"):
                self.received.append(text)
            if "slow consumer" in line:
                self.dropped = True


class HubMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.hub = Hub(wall_clock=lambda: 0.0)
        self.clients: list[Client] = []
        self.next_tag = 0
        self.next_port = 1

    def online(self) -> list[Client]:
        return [c for c in self.clients if c.member.online]

    @rule(json_mode=st.booleans(), small=st.booleans())
    def connect(self, json_mode: bool, small: bool) -> None:
        wire = ServerConnection()
        wire.mode = Mode.JSON if json_mode else Mode.TEXT
        # a small outbox overflows after a few undrained messages: a slow consumer
        outbox = Outbox(limit=600 if small else 1 << 20)
        member = self.hub.new_member(f"10.0.0.1:{self.next_port}", wire, outbox, 0.0)
        self.next_port += 1
        self.hub.join(member)
        self.clients.append(Client(member))

    @precondition(lambda self: self.online())
    @rule(data=st.data(), name=NAMES)
    def rename(self, data: st.DataObject, name: str) -> None:
        client = data.draw(st.sampled_from(self.online()))
        self.hub.handle(client.member, Rename(name=name))

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def public(self, data: st.DataObject) -> None:
        sender = data.draw(st.sampled_from(self.online()))
        tag = f"tag{self.next_tag}"
        self.next_tag += 1
        recipients = self.online()
        self.hub.handle(sender.member, PublicMessage(text=tag))
        for client in recipients:
            client.expected.add(tag)

    @precondition(lambda self: self.online())
    @rule(data=st.data(), to=NAMES)
    def private(self, data: st.DataObject, to: str) -> None:
        sender = data.draw(st.sampled_from(self.online()))
        target = self.hub.find(to)
        tag = f"tag{self.next_tag}"
        self.next_tag += 1
        self.hub.handle(sender.member, PrivateMessage(to=to, text=tag))
        if target is not None:
            next(c for c in self.clients if c.member is target).expected.add(tag)

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def who(self, data: st.DataObject) -> None:
        self.hub.handle(data.draw(st.sampled_from(self.online())).member, Who())

    @precondition(lambda self: self.clients)
    @rule(data=st.data())
    def drain(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self.clients)).drain()

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def kick(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.online()))
        assert self.hub.kick(client.member.name.upper(), "test") is client.member
        client.gone = True

    @precondition(lambda self: self.online())
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        client = data.draw(st.sampled_from(self.online()))
        self.hub.leave(client.member)
        client.gone = True

    @invariant()
    def names_are_unique_regardless_of_case(self) -> None:
        keys = [name_key(m.name) for m in self.hub.members]
        assert len(keys) == len(set(keys))
        for member in self.hub.members:
            assert self.hub.find(member.name) is member

    @invariant()
    def who_is_exactly_the_live_connections_in_order(self) -> None:
        live = [c.member for c in self.clients if not c.gone and not c.dropped_now()]
        assert self.hub.members == live
        dropped = [c for c in self.clients if c.dropped_now()]
        # only the hub's slow-consumer rule takes someone offline on its own
        assert all(c.member.outbox.closed for c in dropped)
        assert len(dropped) <= self.hub.stats.slow_consumers
        assert all(not c.member.online for c in self.clients if c.gone)

    @invariant()
    def queues_stay_within_their_limit(self) -> None:
        for client in self.clients:
            outbox = client.member.outbox
            if not outbox.closed:
                # Replies (who) are owed on top of the limit until they are written.
                assert len(outbox) - outbox.owed <= outbox.limit

    @invariant()
    def no_message_arrives_twice(self) -> None:
        for client in self.clients:
            assert len(client.received) == len(set(client.received))

    def teardown(self) -> None:
        # Read everything only at the end: clients read (the drain rule) at random times
        # in between, so those with a small outbox can fall behind and be dropped.
        for client in self.clients:
            client.drain()
            assert len(client.received) == len(set(client.received))  # never twice
            if not client.dropped:
                assert client.expected <= set(client.received)
        # everyone the hub counted as a slow consumer was told so
        assert sum(c.dropped for c in self.clients) == self.hub.stats.slow_consumers


TestHub = HubMachine.TestCase
TestHub.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
