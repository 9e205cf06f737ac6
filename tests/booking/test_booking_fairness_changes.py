"""Admins changing a live pool's fairness settings with a fairness ledger in place: the fairness period, a
member's weight and a pool's strategy (into or out of ``group``) apply from now on: every member keeps its
standing (nobody suddenly gets every booking, or none; docs/config.md)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine
from django.urls import reverse

from booking.models import Booking, MeetingType
from booking.services import booking_create
from routing.models import Pool, PoolMember
from tests.booking.booking_factories import bulk_bookings, make_meeting_type, make_pool, make_rep
from tests.foundation.test_foundation_admin_inputs import form_data

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 2 March 2026


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def reps(*names):
    return [make_rep(name, tz="UTC", days=range(7)) for name in names]


def save_page(client, url: str, **changes) -> None:
    """Post an admin change page as it is rendered, with ``changes`` (field name → posted value)."""
    data = form_data(client.get(url))
    data.update(changes)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].errors


def pool_page(pool: Pool) -> str:
    return reverse("admin:routing_pool_change", args=[pool.pk])


def hosts_of_next(meeting_type_id: int, n: int, day: dt.datetime | None = None) -> Counter:
    """Book ``n`` half-hour slots one after another from ``day`` (default 3 March 09:00 UTC; the meeting
    type read afresh, as a request would) and count who hosts them, by name."""
    day = day or at(2026, 3, 3, 9)
    meeting_type = MeetingType.objects.select_related("pool").get(pk=meeting_type_id)
    got: Counter = Counter()
    for i in range(n):
        body = booking_create(
            meeting_type=meeting_type,
            start=day + dt.timedelta(minutes=30 * i),
            name="Pat",
            email=f"pat{i}@example.org",
            timezone="UTC",
            now=NOW,
        ).body
        got.update(h.rep.name for h in Booking.objects.get(pk=body["id"]).hosts.filter(active=True))
    return got


# --- the fairness period changed with a member who joined at the mean of the old one


@pytest.mark.parametrize("before,after", [("never", "month"), ("month", "never")])
def test_changing_the_fairness_period_leaves_a_recent_joiner_level_with_the_others(
    admin_client, before, after
):
    """Ana and Ben shared 20 meetings over January and February; Cy is added on the pool page on Sunday
    1 March and joins at the mean load of the pool's period then; Ana and Ben host one more each early on
    2 March, when the admin changes the period.

    ``never`` → ``month``: Cy's head start (+10, the all-time mean) was computed for ``never``, but recorded
    in the new period it is not spent (docs/config.md: "The head start is spent with the fairness period it
    was computed for"): Cy stands at 10 against the others' 1 and gets none of the next 6 bookings (none of
    the next 18). ``month`` → ``never``: Cy joined at March's mean (0) and now stands at 0 against the
    others' all-time 11: flooded with every booking until caught up. Nothing re-levels the members when
    the period changes (``PoolAdmin`` and the config import's ``_apply_pool`` save the new period only)."""
    ana, ben, cy = reps("Ana", "Ben", "Cy")
    pool = make_pool("first_available", [ana, ben], fairness_period=before)
    meeting_type = make_meeting_type(pool, horizon_days=60)
    bulk_bookings(
        meeting_type, [ana, ben], [at(2026, 1, 10, 10) + dt.timedelta(days=2 * i) for i in range(20)]
    )
    with time_machine.travel(at(2026, 3, 1, 12), tick=False):  # Cy added on the pool page
        url = pool_page(pool)
        data = form_data(admin_client.get(url))
        row = {"pool": pool.pk, "rep": cy.pk, "rank": 2, "weight": 1, "active": "on", "adjustment": 0}
        data.update({f"members-2-{key}": value for key, value in row.items()})
        data["members-TOTAL_FORMS"] = 3
        assert admin_client.post(url, data).status_code == 302
    bulk_bookings(meeting_type, [ana, ben], [at(2026, 3, 2, 1), at(2026, 3, 2, 2)])  # after Cy joined
    with time_machine.travel(NOW, tick=False):
        save_page(admin_client, pool_page(pool), fairness_period=after)
        got = hosts_of_next(meeting_type.pk, 6)
    assert all(1 <= got[name] <= 3 for name in ("Ana", "Ben", "Cy")), (
        f"after the period changed from {before} to {after}, the next 6 bookings went {dict(got)}"
    )


# --- a member's weight changed in the middle of a period


@pytest.mark.parametrize("weight", ["2", "0.5"])
def test_changing_a_members_weight_neither_hands_them_a_run_nor_freezes_them_out(admin_client, weight):
    """Ana, Ben and Cy have 4 meetings each this month. The admin changes Cy's weight on the member's page
    (2: "a weight-2 member gets twice the bookings", docs/config.md; 0.5: half). The weight divides the whole
    period's count at once: raised, Cy's load drops to 2 and Cy takes the next 4 bookings in a row (Ben none
    of 5); lowered, Cy's load jumps to 8 and Cy gets none of the next 8. A weight should apply from the
    change on (the member's load kept, as a join keeps it at the mean: ``routing.admin._prepare_member``
    records nothing for a weight change), not re-weigh the bookings already made."""
    ana, ben, cy = reps("Ana", "Ben", "Cy")
    pool = make_pool("first_available", [ana, ben, cy], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    bulk_bookings(
        meeting_type, [ana, ben, cy], [at(2026, 3, 1, 8) + dt.timedelta(hours=i) for i in range(12)]
    )
    member = PoolMember.objects.get(pool=pool, rep=cy)
    with time_machine.travel(NOW, tick=False):
        save_page(admin_client, reverse("admin:routing_poolmember_change", args=[member.pk]), weight=weight)
        assert PoolMember.objects.get(pk=member.pk).weight == float(weight)
        got = hosts_of_next(meeting_type.pk, 5)
    assert all(got[name] >= 1 for name in ("Ana", "Ben", "Cy")), (
        f"after Cy's weight became {weight}, the next 5 bookings went {dict(got)}"
    )


# --- a group pool made a round-robin pool


def test_making_a_group_pool_a_round_robin_pool_does_not_freeze_out_its_sales_engineer(admin_client):
    """A group pool of three account executives and one sales engineer: six meetings, each AE hosted 2 and
    the SE 6, the fair split (fairness is per role in a group pool). The admin makes it a ``round_robin``
    pool on its page. The per-role counts now stand in one queue: the SE is "4 ahead" and gets none of the
    next 12 bookings. The admin re-levels a group member given another role (it "took every seat of the
    new role until caught up", ``routing.admin._prepare_member``), but not the members of a pool whose
    queues the strategy change merges."""
    ann, amy, abe, sam = reps("Ann", "Amy", "Abe", "Sam")
    pool = make_pool("group", [ann, amy, abe, sam], roles=["ae", "ae", "ae", "se"], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    with time_machine.travel(NOW, tick=False):
        hosts_of_next(meeting_type.pk, 6, day=at(2026, 3, 3, 9))
        save_page(admin_client, pool_page(pool), strategy="round_robin")
        got = hosts_of_next(meeting_type.pk, 8, day=at(2026, 3, 4, 9))
    assert got["Sam"] >= 1, f"after the switch to round robin, the next 8 bookings went {dict(got)}"


# --- the meeting type changed between a booking and the retry of its request
