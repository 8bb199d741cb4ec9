"""The hub without sockets: membership, routing, renames, removals, slow consumers."""

from __future__ import annotations

import json

import pytest

from imkit.hub.core import Hub
from imkit.hub.members import Member
from imkit.hub.outbox import Outbox
from imkit.protocol import (
    Hello,
    Invalid,
    Mode,
    Ping,
    PrivateMessage,
    PublicMessage,
    Rename,
    ServerConnection,
    Who,
)


class Peer:
    """A member plus helpers to read what the hub queued for it."""

    def __init__(self, hub: Hub, addr: str, mode: Mode = Mode.TEXT, limit: int = 1 << 20):
        wire = ServerConnection()
        wire.mode = mode
        self.member: Member = hub.new_member(addr, wire, Outbox(limit), now=0.0)
        self.hub = hub

    def join(self) -> Peer:
        self.hub.join(self.member)
        return self

    def do(self, command: object) -> None:
        self.hub.handle(self.member, command)  # type: ignore[arg-type]

    def lines(self) -> list[str]:
        outbox = self.member.outbox
        data = outbox.take()
        outbox.wrote(data, len(data))  # as the transport reports a whole write
        return data.decode().splitlines()

    def objects(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines()]


@pytest.fixture
def hub() -> Hub:
    return Hub(wall_clock=lambda: 0.0)


def test_join_announces_to_everyone_including_the_newcomer(hub: Hub) -> None:
    a = Peer(hub, "1.1.1.1:1").join()
    b = Peer(hub, "2.2.2.2:2").join()
    assert a.lines() == [
        "[1.1.1.1:1]1.1.1.1:1:user is online",
        "[2.2.2.2:2]2.2.2.2:2:user is online",
    ]
    assert b.lines() == ["[2.2.2.2:2]2.2.2.2:2:user is online"]


def test_public_message_reaches_everyone_in_order_of_arrival(hub: Hub) -> None:
    a, b, c = (Peer(hub, f"h:{i}").join() for i in range(3))
    for p in (a, b, c):
        p.lines()
    order: list[str] = []
    for p in (a, b, c):
        p.member.outbox.on_ready = lambda p=p: order.append(p.member.addr)  # type: ignore[misc]
    b.do(PublicMessage(text="hi"))
    assert order == ["h:0", "h:1", "h:2"]
    assert a.lines() == b.lines() == c.lines() == ["[h:1]h:1:hi"]
    assert hub.stats.messages_received == 1 and hub.stats.messages_delivered == 3


