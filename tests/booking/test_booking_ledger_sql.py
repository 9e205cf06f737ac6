"""``routing.ledger.pool_ledger`` runs two aggregate queries in plain SQL (they run on every slot page and
booking). This holds them to an ORM oracle — the same aggregates written with the ORM — over a varied
history, for every fairness period and counting rule, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest
from django.db.models import Count, F, Max, OuterRef, Q, Subquery, Sum

from booking.models import Booking, BookingHost
from routing.core.ledger import head_start_expired
from routing.credit import credit_holder
from routing.ledger import (
    OverrideHost,
    _override_corrections,
    counted_statuses,
    fairness_period_start,
    override_hosts,
    pool_ledger,
)
from routing.models import LedgerEntry, Pool, PoolMember
from routing.services import ledger_taken_back
from tests.booking.booking_factories import NOW, bulk_bookings, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db
Kind = LedgerEntry.Kind


def oracle(pool: Pool, rep_ids: list[int], *, now: dt.datetime):
    """The ledger's figures with the ORM: (raw counts, expired "joined" deltas, last assignments)."""
    start = fairness_period_start(pool, now=now)
    counted = Q(booking__status__in=counted_statuses(pool))
    if start is not None:
        counted &= Q(assigned_at__gte=start)
    raw, last = {}, {}
    for row in (
        BookingHost.objects.filter(booking__pool_id=pool.pk, rep_id__in=rep_ids)
        .exclude(released=BookingHost.Released.REASSIGNED)
        .values("rep_id")
        .annotate(n=Count("id", filter=counted), last=Max("assigned_at"))
    ):
        raw[row["rep_id"]] = row["n"]
        if row["last"] is not None:
            last[row["rep_id"]] = row["last"]
    instant = Q(kind=Kind.ASSIGNED, booking__isnull=True)
    taken_back = Q(kind=Kind.REASSIGNED_FROM, booking__isnull=True)  # a lead routed by hand elsewhere
    overrides = Q(kind__in=(Kind.REASSIGNED_FROM, Kind.REASSIGNED_TO), delta=0.0)
    wanted = instant | taken_back | overrides
    sums = {"instant": Sum("delta", filter=instant | taken_back), "last": Max("created_at", filter=instant)}
    sums["overrides"] = Count("id", filter=overrides)
    if start is not None:
        sums["instant"] = Sum("delta", filter=(instant | taken_back) & Q(created_at__gte=start))
    expired, with_overrides = {}, False
    # "joined" deltas of the current membership, spent as ``head_start_expired`` says
    joined_at = PoolMember.objects.filter(pool_id=OuterRef("pool_id"), rep_id=OuterRef("rep_id"))
    for rep_id in rep_ids:
        current = (
            LedgerEntry.objects.filter(pool_id=pool.pk, rep_id=rep_id, kind=Kind.JOINED)
            .annotate(since=Subquery(joined_at.values("joined_at")[:1]))
            .filter(created_at__gte=F("since"))
        )
        rolling = pool.fairness_period == Pool.FairnessPeriod.ROLLING_30D
        spent = head_start_expired(
            current.values_list("created_at", "delta"), start=start, now=now, rolling=rolling
        )
        if spent:
            expired[rep_id] = spent
    for row in (
        LedgerEntry.objects.filter(Q(pool_id=pool.pk, rep_id__in=rep_ids) & wanted)
        .values("rep_id")
        .annotate(**sums)
    ):
        rep_id = row["rep_id"]
        with_overrides = with_overrides or bool(row["overrides"])
        if row["instant"]:
            raw[rep_id] = raw.get(rep_id, 0) + row["instant"]
        if row["last"] is not None and (rep_id not in last or row["last"] > last[rep_id]):
            last[rep_id] = row["last"]
    if with_overrides:
        for rep_id, change in _override_corrections(pool, rep_ids, start=start).items():
            raw[rep_id] = raw.get(rep_id, 0) + change
    return raw, expired, last


