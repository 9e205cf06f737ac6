"""Performance weighting, softened (pure Python, no Django).

Given each member's base weight and booking outcomes over a trailing window (``n`` outcomes, ``s`` of them
successes: qualified or won), ``factors`` returns a multiplier per member:

1. team rate ``p = Σs / Σn`` (no outcomes at all: every factor is 1);
2. each rate is shrunk toward the team rate by ``prior`` pseudo-outcomes: ``r = (s + prior·p)/(n + prior)``
   — a new member (``n = 0``) starts exactly at the team rate, factor 1;
3. the raw factor ``r / p`` is softened by ``strength`` ∈ [0, 1]: ``1 + strength·(r/p − 1)`` (0: plain
   fairness, 1: full proportional weighting);
4. the floor ``floor`` ∈ [0, 1]: with the weighted fairness ledger a member's long-run share is
   ``w·f / Σ w·f``; factors below ``floor × (weighted mean factor)`` are raised to it (solved exactly, members
   added to the floored set until stable), so no share falls below ``floor ×`` the member's fair share
   ``w / Σ w``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    weight: float  # base weight (> 0)
    outcomes: int = 0  # n
    successes: int = 0  # s ≤ n


def factors(
    records: Mapping[int, Record], *, strength: float, floor: float, prior: float = 10.0
) -> dict[int, float]:
    if not records:
        return {}
    strength, floor, prior = min(max(strength, 0.0), 1.0), min(max(floor, 0.0), 1.0), max(prior, 0.0)
    total_n = sum(r.outcomes for r in records.values())
    total_s = sum(min(r.successes, r.outcomes) for r in records.values())
    if total_n == 0 or total_s == 0 or floor >= 1.0:
        return {key: 1.0 for key in records}
    team = total_s / total_n
    raw = {}
    for key, r in records.items():
        n, s = r.outcomes, min(r.successes, r.outcomes)
        rate = (s + prior * team) / (n + prior) if n + prior > 0 else team
        raw[key] = max(1.0 + strength * (rate / team - 1.0), 0.0)
    weight = {key: r.weight for key, r in records.items()}
    total_w = sum(weight.values())
    floored: set[int] = set()
    while True:
        free_mass = sum(weight[k] * raw[k] for k in records if k not in floored)
        floored_w = sum(weight[k] for k in floored)
        mean = free_mass / (total_w - floor * floored_w)
        low = {k for k in records if k not in floored and raw[k] < floor * mean}
        if not low:
            break
        floored |= low
    out = {key: (floor * mean if key in floored else raw[key]) for key in records}
    if all(v == 0 for v in out.values()):
        return {key: 1.0 for key in records}
    return out


def shares(weights: Mapping[int, float]) -> dict[int, float]:
    total = sum(weights.values())
    return {key: w / total for key, w in weights.items()}
