"""Search's word rule (docs/integrations.md, "Search"), pure: which messages a query finds.

A query is words separated by white space; a message matches when every word does. A word
matches when its tokens appear in the message's tokens one after another: ``deploy`` is
one token, ``prod-1`` the two tokens ``prod 1`` in a row. A token is a run of letters,
digits and private-use characters (Unicode's L*, N* and Co), compared without case and
without diacritics (``Café`` finds ``cafe``); whole tokens only (``deploy`` does not find
``deployed``). That is the rule of SQLite FTS5's ``unicode61`` tokenizer with
``remove_diacritics 2``, which the SQLite store's index uses (:func:`fts_query` hands it
the words, quoted); :func:`matches` is the same rule in Python for the stores that scan
(``--db none``, a cluster's Redis history), so every store finds the same messages.

A word is always a literal word: quoting makes FTS5's own operators (``AND``, ``NEAR``,
``*``, ``^``, ``col:``) plain text. A word without a token (``--``) is left out; a query
with no word left is refused (:class:`QueryError`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# A query longer than this is refused (a request line is bounded anyway; this bounds the
# work one search asks of the index).
QUERY_MAX = 200
WORDS_MAX = 16

# ASCII's token characters (the others are punctuation, spaces and controls).
_ASCII_TOKEN = re.compile("[a-z0-9]+")

# A query as searched: each word's tokens, in order.
Words = tuple[tuple[str, ...], ...]


class QueryError(ValueError):
    """A query that cannot be searched: empty, no word, too long."""


def query_words(query: str) -> Words:
    """The words of ``query`` (each as its tokens); :class:`QueryError` when it has none
    or is too long."""
    if len(query) > QUERY_MAX:
        raise QueryError(f"a search query has at most {QUERY_MAX} characters")
    words = tuple(tokens for word in query.split() if (tokens := tuple(text_tokens(word))))
    if not words:
        raise QueryError("a search query needs at least one word (letters or digits)")
    if len(words) > WORDS_MAX:
        raise QueryError(f"a search query has at most {WORDS_MAX} words")
    return words


def text_tokens(text: str) -> list[str]:
    """The tokens of ``text``, folded (lower case, no diacritics)."""
    if text.isascii():  # the common case, at C speed: ASCII's token characters
        return _ASCII_TOKEN.findall(text.lower())
    found: list[str] = []
    start = -1
    for index, char in enumerate(text):
        if _is_token_char(char):
            if start < 0:
                start = index
        elif start >= 0:
            found.append(_fold(text[start:index]))
            start = -1
    if start >= 0:
        found.append(_fold(text[start:]))
    return found


def matches(text: str, words: Words) -> bool:
    """Whether a message's ``text`` has every one of ``words`` (a scan's test)."""
    # Every token of a word is a substring of the folded text when the word is there:
    # most texts are ruled out by that test alone, without being split into tokens.
    folded = text.lower() if text.isascii() else _fold(text)
    if not all(token in folded for word in words for token in word):
        return False
    have = text_tokens(text)
    return all(_contains(have, word) for word in words)


def fts_query(words: Words, scope: str | None = None) -> str:
    """The FTS5 MATCH expression of ``words`` in the index's ``text`` column, and within
    the ``scope`` token (:func:`scope_token`) when given. Each word is a quoted string
    (FTS5 tokenizes it as :func:`text_tokens` does, a phrase when it has several)."""
    phrases = " AND ".join('"' + " ".join(word) + '"' for word in words)
    if scope is None:
        return f"{{text}}: ({phrases})"
    return f'{{scope}}: "{scope}" AND {{text}}: ({phrases})'


def scope_token(room: str | None) -> str:
    """The token that the index keeps with each public message for where it was said:
    ``l`` for the lobby, ``r`` and the hex of the room's key (one token, upper-case hex
    as SQLite's ``hex()`` writes it: the schema's triggers compute the same)."""
    return "l" if room is None else "r" + room.encode().hex().upper()


def _contains(have: list[str], word: tuple[str, ...]) -> bool:
    size = len(word)
    if size == 1:
        return word[0] in have
    return any(tuple(have[i : i + size]) == word for i in range(len(have) - size + 1))


@lru_cache(maxsize=4096)
def _is_token_char(char: str) -> bool:
    category = unicodedata.category(char)
    # Mn too: a combining accent belongs to its letter (then removed by _fold).
    return category[0] in "LN" or category in ("Co", "Mn")


def _fold(token: str) -> str:
    if token.isascii():
        return token.lower()
    decomposed = unicodedata.normalize("NFD", token.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