def history(seed: int):
    """A pool of four reps with 60 bookings over ~90 days (every status, reassigned hosts, non-counting
    overrides), instant assignments (some taken back by a routing by hand) and "joined" deltas before and
    after period starts, and a rep of another pool whose rows must not count; some statuses and a pool
    changed after the host rows exist."""
    rng = random.Random(seed)
    reps = [make_rep() for _ in range(4)]
    pool = make_pool("first_available", reps)
    other = make_pool("first_available", reps[:1])
    meeting_type = make_meeting_type(pool)
    statuses = [s.value for s in Booking.Status]
    for i in range(60):
        at = NOW - dt.timedelta(hours=rng.randrange(0, 24 * 90))
        start = NOW - dt.timedelta(days=100) + dt.timedelta(hours=2 * i)
        booking = Booking.objects.create(
            meeting_type=meeting_type,
            pool=other if i % 17 == 0 else pool,
            start=start,
            end=start + dt.timedelta(minutes=30),
            status=rng.choice(statuses),
            prospect_name="P",
            prospect_email="p@example.org",
            prospect_timezone="UTC",
            manage_token_hash=f"{seed:04d}{i:060d}",
        )
        first, second = rng.sample(reps, 2)
        moved = rng.random() < 0.25
        host = dict(booking=booking, blocked_start=start, blocked_end=booking.end, assigned_at=at)
        BookingHost.objects.create(
            rep=first, active=not moved, released=BookingHost.Released.REASSIGNED if moved else "", **host
        )
        if moved:
            BookingHost.objects.create(
                rep=second, active=True, **{**host, "assigned_at": at + dt.timedelta(hours=1)}
            )
            delta = 0.0 if rng.random() < 0.5 else 1.0  # a non-counting override, or a counting one
            LedgerEntry.objects.create(
                pool=pool, rep=first, booking=booking, kind=Kind.REASSIGNED_FROM, delta=-delta
            )
            LedgerEntry.objects.create(
                pool=pool, rep=second, booking=booking, kind=Kind.REASSIGNED_TO, delta=delta
            )
            moved_at = (at + dt.timedelta(hours=1)).isoformat()  # as ``booking_reassign`` records it
            move = {
                "at": moved_at,
                "action": "reassigned",
                "from": first.pk,
                "to": second.pk,
                "counts": delta > 0,
            }
            Booking.objects.filter(pk=booking.pk).update(decision={"history": [move]})
    # Statuses changed after the host rows exist, by each kind of write, and a booking moved to the other
    # pool: the host rows' copies (``booking.triggers``) must follow.
    made = list(Booking.objects.filter(meeting_type=meeting_type).order_by("pk"))
    for j, booking in enumerate(rng.sample(made, 20)):
        booking.status = rng.choice(statuses)
        if j % 3 == 0:
            booking.save()
        elif j % 3 == 1:
            Booking.objects.filter(pk=booking.pk).update(status=booking.status)
        else:
            Booking.objects.bulk_update([booking], ["status"])
    moved_away = rng.choice([b for b in made if b.pool_id == pool.pk])
    Booking.objects.filter(pk=moved_away.pk).update(pool=other)
    # the members joined 60 days ago: "joined" deltas before that belong to an earlier membership
    PoolMember.objects.filter(pool=pool).update(joined_at=NOW - dt.timedelta(days=60))
    for _ in range(25):
        kind = rng.choice([Kind.ASSIGNED, Kind.JOINED, Kind.ADJUSTED, Kind.CREDITED])
        entry = LedgerEntry.objects.create(
            pool=pool, rep=rng.choice(reps), kind=kind, delta=rng.choice([1.0, 2.5])
        )
        LedgerEntry.objects.filter(pk=entry.pk).update(
            created_at=NOW - dt.timedelta(hours=rng.randrange(0, 24 * 90))
        )
        if kind == Kind.ASSIGNED and rng.random() < 0.4:  # the lead was routed by hand to another rep
            entry.refresh_from_db()
            ledger_taken_back(entry, reason="routed by hand")
    return pool, [r.pk for r in reps]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_sql_ledger_matches_the_orm_oracle_for_every_period_and_rule(seed):
    pool, rep_ids = history(seed)
    checked = 0
    for period in Pool.FairnessPeriod.values:
        for cancellations, no_shows in ((False, False), (True, False), (False, True), (True, True)):
            pool.fairness_period = period
            pool.count_cancellations, pool.count_no_shows = cancellations, no_shows
            ledger = pool_ledger(pool, rep_ids, now=NOW)
            raw, expired, last = oracle(pool, rep_ids, now=NOW)
            label = (period, cancellations, no_shows)
            assert ledger.raw == pytest.approx(raw), label
            assert ledger.expired_joined == pytest.approx(expired), label
            assert ledger.last_assigned == last, label
            assert all(v.tzinfo is not None for v in ledger.last_assigned.values())
            checked += bool(raw)
    assert checked == len(Pool.FairnessPeriod.values) * 4  # the history gave every combination counts


def test_no_members_no_queries(django_assert_num_queries):
    pool = make_pool("first_available", [])
    with django_assert_num_queries(0):
        assert pool_ledger(pool, [], now=NOW).raw == {}


