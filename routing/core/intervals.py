"""Sorted, half-open integer ranges ``[start, end)`` and the three operations the core needs.

Every function takes and returns lists of ``(start, end)`` tuples sorted by start, non-empty, non-overlapping
and non-touching ("merged"), except ``merge`` which accepts anything.
"""

from __future__ import annotations

from collections.abc import Iterable

Span = tuple[int, int]


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sort and union ranges; touching ranges are joined (``[1, 2) + [2, 3) = [1, 3)``)."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(spans: list[Span], holes: list[Span]) -> list[Span]:
    """``spans`` minus ``holes`` (both merged), in one forward sweep."""
    if not holes:
        return spans
    out: list[Span] = []
    j, n = 0, len(holes)
    for start, end in spans:
        while j < n and holes[j][1] <= start:
            j += 1
        k = j
        cur = start
        while k < n and holes[k][0] < end:
            h0, h1 = holes[k]
            if h0 > cur:
                out.append((cur, h0))
            if h1 > cur:
                cur = h1
            if cur >= end:
                break
            k += 1
        if cur < end:
            out.append((cur, end))
    return out


def clip(spans: list[Span], lo: int, hi: int) -> list[Span]:
    """The parts of ``spans`` inside ``[lo, hi)``."""
    out: list[Span] = []
    for start, end in spans:
        if end <= lo:
            continue
        if start >= hi:
            break
        out.append((max(start, lo), min(end, hi)))
    return out


def covers(spans: list[Span], start: int, end: int) -> bool:
    """True if one range of ``spans`` contains all of ``[start, end)``."""
    return any(s <= start and end <= e for s, e in spans)


def overlaps(spans: Iterable[Span], start: int, end: int) -> bool:
    """True if any range meets ``[start, end)`` in more than a point (touching is not overlapping)."""
    return any(s < end and start < e for s, e in spans)
