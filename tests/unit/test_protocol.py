"""The pure protocol core: framing, parsing and encoding, with no sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imkit.protocol import (
    BAD_REQUEST,
    INVALID_MESSAGE,
    INVALID_UTF8,
    LINE_TOO_LONG,
    NAME_TAKEN,
    NO_SUCH_USER,
    Authenticate,
    Bye,
    ChatMessage,
    Command,
    Error,
    Frame,
    Hello,
    Invalid,
    LineFramer,
    Mode,
    NameChange,
    Ok,
    Ping,
    Pong,
    Presence,
    PrivateMessage,
    PublicMessage,
    Rename,
    RenameOk,
    ServerConnection,
    UserInfo,
    UserList,
    Welcome,
    Who,
    encode,
    iso_time,
    json_line_limit,
    one_line,
    text_line_limit,
)

# ----------------------------------------------------------------------------- framing


def test_framer_splits_pipelined_lines_and_drops_cr() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"one\r\ntwo\nthree") == [b"one", b"two"]
    assert framer.feed(b"\n") == [b"three"]


def test_framer_joins_a_line_split_across_reads() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"hel") == []
    assert framer.feed(b"lo wor") == []
    assert framer.feed(b"ld\r") == []
    assert framer.feed(b"\n") == [b"hello world"]


def test_framer_keeps_empty_lines_for_the_idle_timer() -> None:
    assert LineFramer(10).feed(b"\n\r\nx\n") == [b"", b"", b"x"]


def test_framer_reports_a_complete_long_line_once() -> None:
    framer = LineFramer(5)
    assert framer.feed(b"12345\n123456\nok\n") == [b"12345", None, b"ok"]


def test_framer_discards_the_rest_of_a_long_line_up_to_the_newline() -> None:
    framer = LineFramer(5)
    assert framer.feed(b"1234567") == [None]
    assert framer.feed(b"rename|evil") == []  # still the same long line: not a command
    assert framer.feed(b" more\nnext\n") == [b"next"]
    assert framer.buffered == 0


def test_framer_limit_can_change_between_feeds() -> None:
    framer = LineFramer(20)
    assert framer.feed(b"123456") == []
    framer.max_line = 5  # the partial line is now known to be too long
    assert framer.feed(b"7") == [None]
    assert framer.feed(b"\nok\n") == [b"ok"]
    with pytest.raises(ValueError):
        framer.max_line = 0


def test_framer_allows_a_line_of_exactly_max_bytes_before_crlf() -> None:
    framer = LineFramer(5)
    assert framer.feed(b"12345\r") == []
    assert framer.feed(b"\n") == [b"12345"]


@given(st.lists(st.binary(max_size=40), max_size=30), st.integers(1, 50))
def test_framer_never_buffers_more_than_max_line(chunks: list[bytes], max_line: int) -> None:
    framer = LineFramer(max_line)
    for chunk in chunks:
        for line in framer.feed(chunk):
            assert line is None or (len(line) <= max_line and b"\n" not in line)
        assert framer.buffered <= max_line + 1


@given(
    st.lists(st.binary(min_size=0, max_size=30).filter(lambda b: b"\n" not in b), max_size=20),
    st.data(),
)
def test_framer_output_does_not_depend_on_how_bytes_are_split(
    lines: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole = LineFramer(16).feed(stream)
    framer = LineFramer(16)
    split = [line for piece in pieces for line in framer.feed(piece)]
    assert split == whole


# -------------------------------------------------------------------------- text mode


def commands(*chunks: bytes, max_line: int = 4096) -> list[Command]:
    wire = ServerConnection(max_line=max_line)
    return [c for chunk in chunks for c in wire.receive_data(chunk)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"hello world", PublicMessage(text="hello world")),
        (b"who", Who()),
        (b"who ", PublicMessage(text="who ")),
        (b"rename|alex", Rename(name="alex")),
        (b"rename|", Rename(name="")),
        (b"to|alex|hi there", PrivateMessage(to="alex", text="hi there")),
        (b"to|alex|a|b|c", PrivateMessage(to="alex", text="a|b|c")),
        ("你好，世界".encode(), PublicMessage(text="你好，世界")),
    ],
)
def test_text_lines(line: bytes, expected: Command) -> None:
    wire = ServerConnection()
    assert wire.receive_data(b"first\n" + line + b"\n") == [PublicMessage(text="first"), expected]
    assert wire.mode is Mode.TEXT


@pytest.mark.parametrize("line", [b"to|alex", b"to|alex|", b"to|"])
def test_private_message_without_text_is_invalid(line: bytes) -> None:
    [command] = commands(line + b"\n")
    assert isinstance(command, Invalid) and command.code == INVALID_MESSAGE


def test_first_line_pass_is_authentication() -> None:
    assert commands(b"pass|s3cret\npass|x\n") == [
        Authenticate(password="s3cret"),
        PublicMessage(text="pass|x"),
    ]


def test_invalid_utf8_is_reported_and_the_connection_goes_on() -> None:
    [bad, good] = commands(b"\xff\xfe\nok\n")
    assert isinstance(bad, Invalid) and bad.code == INVALID_UTF8
    assert good == PublicMessage(text="ok")


def test_long_line_is_reported_and_its_rest_is_not_a_command() -> None:
    result = commands(b"x" * 70, b"rename|sneaky\nwho\n", max_line=64)
    assert [type(c) for c in result] == [Invalid, Who]
    assert isinstance(result[0], Invalid) and result[0].code == LINE_TOO_LONG


def test_line_limits_leave_room_for_the_envelope() -> None:
    assert text_line_limit(4096) == 4096 + len("to||") + 32 * 4 == 4228
    assert json_line_limit(4096) == 3 * 4096 + 1024 == 13312


def text_too_long(max_line: int = 4096) -> Invalid:
    return Invalid(
        code=LINE_TOO_LONG, message=f"line too long (the limit is {max_line} bytes); discarded"
    )


def test_a_private_text_line_may_pass_max_line_by_its_envelope() -> None:
    name = "😀" * 32  # the longest name in bytes
    envelope = f"to|{name}|".encode()
    assert len(envelope) == text_line_limit(0)
    fits = envelope + b"x" * 64
    assert commands(b"hi\n" + fits + b"\n", max_line=64)[1] == PrivateMessage(
        to=name, text="x" * 64
    )
    # One byte more text, one byte more name, a line that is no private message: refused.
    for line in (fits + b"x", b"to|" + b"n" * 200 + b"|x", b"p" * 65, b"rename|" + b"r" * 60):
        assert commands(b"hi\n" + line + b"\n", max_line=64)[1] == text_too_long(64)


def test_a_long_text_line_is_too_long_before_it_is_bad_utf8() -> None:
    assert commands(b"\xff" * 70 + b"\n", max_line=64) == [text_too_long(64)]
    [bad] = commands(b"to|bob|" + b"\xff" * 60 + b"\n", max_line=64)
    assert isinstance(bad, Invalid) and bad.code == INVALID_UTF8


def test_a_long_first_line_may_be_a_private_message_and_decides_text_mode() -> None:
    wire = ServerConnection(max_line=8)
    assert wire.receive_data(b"to|bob|12345678\n") == [PrivateMessage(to="bob", text="12345678")]
    assert wire.mode is Mode.TEXT


def test_a_refused_long_first_line_does_not_decide_the_mode() -> None:
    for line in (b"p" * 20, b"to|bob|123456789", b'{"type":"who","pad":"......"}'):
        wire = ServerConnection(max_line=8)
        assert wire.receive_data(line + b"\n") == [text_too_long(8)]
        assert wire.mode is Mode.UNDECIDED
        assert wire.receive_data(b'{"type":"hello"}\n') == [Hello()]


def test_a_long_hello_is_read() -> None:
    wire = ServerConnection(max_line=8)
    [hello] = wire.receive_data(b'{"type":"hello","name":"alexandra","id":1}\n')
    assert hello == Hello(id=1, name="alexandra") and wire.mode is Mode.JSON


def test_a_json_text_of_max_line_bytes_fits_however_it_is_escaped() -> None:
    max_line = 60
    for text in ('"' * 60, "\\" * 60, "é" * 30, "你" * 20, "😀" * 15):
        assert len(text.encode()) == max_line
        request = {"type": "message", "text": text, "to": "😀" * 32, "id": "x" * 200}
        line = json.dumps(request).encode()  # ensure_ascii: \uXXXX for every non-ASCII one
        assert len(line) <= json_line_limit(max_line)
        wire = ServerConnection(max_line=max_line)
        wire.receive_data(b'{"type":"hello"}\n')
        assert wire.receive_data(line + b"\n") == [
            PrivateMessage(id="x" * 200, to="😀" * 32, text=text)
        ]


@pytest.mark.parametrize("to", [None, "bob"])
def test_a_json_text_over_max_line_is_too_long_with_its_id(to: str | None) -> None:
    wire = ServerConnection(max_line=8)
    wire.receive_data(b'{"type":"hello"}\n')
    request = {"type": "message", "text": "é" * 4 + "x", "to": to, "id": 9}
    assert wire.receive_data(json.dumps(request).encode() + b"\n") == [
        Invalid(
            id=9,
            code=LINE_TOO_LONG,
            message="line too long: the message text is longer than 8 bytes",
        )
    ]


def test_a_json_line_over_its_limit_names_that_limit() -> None:
    wire = ServerConnection(max_line=8)
    wire.receive_data(b'{"type":"hello"}\n')
    limit = json_line_limit(8)
    assert wire.receive_data(b"{" + b" " * limit + b"}\n") == [
        Invalid(
            code=LINE_TOO_LONG, message=f"line too long (the limit is {limit} bytes); discarded"
        )
    ]


def test_other_long_json_requests_are_read() -> None:
    wire = ServerConnection(max_line=8)
    wire.receive_data(b'{"type":"hello"}\n')
    assert wire.receive_data(b'{"type":"rename","name":"alexandra"}\n') == [
        Rename(name="alexandra")
    ]


def test_lines_received_counts_empty_lines() -> None:
    wire = ServerConnection()
    assert wire.receive_data(b"\n\r\n") == []
    assert wire.lines_received == 2


# -------------------------------------------------------------------------- JSON mode


def test_hello_first_line_switches_to_json() -> None:
    wire = ServerConnection()
    [hello] = wire.receive_data(b'{"type":"hello","v":1,"name":"bob","id":7}\n')
    assert hello == Hello(id=7, name="bob")
    assert wire.mode is Mode.JSON


def test_json_object_that_is_not_hello_means_text_mode() -> None:
    wire = ServerConnection()
    assert wire.receive_data(b'{"type":"who"}\n') == [PublicMessage(text='{"type":"who"}')]
    assert wire.mode is Mode.TEXT


def test_hello_later_in_text_mode_is_just_a_message() -> None:
    wire = ServerConnection()
    wire.receive_data(b"hi\n")
    assert wire.receive_data(b'{"type":"hello"}\n') == [PublicMessage(text='{"type":"hello"}')]


def json_commands(*requests: object) -> list[Command]:
    wire = ServerConnection()
    wire.receive_data(b'{"type":"hello"}\n')
    data = b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in requests
    )
    return wire.receive_data(data)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"type": "message", "text": "hi", "id": 1}, PublicMessage(id=1, text="hi")),
        ({"type": "message", "text": "hi", "to": None}, PublicMessage(text="hi")),
        ({"type": "message", "text": "hi", "to": "bo"}, PrivateMessage(to="bo", text="hi")),
        ({"type": "who", "id": "a"}, Who(id="a")),
        ({"type": "ping", "id": 2.5}, Ping(id=2.5)),
        ({"type": "rename", "name": "z"}, Rename(name="z")),
        ({"type": "hello", "password": "pw"}, Hello(password="pw")),
        ({"type": "who", "extra": [1, 2]}, Who()),  # more fields may be added
    ],
)
def test_json_requests(request_: dict[str, object], expected: Command) -> None:
    assert json_commands(request_) == [expected]


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (b"{not json", BAD_REQUEST, "malformed JSON"),
        (b"[1,2]", BAD_REQUEST, "JSON object"),
        (b'"str"', BAD_REQUEST, "JSON object"),
        (b'{"type":"message","text":"x","id":NaN}', BAD_REQUEST, "NaN"),
        ({"type": "fly"}, BAD_REQUEST, "unknown request type 'fly'"),
        ({"text": "x"}, BAD_REQUEST, "type"),
        ({"type": "message"}, BAD_REQUEST, "'text' is required"),
        ({"type": "message", "text": 5}, BAD_REQUEST, "'text' must be a string"),
        ({"type": "message", "text": "x", "to": 5}, BAD_REQUEST, "'to' must be a string"),
        ({"type": "message", "text": ""}, INVALID_MESSAGE, "empty"),
        ({"type": "message", "text": "a\nb"}, INVALID_MESSAGE, "one line"),
        ({"type": "rename"}, BAD_REQUEST, "'name' is required"),
        ({"type": "rename", "name": None}, BAD_REQUEST, "'name' is required"),
        ({"type": "who", "id": True}, BAD_REQUEST, "'id'"),
        ({"type": "who", "id": [1]}, BAD_REQUEST, "'id'"),
        ({"type": "hello", "v": 2}, BAD_REQUEST, "version"),
        (b'{"type":"message","text":"\\ud800"}', BAD_REQUEST, "not valid Unicode"),
        (b'{"type":"ping","id":"\\ud800"}', BAD_REQUEST, "'id' is not valid Unicode"),
        (b'{"type":"message","text":"x","id":"a\\udfffb"}', BAD_REQUEST, "'id'"),
        (b"[" * 2000 + b"]" * 2000, BAD_REQUEST, "malformed JSON"),
    ],
)
def test_bad_json_requests(request_: object, code: str, words: str) -> None:
    [command] = json_commands(request_)
    assert isinstance(command, Invalid), command
    assert command.code == code
    assert words in command.message


def test_bad_json_request_keeps_its_id() -> None:
    [command] = json_commands({"type": "message", "text": "", "id": "m1"})
    assert isinstance(command, Invalid) and command.id == "m1"


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"ping","id":"\\ud800"}',
        b'{"type":"hello","password":"pw","id":"\\ud800"}',  # a hello later is one too
    ],
)
def test_an_id_that_cannot_be_encoded_is_not_echoed(line: bytes) -> None:
    [command] = json_commands(line)
    assert isinstance(command, Invalid) and command.code == BAD_REQUEST
    assert command.id is None
    assert encode(Error(command.id, command.code, command.message), Mode.JSON)


def test_a_first_hello_with_an_id_that_cannot_be_encoded() -> None:
    wire = ServerConnection()
    [command] = wire.receive_data(b'{"type":"hello","password":"pw","id":"\\udc00"}\n')
    assert isinstance(command, Invalid) and command.id is None and wire.mode is Mode.JSON


# ---------------------------------------------------------------------------- encoding


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (ChatMessage("alex", "1.2.3.4:5", None, "hi", 0.0), b"[1.2.3.4:5]alex:hi\n"),
        (ChatMessage("alex", "1.2.3.4:5", "bob", "hi", 0.0), b"alex say: hi\n"),
        (Presence("a", "1.2.3.4:5", online=True), b"[1.2.3.4:5]a:user is online\n"),
        (Presence("a", "1.2.3.4:5", online=False), b"[1.2.3.4:5]a:user offline\n"),
        (RenameOk(None, "bob"), b"you have updated user name: bob\n"),
        (Error(None, NAME_TAKEN, "taken", "bob"), b"bob has existed...\n"),
        (Error(None, NO_SUCH_USER, "none"), b"username not exist\n"),
        (Error(None, INVALID_MESSAGE, "bad"), b"invalid message\n"),
        (Error(None, LINE_TOO_LONG, "line too long"), b"error: line too long\n"),
        (
            UserList(None, (UserInfo("a", "1:1"), UserInfo("b", "2:2"))),
            b"[1:1]a:online...\n[2:2]b:online...\n",
        ),
        (Bye("idle", "you are forced offline"), b"you are forced offline\n"),
        (Ok(1), b""),
        (Pong(1), b""),
        (Welcome(1, "a", "b", "imkit/x"), b""),
        (NameChange("a", "b", "1:1"), b""),
    ],
)
def test_text_encoding_is_the_seeds(event: object, text: bytes) -> None:
    assert encode(event, Mode.TEXT) == text  # type: ignore[arg-type]
    assert encode(event, Mode.UNDECIDED) == text  # type: ignore[arg-type]


def test_json_encoding() -> None:
    line = encode(ChatMessage("alex", "1.2.3.4:5", "bob", "你好", 1.5), Mode.JSON)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "type": "message",
        "from": "alex",
        "addr": "1.2.3.4:5",
        "to": "bob",
        "text": "你好",
        "time": "1970-01-01T00:00:01.500Z",
        "account": None,
    }
    assert json.loads(encode(Ok(None), Mode.JSON)) == {"type": "ok"}
    assert json.loads(encode(Error("x", BAD_REQUEST, "m"), Mode.JSON)) == {
        "type": "error",
        "id": "x",
        "code": BAD_REQUEST,
        "message": "m",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("a\nb", "a b"),
        ("a\r\n\r\nb", "a b"),
        ("a\tb\x00c", "a b c"),
        ("a\x1b[31mb", "a [31mb"),
        ("a\x85b\u2028c\u2029d\x7fe\x9bf", "a b c d e f"),
        ("é 你 😀 | :", "é 你 😀 | :"),
        ("\n", " "),
    ],
)
def test_one_line(text: str, expected: str) -> None:
    assert one_line(text) == expected


FORGED = "bye\n[1.2.3.4:5]boss:send me your password"


@pytest.mark.parametrize(
    "event",
    [
        Bye("kicked", f"you were removed by an administrator: {FORGED}"),
        Error(None, LINE_TOO_LONG, FORGED),
        Error(1, BAD_REQUEST, FORGED),
        Error(None, NAME_TAKEN, FORGED, subject="a\nb"),
    ],
)
def test_imkit_texts_are_one_line_in_both_modes(event: Bye | Error) -> None:
    text, json_line = encode(event, Mode.TEXT), encode(event, Mode.JSON)
    assert text.count(b"\n") == 1 and b"\r" not in text
    # The JSON form carries the same sentence (a JSON client may print it).
    assert "\n" not in json.loads(json_line)["message"]


def test_chat_text_is_relayed_as_sent() -> None:
    event = ChatMessage("alex", "1.2.3.4:5", None, "tab\there \x1b[1m", 0.0)
    assert encode(event, Mode.TEXT) == b"[1.2.3.4:5]alex:tab\there \x1b[1m\n"


def test_frame_encodes_each_mode_once() -> None:
    frame = Frame(Presence("a", "1:1", online=True))
    text, json_line = frame.text, frame.json
    assert frame.text is text and frame.json is json_line  # cached, not encoded again
    assert text == encode(frame.event, Mode.TEXT) and json_line == encode(frame.event, Mode.JSON)


def test_iso_time() -> None:
    assert iso_time(1796000000.25) == "2026-11-30T00:53:20.250Z"


# ------------------------------------------------------------------ arbitrary bytes


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_any_bytes_give_commands_or_clear_errors(chunks: list[bytes]) -> None:
    for first in (b"", b'{"type":"hello"}\n'):
        wire = ServerConnection(max_line=64)
        for chunk in [first, *chunks]:
            for command in wire.receive_data(chunk):
                assert isinstance(command, Command)
                if isinstance(command, Invalid):
                    assert command.message and "\n" not in command.message
                    # every error can be sent back in either mode
                    assert encode(Error(command.id, command.code, command.message), wire.mode)


@given(st.text(max_size=50))
def test_any_text_message_encodes_to_one_line(text: str) -> None:
    text = text.replace("\n", "").replace("\r", "")
    for mode in (Mode.TEXT, Mode.JSON):
        data = encode(
            ChatMessage("a", "1:1", None, text.encode("utf-8", "replace").decode(), 0), mode
        )
        assert data.count(b"\n") == 1 and data.endswith(b"\n")


@given(st.lists(st.binary(max_size=60), max_size=30), st.integers(1, 20))
def test_a_connection_never_buffers_more_than_its_line_limit(
    chunks: list[bytes], max_line: int
) -> None:
    for first in (b"", b"x\n", b'{"type":"hello"}\n'):
        wire = ServerConnection(max_line=max_line)
        for chunk in [first, *chunks]:
            wire.receive_data(chunk)
            limit = text_line_limit if wire.mode is Mode.TEXT else json_line_limit
            assert wire.buffered <= limit(max_line) + 1


LINE_PARTS = st.sampled_from(
    [b"to|", b"bob", b"|", b"x" * 7, "é".encode(), b"\xff", b'{"type":"hello"}', b"who", b"\r"]
    + [b"y" * 150, b"z" * 600]  # past the text and the JSON line limits of max_line=8
)


@given(st.lists(st.lists(LINE_PARTS, max_size=6).map(b"".join), max_size=8), st.data())
def test_commands_do_not_depend_on_how_bytes_are_split(
    lines: list[bytes], data: st.DataObject
) -> None:
    # Lines near both limits, in every mode: the mode decided in the middle of a batch
    # must not change how the lines after it are judged.
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole = ServerConnection(max_line=8).receive_data(stream)
    wire = ServerConnection(max_line=8)
    split = [command for piece in pieces for command in wire.receive_data(piece)]
    assert split == whole