def test_who_lists_in_order_of_arrival(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2").join()
    b.do(Rename(name="bob"))
    a.lines()
    a.do(Who())
    assert a.lines() == ["[h:1]h:1:online...", "[h:2]bob:online..."]


def test_rename_and_name_taken_regardless_of_case(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2").join()
    a.do(Rename(name="Alex"))
    assert a.lines()[-1] == "you have updated user name: Alex"
    b.lines()
    b.do(Rename(name="alex"))
    assert b.lines() == ["alex has existed..."]
    a.do(Rename(name="ALEX"))  # one's own name in another case is fine
    assert a.lines() == ["you have updated user name: ALEX"]
    assert hub.find("alex") is a.member


def test_rename_frees_the_old_name(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2").join()
    a.do(Rename(name="x"))
    a.do(Rename(name="y"))
    b.do(Rename(name="x"))
    assert b.lines()[-1] == "you have updated user name: x"


@pytest.mark.parametrize("name", ["", "a b", "a|b", "h:2", "n" * 33, "nul\x00"])
def test_rename_to_a_bad_name(hub: Hub, name: str) -> None:
    a = Peer(hub, "h:1").join()
    Peer(hub, "h:2").join()
    a.lines()
    a.do(Rename(name=name))
    [line] = a.lines()
    assert line.startswith("error: invalid name")
    assert a.member.name == "h:1"


def test_private_message(hub: Hub) -> None:
    a, b, c = (Peer(hub, f"h:{i}").join() for i in range(3))
    a.do(Rename(name="alex"))
    b.do(Rename(name="bob"))
    for p in (a, b, c):
        p.lines()
    a.do(PrivateMessage(to="BOB", text="psst|x"))
    assert a.lines() == []  # nothing to the sender in text mode
    assert b.lines() == ["alex say: psst|x"]
    assert c.lines() == []
    a.do(PrivateMessage(to="nobody", text="x"))
    assert a.lines() == ["username not exist"]


def test_json_member_gets_ok_and_events(hub: Hub) -> None:
    t = Peer(hub, "h:1").join()
    j = Peer(hub, "h:2", Mode.JSON).join()
    j.lines()
    j.do(Hello(id=1, name="jay"))
    assert [o["type"] for o in j.objects()] == ["rename", "welcome"]
    j.do(PublicMessage(id=2, text="hey"))
    # Delivered first; the ok comes once the store has it (a memory store: at once).
    message, ok = j.objects()
    assert ok == {"type": "ok", "id": 2, "msgid": message["msgid"]}
    assert message["from"] == "jay" and message["to"] is None and message["text"] == "hey"
    assert t.lines()[-1] == "[h:2]jay:hey"
    j.do(PrivateMessage(id=3, to="h:9", text="x"))
    assert j.objects() == [
        {
            "type": "error",
            "id": 3,
            "code": "no_such_user",
            "message": "no user named 'h:9' is online",
        }
    ]
    j.do(PrivateMessage(id=6, to="h:1", text="to a default name"))  # as in the seed
    [private_ok] = j.objects()
    assert private_ok["type"] == "ok" and private_ok["id"] == 6
    assert str(private_ok["msgid"]) > str(message["msgid"])
    assert t.lines() == ["jay say: to a default name"]
    t.do(Rename(name="tee"))
    t.do(PrivateMessage(to="jay", text="back"))
    rename, private = j.objects()
    assert rename == {"type": "rename", "old": "h:1", "new": "tee", "addr": "h:1"}
    assert private["to"] == "jay" and private["from"] == "tee"
    j.do(Ping(id=4))
    assert j.objects() == [{"type": "pong", "id": 4}]
    j.do(Invalid(id=5, code="bad_request", message="nope"))
    assert j.objects() == [{"type": "error", "id": 5, "code": "bad_request", "message": "nope"}]


def test_hello_with_a_taken_name_is_an_error_not_a_welcome(hub: Hub) -> None:
    a = Peer(hub, "h:1").join()
    a.do(Rename(name="alex"))
    j = Peer(hub, "h:2", Mode.JSON).join()
    j.lines()
    j.do(Hello(id="h", name="ALEX"))
    [reply] = j.objects()
    assert reply["type"] == "error" and reply["code"] == "name_taken" and reply["id"] == "h"


def test_leave_tells_everyone_else(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2").join()
    a.lines()
    hub.leave(b.member)
    hub.leave(b.member)  # idempotent
    assert a.lines() == ["[h:2]h:2:user offline"]
    assert hub.members == [a.member]
    assert hub.find("h:2") is None


def test_kick(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2").join()
    b.do(Rename(name="bob"))
    a.lines()
    assert hub.kick("nobody") is None
    assert hub.kick("BOB", "spam") is b.member
    assert b.member.outbox.closed
    assert b.lines()[-1] == "you were removed by an administrator: spam"
    assert a.lines() == ["[h:2]bob:user offline"]
    assert hub.stats.admin_kicks == 1


def test_expire_idle(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2").join()
    a.member.last_active = 100.0
    b.member.last_active = 50.0
    assert hub.expire_idle(cutoff=60.0) == [b.member]
    assert b.lines()[-1] == "you are forced offline"
    assert a.lines()[-1] == "[h:2]h:2:user offline"
    assert hub.stats.idle_kicks == 1


def test_slow_consumer_is_dropped_and_others_still_get_everything(hub: Hub) -> None:
    fast = Peer(hub, "h:1").join()
    slow = Peer(hub, "h:2", limit=200).join()
    for i in range(20):
        fast.do(PublicMessage(text=f"message {i}"))
        fast.lines()  # the fast one reads; the slow one never does
    assert not slow.member.online
    assert slow.member.outbox.closed and not slow.member.outbox.drain
    assert "slow consumer" in slow.lines()[-1]
    assert hub.members == [fast.member]
    assert hub.stats.slow_consumers == 1


def test_slow_consumers_cascade_without_recursion(hub: Hub) -> None:
    talker = Peer(hub, "h:0").join()
    stalled = [Peer(hub, f"h:{i}", limit=5000).join() for i in range(1, 3000)]
    talker.do(PublicMessage(text="x" * 4000))
    assert len(hub) == 1
    assert all(not p.member.online for p in stalled)


def test_shutdown_says_bye_to_everyone_without_offline_lines(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2", Mode.JSON).join()
    a.lines()
    b.lines()
    hub.shutdown()
    assert a.lines() == ["the server is shutting down"]
    assert b.objects() == [
        {"type": "bye", "reason": "shutdown", "message": "the server is shutting down"}
    ]
    assert len(hub) == 0


def test_removed_member_commands_are_ignored(hub: Hub) -> None:
    a, b = Peer(hub, "h:1").join(), Peer(hub, "h:2").join()
    hub.leave(a.member)
    b.lines()
    a.do(PublicMessage(text="ghost"))
    assert b.lines() == []


def test_outbox_bounds_and_order() -> None:
    box = Outbox(limit=10)
    assert box.put(b"12345") and box.put(b"678")
    assert not box.put(b"abc")  # would be 11 bytes
    assert box.take() == b"12345678" and len(box) == 0
    box.put(b"abc")
    box.unget(b"xy")
    assert box.take() == b"xyabc"
    box.close(b"bye\n")
    assert box.put(b"ignored")
    assert box.take() == b"bye\n"


def test_a_reply_is_owed_whatever_its_size_and_told_once_written() -> None:
    # Issue 25: a reply bigger than the whole queue used to make its asker a slow
    # consumer. It is owed on top of the limit, and says when it has been written.
    box = Outbox(limit=100)
    written: list[str] = []
    assert box.put(b"a" * 30)
    box.put_reply(b"r" * 500, lambda: written.append("page"))
    assert box.owed == 500 and box.high == 50 + 500 and not box.congested
    assert box.put(b"b" * 60)  # others' lines still have the whole limit on top
    assert box.congested and box.high == 100 + 500  # 90 of them: past half of it
    assert not box.put(b"c" * 20)  # 30 + 60 + 20 waiting past the limit: slow
    data = box.take()
    box.wrote(data, 300)  # the socket took 300 bytes: 270 of the reply
    assert written == [] and box.owed == 230 and len(box) == len(data) - 300
    again = box.take()
    box.wrote(again, len(again))
    assert written == ["page"] and box.owed == 0 and box.high == 100
    box.relieve()
    assert box.high == 50


def test_the_asker_is_told_when_its_replies_are_mostly_read() -> None:
    box = Outbox(limit=400)  # reply_pace: 100 bytes owed
    told: list[int] = []
    box.put_reply(b"x" * 1000)
    box.on_replies_read = lambda: told.append(box.owed)
    data = box.take()
    box.wrote(data, 850)
    assert told == []  # 150 still owed
    box.wrote(data[850:], 60)
    assert told == [90] and box.on_replies_read is None


def test_a_long_line_reaches_a_client_that_has_caught_up() -> None:
    # --max-line may exceed --max-queue: one line alone is never a reason to drop a
    # client that reads; past the limit with other lines waiting, it is.
    box = Outbox(limit=100)
    assert box.put(b"L" * 300)
    assert not box.put(b"x")
    box.wrote(box.take(), 300)
    assert box.put(b"y" * 10) and not box.put(b"M" * 300)


def test_a_dropped_client_s_replies_are_never_told_written() -> None:
    box = Outbox(limit=100)
    written: list[int] = []
    box.put_reply(b"r" * 50, lambda: written.append(1))
    data = box.take()
    box.wrote(data, 10)  # partly written, then dropped
    box.close(b"bye\n", drain=False)
    assert box.owed == 0 and box.take() == b"bye\n" and written == []


def test_joins_of_a_round_are_announced_together_in_order(hub: Hub) -> None:
    # As the server runs it: joins wait for the flush round (announce_joins), and
    # anything else sent meanwhile announces them first.
    rounds: list[int] = []
    hub.on_unannounced = lambda: rounds.append(1)
    old = Peer(hub, "h:1").join()
    hub.announce_joins()
    assert old.lines() == ["[h:1]h:1:user is online"] and rounds == [1]
    watcher = Peer(hub, "h:9", Mode.JSON)
    watcher.member.wire.mode = Mode.JSON
    watcher.join()
    hub.announce_joins()
    assert len(old.lines()) == 1 and len(watcher.objects()) == 1
    a, b, c = (Peer(hub, f"h:{i}").join() for i in (2, 3, 4))
    assert len(rounds) == 3 and old.lines() == []  # one wake-up; nothing sent yet
    hub.announce_joins()
    online = [f"[h:{i}]h:{i}:user is online" for i in (2, 3, 4)]
    assert old.lines() == online  # each once, in order
    assert (a.lines(), b.lines(), c.lines()) == (online, online[1:], online[2:])
    assert [o["name"] for o in watcher.objects()] == ["h:2", "h:3", "h:4"]
    # Anything sent before the round announces what waits first: order is kept.
    d = Peer(hub, "h:5").join()
    a.do(PublicMessage(text="hi"))
    assert old.lines() == ["[h:5]h:5:user is online", "[h:2]h:2:hi"]
    assert d.lines() == ["[h:5]h:5:user is online", "[h:2]h:2:hi"]
    e = Peer(hub, "h:6").join()
    hub.leave(e.member)  # joined and left within one round: both lines, in order
    assert old.lines() == ["[h:6]h:6:user is online", "[h:6]h:6:user offline"]
    f = Peer(hub, "h:7").join()
    hub.kick("h:7")
    assert f.lines() == ["[h:7]h:7:user is online", "you were removed by an administrator"]
