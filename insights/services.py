"""Insights services: run a routing simulation (reads only; writes nothing) and record page visits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from booking.models import MeetingType
from insights.models import PageVisit
from insights.selectors import candidate_policy, current_policy, replay_bookings, replay_leads
from insights.simulator import simulate, synthetic_leads
from routing.models import Pool
from routing.selectors import meeting_spec


@dataclass(frozen=True)
class Synthetic:
    rate_per_hour: float
    hours: float
    seed: int = 1
    meeting_type: MeetingType | None = None


def simulation_run(
    *,
    pool: Pool,
    start: datetime,
    end: datetime | None = None,
    candidate_text: str | None = None,
    candidate_filename: str = "candidate.yaml",
    synthetic: Synthetic | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_leads: int | None = None,
) -> dict[str, Any]:
    """Replay ``pool``'s bookings decided in ``[start, end)`` — or a synthetic stream from ``start`` — under
    the current policy and, if ``candidate_text`` is given, a candidate; returns both summaries.

    Raises ``ConfigInvalid`` for a bad candidate file, ``ValueError`` for bad stream parameters or a stream
    of more than ``max_leads`` leads."""
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise ValueError("start and end must be timezone-aware")
    if synthetic is not None:
        from datetime import timedelta

        end = start + timedelta(hours=synthetic.hours)
        meeting_type = synthetic.meeting_type or pool.meeting_types.filter(active=True).order_by("pk").first()
        if meeting_type is None:
            raise ValueError(f"pool {pool.slug} has no active meeting type to simulate")
        leads = synthetic_leads(
            meeting_spec(meeting_type),
            start=start,
            hours=synthetic.hours,
            rate_per_hour=synthetic.rate_per_hour,
            seed=synthetic.seed,
        )
        replayed = []
    else:
        if end is None or end <= start:
            raise ValueError("end must be after start")
        replayed = replay_bookings(pool, start=start, end=end)
        leads = replay_leads(replayed, end=end)
    if max_leads is not None and len(leads) > max_leads:
        raise ValueError(
            f"{len(leads):,} leads in this stream; at most {max_leads:,} here "
            "(`manage.py simulate_routing` runs longer ones)."
        )
    replay = synthetic is None
    policies = [
        current_policy(pool, start=start, end=end, replayed=replayed, as_synced=replay, from_joined=replay)
    ]
    if candidate_text is not None:
        policies.append(candidate_policy(policies[0], pool, text=candidate_text, filename=candidate_filename))
    total = len(leads) * len(policies)
    results = []
    for n, policy in enumerate(policies):
        offset = n * len(leads)
        tick = (lambda i, o=offset: progress(o + i, total)) if progress else None
        outcome = simulate(policy, leads, progress=tick)
        results.append(outcome.summary())
    return {
        "pool": pool.slug,
        "mode": "synthetic" if synthetic else "replay",
        "start": start,
        "end": end,
        "leads": len(leads),
        "results": results,
    }


def page_visit_record(
    *, meeting_type: MeetingType, visitor: str, utm: dict | None, at: datetime
) -> PageVisit:
    return PageVisit.objects.create(
        meeting_type=meeting_type,
        pool_id=meeting_type.pool_id,
        visitor=(visitor or "")[:64],
        utm=utm or {},
        at=at,
    )
