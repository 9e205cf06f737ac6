"""Small statistics used by the simulator and the dashboard."""

from __future__ import annotations

import math
from collections.abc import Sequence


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values (0 = even, → 1 = one takes all); 0.0 if empty or all zero."""
    xs = sorted(float(v) for v in values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((i + 1) * x for i, x in enumerate(xs))
    return (2 * weighted) / (n * total) - (n + 1) / n


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (the numpy default); None when there are no values."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
