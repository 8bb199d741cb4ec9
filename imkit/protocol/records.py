"""``record``: the frozen dataclass of the protocol's commands and events, cheap to make.

A ``@dataclass(frozen=True)`` assigns each field in ``__init__`` through
``object.__setattr__``, several times slower for a chat message, which is made once per
message on the hot path (docs/performance.md has the figures). A record is a slotted
dataclass whose ``__init__`` assigns directly and that hashes by value like a frozen
one; immutability is checked where it matters, by mypy (``frozen_default``: assigning
to a field is a type error), not at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform, overload

T = TypeVar("T")


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, kw_only: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(
    cls: type[T] | None = None, /, *, kw_only: bool = False
) -> type[T] | Callable[[type[T]], type[T]]:
    def wrap(cls: type[T]) -> type[T]:
        return dataclass(slots=True, unsafe_hash=True, kw_only=kw_only)(cls)

    return wrap if cls is None else wrap(cls)
