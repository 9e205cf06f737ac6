"""``epoch_spans`` caches by the identity of the interval tuple: a hit only for the very same tuple."""

from __future__ import annotations

import datetime as dt

from routing.core import Interval, availability
from routing.core.availability import epoch_spans

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def busy(n: int, shift: int = 0) -> tuple[Interval, ...]:
    return tuple(
        Interval(T0 + dt.timedelta(hours=2 * i + shift), T0 + dt.timedelta(hours=2 * i + 1 + shift))
        for i in range(n)
    )


def test_same_tuple_hits_and_another_tuple_does_not():
    availability.spans_cache_clear()
    first = busy(12)
    spans = epoch_spans(first)
    assert epoch_spans(first) is spans  # cached
    moved = busy(12, shift=1)  # new tuple: never the old answer, even if its id were reused
    assert epoch_spans(moved)[0][0] == spans[0][0] + 3600
    equal = busy(12)
    assert epoch_spans(equal) == spans and epoch_spans(equal) is not spans


def test_small_tuples_are_not_cached_and_the_cache_is_bounded(monkeypatch):
    availability.spans_cache_clear()
    epoch_spans(busy(3))
    assert availability._SPANS == {}
    monkeypatch.setattr(availability, "_SPANS_MAX_INTERVALS", 40)  # room for four tuples of ten
    kept = [busy(10, shift=k) for k in range(10)]
    for intervals in kept:
        epoch_spans(intervals)
        assert 1 <= len(availability._SPANS) <= 4
        assert sum(len(t) for t, _ in availability._SPANS.values()) <= 40
