"""Outgoing IRC messages longer than a line (imkit.irc.message.split_text, used by
imkit.irc.render.chat_line): several lines of at most 512 bytes, cut at a space where
there is one, never inside a UTF-8 character, whose texts joined are the message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imkit.irc.message import MAX_LINE, parse, split_text
from imkit.irc.render import chat_line
from imkit.protocol import ChatMessage

HEAD = ":someone!~u@192.0.2.1 PRIVMSG #room :"


def test_a_text_that_fits_is_one_piece() -> None:
    text = "x" * (MAX_LINE - len(HEAD) - 2)
    assert split_text(HEAD, text) == [text]
    assert split_text(HEAD, "") == [""]


def test_a_long_text_is_cut_after_a_space() -> None:
    words = " ".join(f"word{n:03}" for n in range(120))  # 959 bytes
    pieces = split_text(HEAD, words)
    assert len(pieces) == 3 and "".join(pieces) == words
    assert all(p.endswith(" ") for p in pieces[:-1])  # each cut is just after a space
    assert all(len((HEAD + p).encode()) + 2 <= MAX_LINE for p in pieces)
    assert len((HEAD + pieces[0]).encode()) + 2 > MAX_LINE - 9  # full, but for a word


def test_a_text_without_spaces_is_cut_between_characters() -> None:
    text = "é" * 300 + "🙂" * 100  # 2-byte then 4-byte characters, 1000 bytes
    pieces = split_text(HEAD, text)
    assert "".join(pieces) == text and len(pieces) == 3
    room = MAX_LINE - len(HEAD) - 2
    sizes = [len(p.encode()) for p in pieces]
    assert all(room - 4 < size <= room for size in sizes[:-1])  # full but for a character
    assert sum(sizes) == 1000


@given(
    st.text(alphabet=st.sampled_from("ab ée🙂\u0301"), max_size=2000),
    st.integers(min_value=0, max_value=600),
)
def test_every_piece_fits_and_they_join_to_the_text(text: str, extra: int) -> None:
    head = HEAD.replace("#room", "#" + "r" * extra)
    pieces = split_text(head, text)
    assert "".join(pieces) == text
    if len(head.encode()) + 2 + 4 <= MAX_LINE:
        assert all(len((head + p).encode()) + 2 <= MAX_LINE for p in pieces)
    assert all(pieces) or pieces == [""]


def test_a_long_message_is_several_privmsgs_the_first_with_its_msgid() -> None:
    text = "long " * 250  # 1250 bytes
    event = ChatMessage("sam", "1.2.3.4:5", None, text, 0.0, "0001", None, "#b")
    lines = chat_line(event, frozenset({"message-tags", "server-time"})).split("\r\n")
    assert lines[-1] == ""
    messages = [parse(one) for one in lines[:-1]]
    assert len(messages) == 3
    assert all(m.command == "PRIVMSG" and m.params[0] == "#b" for m in messages)
    assert "".join(m.params[1] for m in messages) == text
    assert [m.tags.get("msgid") for m in messages] == ["0001", None, None]
    assert all("time" in m.tags for m in messages)
    for one in lines[:-1]:
        assert len(one.partition(" ")[2].encode()) + 2 <= MAX_LINE  # after the tags


def test_a_text_an_irc_client_could_send_goes_whole_even_past_512_bytes() -> None:
    """As ergo: a full client line comes back as one line, its source added (irctest's
    buffering tests count the lines); only a longer text is split."""
    fits = "a" * (MAX_LINE - len("PRIVMSG #b \r\n"))  # a full line (one word: no colon)
    event = ChatMessage("sam", "1.2.3.4:5", None, fits, 0.0, "0001", None, "#b")
    [one, end] = chat_line(event, frozenset()).split("\r\n")
    assert end == "" and parse(one).params[1] == fits and len(one.encode()) + 2 > MAX_LINE
    longer = ChatMessage("sam", "1.2.3.4:5", None, fits + "b", 0.0, "0001", None, "#b")
    assert chat_line(longer, frozenset()).count("\r\n") == 2