def override_hosts_oracle(pool: Pool, rep_ids: list[int]) -> list[OverrideHost]:
    """``override_hosts`` with the ORM: the bookings with a zero-delta move among ``rep_ids``, and those
    bookings' host rows of ``rep_ids``, each with the seats' credits its rep holds by the booking's decision
    history (``routing.credit.credit_holder``)."""
    moves = (Kind.REASSIGNED_FROM, Kind.REASSIGNED_TO)
    zero = set(
        LedgerEntry.objects.filter(pool=pool, rep_id__in=rep_ids, kind__in=moves, delta=0.0)
        .exclude(booking=None)
        .values_list("booking_id", flat=True)
    )
    reassigned = BookingHost.Released.REASSIGNED
    rows = []
    for booking in Booking.objects.filter(pk__in=zero).prefetch_related("hosts"):
        history = (booking.decision or {}).get("history") or []
        hosts = list(booking.hosts.all())
        held = Counter(credit_holder(history, h.rep_id) for h in hosts if h.released != reassigned)
        for host in hosts:
            if host.rep_id in rep_ids:
                moved = host.released == reassigned
                rows.append(
                    OverrideHost(
                        booking.pk, host.rep_id, host.assigned_at, booking.status, moved, held[host.rep_id]
                    )
                )
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_override_hosts_matches_the_orm_oracle(seed):
    """Over the varied history plus bookings moved a second time (the latest history entry decides), for
    all the members and for some of them."""
    pool, rep_ids = history(seed)
    rng = random.Random(seed)
    moves = list(LedgerEntry.objects.filter(pool=pool, kind=Kind.REASSIGNED_TO).order_by("pk"))
    for entry in rng.sample(moves, min(8, len(moves))):  # the same rep gets it again, the other way
        delta = 1.0 if entry.delta == 0.0 else 0.0
        LedgerEntry.objects.create(
            pool=pool, rep_id=entry.rep_id, booking_id=entry.booking_id, kind=Kind.REASSIGNED_TO, delta=delta
        )
        LedgerEntry.objects.create(
            pool=pool,
            rep_id=rng.choice(rep_ids),
            booking_id=entry.booking_id,
            kind=Kind.REASSIGNED_FROM,
            delta=-delta,
        )
        booking = Booking.objects.get(pk=entry.booking_id)
        moved = booking.decision["history"]
        again = {**moved[-1], "counts": delta > 0}  # the same move again, the other way
        Booking.objects.filter(pk=booking.pk).update(decision={"history": [*moved, again]})
    for reps in (rep_ids, rep_ids[:2], rep_ids[3:]):
        got = sorted(override_hosts(pool, reps), key=lambda r: (r.booking_id, r.rep_id, r.assigned_at))
        want = sorted(
            override_hosts_oracle(pool, reps), key=lambda r: (r.booking_id, r.rep_id, r.assigned_at)
        )
        assert got == want, reps
    assert override_hosts_oracle(pool, rep_ids)  # the history has non-counting overrides
    found = override_hosts_oracle(pool, rep_ids)
    assert {r.credits for r in found} == {0, 1}
    assert any(r.moved and r.credits for r in found)  # the rep the booking left kept the credit
    assert any(not r.moved and not r.credits for r in found)  # the rep it went to was not charged
    assert override_hosts(pool, []) == []


@pytest.mark.parametrize("at_midnight", [False, True], ids=["now", "just-after-midnight"])
def test_host_rows_at_every_period_edge_count_as_the_oracle_says(at_midnight):
    """Host rows assigned a microsecond before, at and after each period's start, the midnight after it and
    the Monday after it (``rolling_30d`` reads its first day's host rows from its start, day buckets up to
    the next Monday and week buckets from it), and in the future: the tallies and the host rows give the
    oracle's counts for every period and rule."""
    reps = [make_rep() for _ in range(3)]
    pool = make_pool("first_available", reps)
    meeting_type = make_meeting_type(pool)
    now = NOW.replace(hour=0, minute=0, second=0, microsecond=1) if at_midnight else NOW
    tick = dt.timedelta(microseconds=1)
    edges = {now + dt.timedelta(days=40)}
    for period in Pool.FairnessPeriod.values:
        pool.fairness_period = period
        start = fairness_period_start(pool, now=now)
        if start is not None:
            midnight = start.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
            monday = midnight + dt.timedelta(days=6 - start.weekday())  # the Monday after its first day
            edges |= {start - tick, start, start + tick, midnight - tick, midnight, monday - tick, monday}
    statuses = ["confirmed", "cancelled", "no_show", "completed"]
    starts = [NOW + dt.timedelta(days=1, hours=i) for i in range(len(edges))]
    made = bulk_bookings(meeting_type, reps, starts)
    for i, (booking, at) in enumerate(zip(made, sorted(edges), strict=True)):
        Booking.objects.filter(pk=booking.pk).update(status=statuses[i % len(statuses)])
        BookingHost.objects.filter(booking=booking).update(assigned_at=at)
    rep_ids = [r.pk for r in reps]
    for period in Pool.FairnessPeriod.values:
        for cancellations, no_shows in ((False, False), (True, True)):
            pool.fairness_period = period
            pool.count_cancellations, pool.count_no_shows = cancellations, no_shows
            raw, _, last = oracle(pool, rep_ids, now=now)
            ledger = pool_ledger(pool, rep_ids, now=now)
            assert (ledger.raw, ledger.last_assigned) == (raw, last), (period, cancellations, no_shows)


def test_a_period_the_ledger_does_not_know_counts_everything_as_never_does():
    """``fairness_period_start`` gives no start for a value outside the choices (the column does not refuse
    one): the ledger then counts the whole history, as for ``never``."""
    pool, rep_ids = history(4)
    pool.fairness_period = "never"
    never = pool_ledger(pool, rep_ids, now=NOW)
    pool.fairness_period = "fortnight"
    assert pool_ledger(pool, rep_ids, now=NOW) == never
