"""``interval`` makes the same ``Interval`` as its constructor (the loaders' fast path)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.core import Interval, interval

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
instants = st.integers(min_value=0, max_value=100 * 366 * 86400).map(lambda s: EPOCH + timedelta(seconds=s))


@given(instants, st.integers(min_value=1, max_value=10**7))
def test_interval_is_the_constructors_interval(start, seconds):
    end = start + timedelta(seconds=seconds)
    made, built = interval(start, end), Interval(start, end)
    assert type(made) is Interval
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert (made.start, made.end) == (start, end)
    assert dataclasses.astuple(made) == (start, end)


def test_interval_is_frozen():
    made = interval(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.start = datetime(2026, 1, 3, tzinfo=UTC)
