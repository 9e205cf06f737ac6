"""The strategy interface, the registry, and helpers shared by strategies.

A strategy is a class with a unique ``key`` and a human ``label`` that implements:

* ``offered(pool, req, lo, hi)`` – the epoch-second starts in ``[lo, hi)`` it offers (any order, may repeat);
* ``choose(pool, req, start)`` – ``(hosts, candidates)``: the hosts for a booking at ``start`` (empty if
  nobody can host) and the decision-record candidate entries, in the order they were considered.

Decorate it with ``@register``; ``REGISTRY`` maps keys to instances in registration order. Adding a strategy
means adding one module and one import line in ``strategies/__init__.py``; no other strategy changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from routing.core.availability import Request, free_epochs, reason_at
from routing.core.results import CHOSEN, NOT_NEEDED, SKIPPED, Host, candidate
from routing.core.types import MemberState, PoolSpec


class Strategy(ABC):
    key: ClassVar[str]
    label: ClassVar[str]

    @abstractmethod
    def offered(self, pool: PoolSpec, req: Request, lo: int, hi: int) -> Iterable[int]: ...

    @abstractmethod
    def choose(
        self, pool: PoolSpec, req: Request, start: datetime
    ) -> tuple[list[Host], list[dict[str, Any]]]: ...


REGISTRY: dict[str, Strategy] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: add one instance of ``cls`` to ``REGISTRY`` under ``cls.key``."""
    if cls.key in REGISTRY:
        raise ValueError(f"strategy {cls.key!r} is already registered")
    REGISTRY[cls.key] = cls()
    return cls


def union_free(members: Iterable[MemberState], req: Request, lo: int, hi: int) -> set[int]:
    """Every start in ``[lo, hi)`` at which at least one of ``members`` is free."""
    out: set[int] = set()
    for member in members:
        out.update(free_epochs(member, req, lo, hi))
    return out


def first_free(
    ordered: Sequence[MemberState], req: Request, start: datetime, rest_reason: str | None = None
) -> tuple[MemberState | None, list[dict[str, Any]]]:
    """The first member of ``ordered`` free at ``start`` and the candidate entries for all of them.

    Members after the chosen one are not evaluated: outcome ``not_needed`` with reason ``rest_reason``.
    """
    entries: list[dict[str, Any]] = []
    chosen: MemberState | None = None
    for member in ordered:
        if chosen is not None:
            entries.append(candidate(member, NOT_NEEDED, rest_reason))
            continue
        reason = reason_at(member, req, start)
        if reason is None:
            chosen = member
            entries.append(candidate(member, CHOSEN, None))
        else:
            entries.append(candidate(member, SKIPPED, reason))
    return chosen, entries


def single_host(chosen: MemberState | None) -> list[Host]:
    return [] if chosen is None else [Host(chosen.rep_id, chosen.role)]
