"""`imkit chat` as a subprocess with piped standard input, through whole sessions."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from tests.support import (
    IMKIT,
    InteractiveProcess,
    ServerProcess,
    chat,
    imkit_env,
    run_imkit,
    split_addr,
    start_server_process,
)
from tests.support.accounts import start_accounts_server
from tests.support.scripted import Json, ScriptedServer, Session


def test_two_people_talk_through_a_whole_session(server_process: ServerProcess) -> None:
    alice = chat(server_process.address, "--name", "alice")
    alice.expect("^you are now alice$")  # alice arrives first
    bob = chat(server_process.address, "--name", "bob")
    try:
        bob.expect("^you are now bob$")
        bob.expect("^0 exit$")  # past messages are read: alice's next one is live

        # public chat, both ways
        alice.send("1", "hello bob, 你好!")
        bob.expect("^alice: hello bob, 你好!$")
        alice.expect("^alice: hello bob, 你好!$")  # the sender sees it too, as in the seed
        bob.send("1", "hi alice")
        alice.expect("^bob: hi alice$")

        # private chat, both ways; the list of who is online comes first
        alice.send("exit", "2")
        alice.expect(r"^online \(2\):$")
        alice.send("bob", "a secret  with  spaces | and bars")
        bob.expect(r"^alice \(private\): a secret  with  spaces \| and bars$")
        bob.send("exit", "2", "ALICE", "got it")
        alice.expect(r"^bob \(private\): got it$")

        # a private message to nobody is refused in words; the sender stays put
        alice.send("exit", "nobody", "hello?")
        alice.expect("^! no user named 'nobody' is online$")
        alice.send("still here?")
        alice.expect("^! no user named 'nobody' is online$")
        alice.send("exit", "exit")

        # rename: taken, then free
        bob.send("exit", "exit", "3", "Alice")
        bob.expect("^! the name 'Alice' is taken$")
        bob.send("3", "robert")
        bob.expect("^you are now robert$")
        alice.expect("^\\* bob is now known as robert$")

        # who
        bob.send("4")
        bob.expect(r"^online \(2\):$")
        assert bob.expect(r"^  \S+  ").split()[0] == "alice"
        assert bob.expect(r"^  \S+  ").endswith("(you)")

        # leave
        bob.send("0")
        assert bob.finish() == (0, "")
        alice.expect("^\\* robert went offline$")
        alice.send("0")
        assert alice.finish() == (0, "")
    finally:
        alice.kill()
        bob.kill()


def test_menu_rejects_other_choices(server_process: ServerProcess) -> None:
    person = chat(server_process.address)
    try:
        person.send("12")
        person.expect("^'12' is not on the menu: type 0 to 4 or 6 to 9$")
        person.send("0")
        assert person.finish() == (0, "")
    finally:
        person.kill()


def test_end_of_input_leaves_cleanly(server_process: ServerProcess) -> None:
    person = chat(server_process.address, "--name", "eve")
    try:
        person.expect("^you are now eve$")
        person.send("1", "last words")
        person.expect("^eve: last words$")
        assert person.finish() == (0, "")  # Ctrl-D in a pipe: stdin closes
    finally:
        person.kill()


def test_taken_name_at_start_is_shown_and_the_chat_goes_on(server_process: ServerProcess) -> None:
    first = chat(server_process.address, "--name", "sam")
    first.expect("^you are now sam$")
    second = chat(server_process.address, "--name", "SAM")
    try:
        second.expect("^! the name 'SAM' is taken$")
        second.send("4")
        second.expect(r"^online \(2\):$")
        second.send("0")
        assert second.finish() == (0, "")
    finally:
        first.kill()
        second.kill()


def test_idle_kick_is_explained_and_exits_1() -> None:
    server = start_server_process("--idle-timeout", "1")
    person = chat(server.address, "--name", "sleepy")
    try:
        person.expect("^you are now sleepy$")
        status, stderr = person.finish_after_exit()
        assert status == 1
        assert stderr == "Error: disconnected by the server: you are forced offline\n"
    finally:
        person.kill()
        server.stop()


def test_server_going_away_exits_3() -> None:
    server = start_server_process("--idle-timeout", "0")
    person = chat(server.address, "--name", "left")
    try:
        person.expect("^you are now left$")
        server.stop(signal.SIGKILL)
        status, stderr = person.finish_after_exit()
        assert status == 3
        assert stderr.startswith("Error: connection lost")
    finally:
        person.kill()


def test_server_shutdown_is_explained() -> None:
    server = start_server_process("--idle-timeout", "0")
    person = chat(server.address, "--name", "left")
    try:
        person.expect("^you are now left$")
        server.stop(signal.SIGTERM)
        status, stderr = person.finish_after_exit()
        assert status == 1
        assert stderr == "Error: disconnected by the server: the server is shutting down\n"
    finally:
        person.kill()


def test_no_server_exits_3() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        person = chat(f"127.0.0.1:{probe.getsockname()[1]}")
        status, stderr = person.finish()
    assert status == 3
    assert "Connection refused" in stderr


# ------------------------------------------------------------------- accounts (--login)
# Against a stand-in server (tests/support/scripted.py): what chat sends and shows.


def login_answer(request: Json, session: Session) -> list[Json] | None:
    if request["type"] == "hello" and request.get("login"):
        if request["login"]["password"] == "bad":
            code, message = "login_failed", "wrong name or password"
            return [{"type": "error", "id": request["id"], "code": code, "message": message}]
        name = session.name = session.account = request["login"]["name"]
        welcome = {"type": "welcome", "id": request["id"], "name": name, "addr": session.addr}
        waited = {  # a private message that waited for the account while it was offline
            "type": "message",
            "from": "bob",
            "addr": "127.0.0.1:1",
            "to": name,
            "text": "while you were away",
            "time": "2026-01-02T12:00:00Z",
            "msgid": "1767355200000000",
            "account": "bob",
        }
        return [welcome | {"server": "scripted/1", "v": 1, "account": name}, waited]
    if request["type"] == "passwd" and request["old"] != "old-pw":
        code, message = "login_failed", "wrong password"
        return [{"type": "error", "id": request["id"], "code": code, "message": message}]
    return None


def test_login_asks_the_password_first_then_the_menu_can_change_it() -> None:
    server = ScriptedServer(login_answer)
    person = chat(server.address, "--login", "alex")
    try:
        person.send("old-pw")  # piped: the first line is the password
        person.expect("^connected to .* as alex$")
        person.expect("^you have logged in as alex$")
        # shown as past, with its time; before or after the menu (another task shows it)
        person.expect(r"^past \S+ \d\d:\d\d bob \(private\): while you were away$")
        if "5 change your password" not in person.seen:
            person.expect("^5 change your password$")
        assert server.of_type("hello")[0]["login"] == {"name": "alex", "password": "old-pw"}

        person.send("5", "old-pw", "new-pw", "other")
        person.expect("^! the two new passwords differ; the password was not changed$")
        assert server.of_type("passwd") == []
        person.send("5", "wrong", "new-pw", "new-pw")
        person.expect("^! wrong password$")
        person.send("5", "old-pw", "new-pw", "new-pw")
        person.expect("^your password has been changed$")
        assert [(p["old"], p["new"]) for p in server.of_type("passwd")] == [
            ("wrong", "new-pw"),
            ("old-pw", "new-pw"),
        ]
        person.send("12")
        person.expect("^'12' is not on the menu: type 0 to 9$")
        person.send("0")
        status, stderr = person.finish()
        assert (status, stderr) == (0, "")
        assert not any("pw" in line for line in person.seen)  # no password is shown
    finally:
        person.kill()
        server.close()


def test_login_password_from_the_variable() -> None:
    server = ScriptedServer(login_answer)
    host, port = split_addr(server.address)
    person = InteractiveProcess(
        [*IMKIT, "chat", "--host", host, "--port", str(port), "--login", "alex"],
        env=imkit_env(IMKIT_LOGIN_PASSWORD="from-env"),
    )
    try:
        person.expect("^you have logged in as alex$")
        person.send("0")  # the first line is a menu choice
        assert person.finish() == (0, "")
        assert server.of_type("hello")[0]["login"]["password"] == "from-env"
    finally:
        person.kill()
        server.close()


def test_failed_login_exits_1() -> None:
    server = ScriptedServer(login_answer)
    person = chat(server.address, "--login", "alex")
    try:
        person.send("bad")
        assert person.finish_after_exit() == (1, "Error: wrong name or password\n")
    finally:
        person.kill()
        server.close()


def test_guests_have_no_password_item() -> None:
    server = ScriptedServer()
    person = chat(server.address)
    try:
        person.send("5")
        person.expect("^'5' is not on the menu: type 0 to 4 or 6 to 9$")
        assert "5 change your password" not in person.seen
        person.send("0")
        assert person.finish() == (0, "")
    finally:
        person.kill()
        server.close()


def test_login_usage_errors() -> None:
    person = chat("127.0.0.1:1", "--login", "alex", "--name", "al")
    assert person.finish() == (
        2,
        "Error: --name and --login cannot go together: you take your account's name\n",
    )
    host, port = "127.0.0.1", "1"
    empty = InteractiveProcess(
        [*IMKIT, "chat", "--host", host, "--port", port, "--login", "alex"],
        env=imkit_env(IMKIT_LOGIN_PASSWORD=""),
    )
    status, stderr = empty.finish()
    assert status == 2 and "IMKIT_LOGIN_PASSWORD is set but empty" in stderr


# ---------------------------------------------------------------- end to end (a server)


def test_login_waiting_messages_and_password_change_on_a_server(short_dir: Path) -> None:
    server = start_accounts_server(short_dir)
    server.add("alex", "pw-alex")
    server.add("sam", "pw-sam")
    host, port = split_addr(server.address)
    sent = run_imkit(
        *("send", "--host", host, "--port", str(port), "--login", "sam", "--to", "alex"),
        "while you were away",
        env=imkit_env(IMKIT_LOGIN_PASSWORD="pw-sam"),
    )
    assert sent.returncode == 0, sent.stderr
    alex = chat(server.address, "--login", "alex")
    try:
        alex.send("pw-alex")
        alex.expect("^you have logged in as alex$")
        # sent a moment ago, so shown as it arrives (not as past): from sam, privately
        alex.expect(r"^sam \(private\): while you were away$")
        alex.send("4")
        alex.expect(r"^  alex  \S+ \(account\) \(you\)$")
        alex.send("5", "pw-alex", "new-pw", "new-pw")
        alex.expect("^your password has been changed$")
        alex.send("5", "wrong", "x", "x")
        alex.expect("^! wrong name or password$")
        alex.send("3", "someone")
        alex.expect("^! ")  # a logged-in user keeps its account's name
        alex.send("0")
        assert alex.finish() == (0, "")
        again = chat(server.address, "--login", "alex")
        again.send("new-pw")
        again.expect("^you have logged in as alex$")
        again.send("0")
        assert again.finish() == (0, "")
        guest = chat(server.address, "--name", "SAM")
        guest.expect("^! ")  # reserved for the account
        guest.send("0")
        assert guest.finish() == (0, "")
    finally:
        alex.kill()
        server.stop()


def test_a_second_login_elsewhere_ends_the_first_chat(short_dir: Path) -> None:
    server = start_accounts_server(short_dir)
    server.add("alex", "pw")
    first = chat(server.address, "--login", "alex")
    try:
        first.send("pw")
        first.expect("^you have logged in as alex$")
        second = chat(server.address, "--login", "alex")
        second.send("pw")
        second.expect("^you have logged in as alex$")
        status, stderr = first.finish_after_exit()
        assert status == 1
        assert stderr.startswith("Error: disconnected by the server: ")
        second.send("0")
        assert second.finish() == (0, "")
    finally:
        first.kill()
        server.stop()
