"""Fairness over time through the database-backed services: joins, removals, roles, rolling periods and the
ledger's audit trail, and the dashboard's shares of a group pool. Each test failed before its fix."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
import time_machine

from booking.models import Booking
from booking.services import booking_cancel, booking_create, booking_reassign
from routing.ledger import member_count, pool_ledger
from routing.models import LedgerEntry, PoolMember
from routing.services import pool_member_join
from tests.booking.booking_factories import bulk_bookings, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def book(meeting_type, start: dt.datetime, now: dt.datetime) -> tuple[Booking, str]:
    """A booking through the real service; returns it and its manage token."""
    body = booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email="pat@example.org", timezone="UTC", now=now
    ).body
    return Booking.objects.get(pk=body["id"]), body["manage_token"]


def hosts_of(booking: Booking) -> list[int]:
    return sorted(h.rep_id for h in booking.hosts.filter(active=True))


def join(pool, rep, when: dt.datetime, **fields) -> PoolMember:
    """A member added and joined (``pool_member_join``) as the admin and the config import do, at ``when``
    (``joined_at`` and the ledger entry's ``created_at`` are the wall clock, so the clock is moved there)."""
    with time_machine.travel(when, tick=False):
        member = PoolMember.objects.create(pool=pool, rep=rep, **fields)
        pool_member_join(member, now=when)
    return member


def counts(pool, now: dt.datetime) -> dict[int, float]:
    members = list(PoolMember.objects.filter(pool=pool))
    ledger = pool_ledger(pool, [m.rep_id for m in members], now=now)
    return {m.rep_id: member_count(m, ledger) for m in members}


# --------------------------------------------------------------------------------------------------------
# 1. A member removed from a pool and added back carries a permanent head start.
# --------------------------------------------------------------------------------------------------------


def test_member_removed_and_re_added_gets_a_permanent_head_start():
    """An admin (or a config file, which deletes the members it no longer lists) removes Cy from a
    month-period pool and adds Cy back later. The re-added Cy joins at the mean load, as promised, but from
    the next month on Cy's count is permanently 4 below what Cy actually hosted, and Cy is handed a run of
    extra bookings at the start of every month, for ever.

    Was: ``routing.ledger.member_count`` subtracts every "joined" delta of the (pool, rep) recorded before
    the period started (``ENTRIES_SQL``/``JOINED`` in routing/ledger.py), but the adjustment those deltas
    were added to lived on the deleted ``PoolMember`` row and is gone. The re-added member's new adjustment
    does not contain the old delta, yet the old delta keeps being subtracted."""
    ana, ben, cy = (make_rep(n, tz="UTC", days=range(7)) for n in ("Ana", "Ben", "Cy"))
    pool = make_pool("first_available", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    # January: Ana and Ben host 4 bookings each
    starts = [at(2026, 1, 5 + i, 10) for i in range(8)]
    bulk_bookings(meeting_type, [ana, ben], starts)

    # 10 Jan: Cy joins at the mean load (4); 20 Jan: removed; 25 Jan: added back (joins at the mean again)
    join(pool, cy, at(2026, 1, 10, 12)).delete()
    join(pool, cy, at(2026, 1, 25, 12))
    assert counts(pool, at(2026, 1, 26))[cy.pk] == pytest.approx(4.0)  # at the mean: fine so far

    # March: a new fairness period, nobody has hosted anything in it: everybody should stand at 0
    march = at(2026, 3, 2, 6)
    standing = counts(pool, march)
    assert standing == {ana.pk: 0, ben.pk: 0, cy.pk: 0}, (
        f"in a fresh period the re-added rep stands at {standing[cy.pk]} (a head start of "
        f"{-standing[cy.pk]} bookings), the others at 0"
    )


def test_re_added_member_takes_most_bookings_of_a_fresh_period():
    """The same as seen by the reps: in a month where nobody hosted anything before, six bookings of a
    three-rep first_available pool should be shared 2/2/2; the rep that was once removed and added back
    gets 4 of the 6 (as above, was: routing/ledger.py subtracts "joined" deltas of a deleted membership)."""
    ana, ben, cy = (make_rep(n, tz="UTC", days=range(7)) for n in ("Ana", "Ben", "Cy"))
    pool = make_pool("first_available", [ana, ben], fairness_period="month")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    bulk_bookings(meeting_type, [ana, ben], [at(2026, 1, 5 + i, 10) for i in range(8)])
    join(pool, cy, at(2026, 1, 10, 12)).delete()
    join(pool, cy, at(2026, 1, 25, 12))

    now = at(2026, 3, 2, 6)
    got = Counter()
    for i in range(6):
        booking, _ = book(meeting_type, at(2026, 3, 3, 9) + dt.timedelta(minutes=30 * i), now)
        got.update(hosts_of(booking))
    assert got == {ana.pk: 2, ben.pk: 2, cy.pk: 2}, {r.name: got[r.pk] for r in (ana, ben, cy)}


# --------------------------------------------------------------------------------------------------------
# 2. Group pools: a joiner starts at the mean of ALL members, not of its role.
# --------------------------------------------------------------------------------------------------------


def group_after_twelve_meetings():
    """A group pool of three AEs and one SE (S1) after 12 meetings (S1 12, each AE 4); S2 not in it yet."""
    a1, a2, a3, s1, s2 = (make_rep(n, tz="UTC", days=range(7)) for n in ("A1", "A2", "A3", "S1", "S2"))
    pool = make_pool("group", [a1, a2, a3, s1], roles=["ae", "ae", "ae", "se"], fairness_period="never")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    now = at(2026, 3, 2, 6)
    for i in range(12):
        book(meeting_type, at(2026, 3, 3, 9) + dt.timedelta(minutes=30 * i), now)
    return pool, meeting_type, s1, s2, now


def test_group_pool_joiner_starts_at_its_roles_mean_not_the_whole_pools():
    """A group pool with three account executives and one sales engineer: every meeting takes one AE and the
    SE, so after 12 meetings the SE has hosted 12 and each AE 4. A second SE is added; it should start level
    with the other SE (fairness is per role), so the next SE seats alternate. Instead it starts at the mean
    of all four members ((4+4+4+12)/4 = 6), six seats behind the other SE, and takes the next six SE seats
    in a row: exactly the catch-up flood joining at the mean is meant to prevent (docs/config.md).

    Was: ``routing.services.pool_member_join`` averages the loads of every other active member of the
    pool, whatever their role (routing/services.py, the ``loads`` list), while the group strategy orders
    members within their role only (routing/core/strategies/group.py)."""
    pool, meeting_type, s1, s2, now = group_after_twelve_meetings()
    assert counts(pool, now)[s1.pk] == 12

    join(pool, s2, now, role="se")
    standing = counts(pool, now)
    assert standing[s2.pk] == pytest.approx(standing[s1.pk]), (
        f"the new SE starts at {standing[s2.pk]}, the other SE stands at {standing[s1.pk]}"
    )


def test_group_pool_joiner_takes_a_run_of_seats():
    """The same as the reps see it: after the second SE joins, four more group meetings should give each
    SE two seats; the newcomer gets all four (was: routing/services.py ``pool_member_join`` averages over
    every role)."""
    pool, meeting_type, s1, s2, now = group_after_twelve_meetings()
    join(pool, s2, now, role="se")
    se = Counter()
    for i in range(4):
        booking, _ = book(meeting_type, at(2026, 3, 4, 9) + dt.timedelta(minutes=30 * i), now)
        se.update(h.rep_id for h in booking.hosts.filter(active=True, role="se"))
    assert se == {s1.pk: 2, s2.pk: 2}, {"S1": se[s1.pk], "S2": se[s2.pk]}


# --------------------------------------------------------------------------------------------------------
# 3. rolling_30d: the joiner's head start expires all at once, 30 days later.
# --------------------------------------------------------------------------------------------------------


def test_rolling_period_joiner_is_starved_then_flooded():
    """A first_available pool with a rolling 30-day period; Ana and Ben have hosted one meeting a day each
    for the last 30 days. Cy joins at the mean load (30) and from then on three meetings a day are booked.
    Fairly, Cy would get about a third of them throughout. Instead Cy gets far fewer for 30 days (Ana's and
    Ben's old meetings roll out of the window day by day, Cy's head start does not), and then, when the whole
    head start expires at once on day 30, Cy gets nearly every meeting for days: the starve-then-flood
    pattern joining at the mean load is meant to prevent (docs/config.md: "instead of being flooded with
    bookings to catch up").

    Was: routing/ledger.py subtracts a "joined" delta in full once it is older than the period start
    (``JOINED = created_at < since``); for ``rolling_30d`` the counts it stood for decay continuously, so the
    head start should decay with them (e.g. expire in step with the bookings the mean was computed from)."""
    ana, ben, cy = (make_rep(n, tz="UTC", days=range(7)) for n in ("Ana", "Ben", "Cy"))
    pool = make_pool("first_available", [ana, ben], fairness_period="rolling_30d")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    day0 = at(2026, 3, 2, 6)
    # the last 30 days: one meeting a day each, assigned when held
    history = [day0 - dt.timedelta(days=d) + dt.timedelta(hours=4) for d in range(30, 0, -1)]
    bulk_bookings(meeting_type, [ana], history)
    bulk_bookings(meeting_type, [ben], [s + dt.timedelta(minutes=30) for s in history])
    join(pool, cy, day0)

    by_day: list[Counter] = []
    for day in range(40):
        now = day0 + dt.timedelta(days=day)
        got = Counter()
        for k in range(3):
            booking, _ = book(meeting_type, now + dt.timedelta(hours=4, minutes=30 * k), now)
            got.update(hosts_of(booking))
        by_day.append(got)
    first = sum(c[cy.pk] for c in by_day[:30])
    after = sum(c[cy.pk] for c in by_day[30:40])
    # fair: ~30 of the first 90 and ~10 of the next 30; allow a wide margin either way
    assert first >= 20 and after <= 20, (
        f"Cy got {first} of the 90 meetings of days 0-29 and {after} of the 30 meetings of days 30-39"
    )


# --------------------------------------------------------------------------------------------------------
# 4. The ledger (the audit trail) credits a cancellation to a rep who never held the credit.
# --------------------------------------------------------------------------------------------------------


def test_cancel_after_account_owner_override_credits_the_wrong_rep_in_the_ledger():
    """A booking goes to Ana; an admin reassigns it to Ben as the account owner (a non-counting override:
    Ana keeps the credit, Ben is not charged). The prospect cancels (the pool does not count cancellations).
    The standing is right (Ana back to 0, Ben 0), but the ledger, which the admin reads to explain every
    standing ("so the ledger always explains the standing", docs/config.md), now says Ana +1 and Ben -1:
    the "credited back" entry went to Ben, who was never charged, and Ana, who lost the credit, has no entry.

    Was: ``booking.services.manage.booking_cancel`` passes the active hosts to ``ledger_released``
    (booking/services/manage.py, ``rep_ids=[h.rep_id for h in hosts]``) instead of the credit holders
    (``_credit_holder``, as the reschedule and the reassignment do). ``booking_status_apply`` (no-show,
    booking/services/outcomes.py) has the same mistake."""
    ana, ben = make_rep("Ana", tz="UTC", days=range(7)), make_rep("Ben", tz="UTC", days=range(7))
    pool = make_pool("ranked", [ana, ben], fairness_period="never")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    now = at(2026, 3, 2, 6)
    with time_machine.travel(now, tick=False):
        booking, token = book(meeting_type, at(2026, 3, 3, 10), now)
        assert hosts_of(booking) == [ana.pk]
        ben_member = PoolMember.objects.get(pool=pool, rep=ben)
        booking_reassign(booking_id=booking.pk, to_member_id=ben_member.pk, code="account_owner", now=now)
        booking_cancel(token=token, now=now)
    standing = counts(pool, now)
    assert standing == {ana.pk: 0, ben.pk: 0}
    ledger = Counter()
    for entry in LedgerEntry.objects.filter(pool=pool):
        ledger[entry.rep_id] += entry.delta
    assert {ana.pk: ledger[ana.pk], ben.pk: ledger[ben.pk]} == standing, (
        f"ledger sums: Ana {ledger[ana.pk]:+g}, Ben {ledger[ben.pk]:+g}; standing: Ana 0, Ben 0"
    )


# --------------------------------------------------------------------------------------------------------
# 5. A member moved to another pool in the admin carries its old pool's head start into the new one.
# --------------------------------------------------------------------------------------------------------


def test_member_moved_to_another_pool_keeps_a_permanent_offset_there(admin_client):
    """Cy joined pool P1 at its mean load (+4). An admin then moves Cy's membership to pool P2 on the member's
    own admin page (documented: it joins P2 at P2's mean load). In P2 Cy does start level with the others,
    but from the next fairness period on Cy stands 4 bookings ABOVE what Cy hosted there, so Cy is passed
    over for the first 4 bookings of every month, for ever.

    Was: the member row keeps P1's ``adjustment`` (+4) when its pool changes; ``pool_member_join`` offsets
    it with a "joined" delta of -4 recorded in P2, and from the next period on routing/ledger.py subtracts
    that expired delta (adding 4) while the carried +4 stays in the adjustment. The move should start the
    membership afresh (reset the adjustment, or treat it as remove + add)."""
    from django.urls import reverse

    ana, ben, cy = (make_rep(n, tz="UTC", days=range(7)) for n in ("Ana", "Ben", "Cy"))
    dee, eve = make_rep("Dee", tz="UTC", days=range(7)), make_rep("Eve", tz="UTC", days=range(7))
    p1 = make_pool("first_available", [ana, ben], fairness_period="month")
    p2 = make_pool("first_available", [dee, eve], fairness_period="month")
    bulk_bookings(
        make_meeting_type(p1, horizon_days=60), [ana, ben], [at(2026, 1, 5 + i, 10) for i in range(8)]
    )
    member = join(p1, cy, at(2026, 1, 10, 12))
    member.refresh_from_db()
    assert member.adjustment == pytest.approx(4.0)

    with time_machine.travel(at(2026, 1, 20, 12), tick=False):
        response = admin_client.post(
            reverse("admin:routing_poolmember_change", args=[member.pk]),
            {
                "rep": cy.pk,
                "pool": p2.pk,
                "rank": 0,
                "weight": 1.0,
                "role": "",
                "daily_cap": "",
                "active": "on",
                "adjustment": member.adjustment,
            },
        )
    assert response.status_code == 302
    assert counts(p2, at(2026, 1, 21))[cy.pk] == pytest.approx(0.0)  # joined P2 at its mean: fine

    standing = counts(p2, at(2026, 3, 2, 6))  # a fresh period in which nobody hosted anything
    assert standing == {dee.pk: 0, eve.pk: 0, cy.pk: 0}, (
        f"in a fresh period of P2 the moved rep stands at {standing[cy.pk]}, the others at 0"
    )


# --------------------------------------------------------------------------------------------------------
# 6. The KPI dashboard flags a perfectly fair group pool as unfair.
# --------------------------------------------------------------------------------------------------------


def test_dashboard_flags_a_fair_group_pool_as_unfair():
    """A group pool of three account executives and one sales engineer, all weight 1: twelve meetings, each
    AE hosted 4 and the SE 12, exactly the fair split (each meeting needs one AE and one SE; fairness is per
    role). The KPI dashboard (/insights/) shows the SE at share 0.5 against a target of 0.25 and every AE at
    0.17 against 0.25, and highlights all four rows as off target, so an admin is told a fair pool is unfair
    (and would "fix" it by reweighting).

    Was: ``insights.kpis.rep_rows`` takes the target share as weight / total weight of ALL active members
    (insights/kpis.py, ``weights``/``total_weight``), and the share over all host assignments, whatever the
    role; in a group pool both should be per role (weight / total weight of the rep's role, share of that
    role's seats). ``insights.sim_types.target_shares`` (the simulator's target) has the same mistake."""
    from insights.kpis import rep_rows

    a1, a2, a3, s1 = (make_rep(n, tz="UTC", days=range(7)) for n in ("A1", "A2", "A3", "S1"))
    pool = make_pool("group", [a1, a2, a3, s1], roles=["ae", "ae", "ae", "se"], fairness_period="never")
    meeting_type = make_meeting_type(pool, horizon_days=60)
    now = at(2026, 3, 2, 6)
    with time_machine.travel(now, tick=False):
        for i in range(12):
            book(meeting_type, at(2026, 3, 3, 9) + dt.timedelta(minutes=30 * i), now)
    rows = {r["name"]: r for r in rep_rows(pool, at(2026, 3, 1), at(2026, 3, 3))["rows"]}
    assert [rows[n]["bookings"] for n in ("A1", "A2", "A3", "S1")] == [4, 4, 4, 12]  # the fair split
    flagged = {
        n: (round(r["share"], 3), round(r["target_share"], 3)) for n, r in rows.items() if r["highlight"]
    }
    assert not flagged, f"rows flagged as off target (share, target): {flagged}"
