"""``routing.sqlrows.instances`` builds the hot path's model instances (the meeting type of every request, a
pool's members) from plain SQL: they must equal what the ORM builds — every field, its Python type, the
related instance, the instance state — on SQLite and PostgreSQL. ``routing.sqlwrites.insert`` writes a new
booking's rows: what it stores must equal what ``bulk_create`` stores."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from booking.errors import MeetingTypeNotFound
from booking.models import Booking, BookingHost, MeetingType, OutboxMessage
from booking.selectors import meeting_type_get
from routing import sqlrows, sqlwrites
from routing.models import LedgerEntry, PoolMember, Rep
from routing.rosters import pool_members
from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"id": "size", "label": "Team size — how many?", "kind": "choice", "choices": ["1–10", "11+"]},
    {"id": "notes", "label": "Anything else", "kind": "text", "required": False},
]


def fields(instance) -> list[tuple[str, object, type]]:
    return [
        (f.attname, getattr(instance, f.attname), type(getattr(instance, f.attname)))
        for f in instance._meta.concrete_fields
    ]


def same(loaded, orm) -> None:
    assert type(loaded) is type(orm)
    assert fields(loaded) == fields(orm)
    state = (loaded._state.adding, loaded._state.db)
    assert state == (orm._state.adding, orm._state.db) == (False, "default")
    assert list(loaded.__dict__) == list(orm.__dict__)  # nothing more, nothing less, in the same order
    for attname, value, _ in fields(loaded):
        if isinstance(value, dt.datetime):
            assert value.utcoffset() == dt.timedelta(0), attname  # aware, in UTC


def test_the_meeting_type_equals_the_orm_one_with_its_pool():
    pool = make_pool("ranked", [make_rep()], fairness_period="week", count_no_shows=True)
    made = make_meeting_type(
        pool, questions=QUESTIONS, buffer_before_minutes=5, location_kind="phone", location_detail="+49 30 1"
    )
    make_meeting_type(pool, slug="other")
    loaded = meeting_type_get(made.slug)
    orm = MeetingType.objects.select_related("pool").get(pk=made.pk)
    same(loaded, orm)
    assert loaded.questions == QUESTIONS and isinstance(loaded.questions, list)
    assert "pool" in loaded._state.fields_cache  # selected: reading it runs no query
    same(loaded.pool, orm.pool)


def test_an_inactive_or_unknown_meeting_type_is_not_found():
    made = make_meeting_type(make_pool("ranked", [make_rep()]), active=False)
    for slug in (made.slug, "no-such-type", "x' OR '1'='1"):
        with pytest.raises(MeetingTypeNotFound):
            meeting_type_get(slug)


def test_pool_members_equal_the_orm_ones_in_pk_order_with_their_reps():
    user = get_user_model().objects.create_user("ana", "ana@example.com", "pw")
    ana, ben = make_rep("Ana", user=user, daily_cap=4), make_rep("Ben", tz="America/New_York")
    pool = make_pool("first_available", [ben, ana], roles=["se", "ae"])
    PoolMember.objects.filter(rep=ana).update(weight=1.5, daily_cap=2, adjustment=-0.25, active=False)
    make_pool("first_available", [ana])  # another pool's member row is not loaded
    loaded = pool_members(pool)
    orm = list(PoolMember.objects.filter(pool=pool).select_related("rep").order_by("pk"))
    assert [m.pk for m in loaded] == [m.pk for m in orm] and len(loaded) == 2
    for got, want in zip(loaded, orm, strict=True):
        same(got, want)
        same(got.rep, want.rep)
    assert pool_members(make_pool("ranked", [])) == []


def test_a_model_with_init_receivers_is_built_by_from_db_so_they_run():
    """Instances are put together directly only where ``Model.__init__`` would just store the values: a
    ``pre_init``/``post_init`` receiver (connected at any time) still sees every instance."""
    from django.db.models.signals import post_init, pre_init

    pool = make_pool("first_available", [make_rep("Ana"), make_rep("Ben")])
    seen: list = []

    def receiver(sender, **kwargs):
        seen.append((sender.__name__, kwargs.get("instance")))

    for signal, model in ((post_init, PoolMember), (pre_init, Rep)):
        signal.connect(receiver, sender=model)
        try:
            loaded = pool_members(pool)
        finally:
            signal.disconnect(receiver, sender=model)
        assert [name for name, _ in seen] == [model.__name__] * 2
        if signal is post_init:
            assert [instance for _, instance in seen] == loaded
        seen.clear()
    assert sqlrows._plain(PoolMember) and sqlrows._plain(Rep)


def test_a_model_whose_field_has_its_own_descriptor_is_built_by_from_db():
    from django_celery_beat.models import CrontabSchedule  # its time zone field has a descriptor of its own

    assert not sqlrows._plain(CrontabSchedule)
    made = CrontabSchedule.objects.create(minute="5", hour="*/2")
    (loaded,) = sqlrows.instances(CrontabSchedule, "t.id = %s", [made.pk])
    same(loaded, CrontabSchedule.objects.get(pk=made.pk))

    from routing.models import Rep

    with pytest.raises(ValueError, match="not a non-null foreign key"):
        sqlrows.instances(Rep, "1 = 1", [], related="user")  # nullable: the ORM would LEFT JOIN it


def twins(meeting_type, reps) -> list[tuple[list, list]]:
    """Pairs of equal new objects per model: one for ``bulk_create``, one for ``sqlwrites.insert``."""
    pool = meeting_type.pool
    start = dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)

    def booking(token):
        return Booking(
            meeting_type=meeting_type,
            pool=pool,
            start=start,
            end=start + dt.timedelta(minutes=30),
            status=Booking.Status.CONFIRMED,
            prospect_name="Zoë O'Brien",
            prospect_email="zoe@example.org",
            prospect_timezone="Europe/Berlin",
            answers={"size": "11+", "notes": 'ünïcode, "quotes" and\nnew lines'},
            utm={"utm_source": "newsletter"},
            decision={"strategy": "ranked", "scores": [1.5, None, {"rep": reps[0].pk}]},
            manage_token_hash=token * 64,
        )

    first, second = Booking.objects.bulk_create([booking("a")])[0], sqlwrites.insert([booking("b")])[0]

    def host(made, rep):
        end = start + dt.timedelta(hours=1)
        # inactive: the twins overlap by construction (the exclusion constraint allows that only so)
        return BookingHost(booking=made, rep=rep, blocked_start=start, blocked_end=end, active=False)

    def ledger(made, rep):
        return LedgerEntry(pool=pool, rep=rep, booking=made, kind="assigned", delta=1.0, reason="why")

    def message(made, rep):
        return OutboxMessage(event="booking.confirmed", handler="h", booking=made, payload={"rep": rep.pk})

    pairs = [([first], [second])]
    for build in (host, ledger, message):
        pairs.append(([build(first, rep) for rep in reps], [build(second, rep) for rep in reps]))
    return pairs


def test_inserted_rows_equal_the_bulk_created_ones(clock):
    reps = [make_rep(), make_rep()]
    meeting_type = make_meeting_type(make_pool("ranked", reps))
    for orm_objs, sql_objs in twins(meeting_type, reps):
        model = type(orm_objs[0])
        if model is not Booking:  # the booking pair was written by twins()
            model.objects.bulk_create(orm_objs)
            assert sqlwrites.insert(sql_objs) is sql_objs
        for orm_obj, sql_obj in zip(orm_objs, sql_objs, strict=True):
            assert (
                sql_obj.pk is not None and sql_obj._state.adding is False and sql_obj._state.db == "default"
            )
            stored = [model.objects.get(pk=obj.pk) for obj in (orm_obj, sql_obj)]
            differ = {"id", "booking_id", "manage_token_hash"}
            assert [(a, v, t) for a, v, t in fields(stored[1]) if a not in differ] == [
                (a, v, t) for a, v, t in fields(stored[0]) if a not in differ
            ]
            # choices stay enums on the object, as with the ORM; the host rows' copies of their booking's pool
            # and status are the database's (booking.triggers), never held by the object
            copied = {"booking_pool_id", "booking_status"}
            held = [(a, v) for a, v, _ in fields(sql_obj) if a not in copied]
            assert held == [(a, v) for a, v, _ in fields(stored[1]) if a not in copied]  # auto_now too


def test_insert_many_stores_each_list_as_insert_does_packed_in_few_statements_on_postgresql(clock):

    reps = [make_rep(), make_rep()]
    meeting_type = make_meeting_type(make_pool("ranked", reps))
    pairs = twins(meeting_type, reps)[1:]  # hosts, ledger entries, outbox rows of the two twin bookings
    for orm_objs, _ in pairs:
        type(orm_objs[0]).objects.bulk_create(orm_objs)
    groups = [sql_objs for _, sql_objs in pairs]
    seen: list[int] = []

    def record(execute, sql, params, many, context):
        seen.append(len(params or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        sqlwrites.insert_many([groups[0], [], groups[1], groups[2]])  # an empty list is skipped
    if connection.vendor == "postgresql":
        # 2 host rows and 2 ledger entries (7 columns) share a statement; the outbox rows would take it past
        # psycopg's cache limit of 50 parameters, so they have their own
        host_columns = len(BookingHost._meta.concrete_fields) - 1 - len(BookingHost.DATABASE_FILLED)
        assert seen == [2 * host_columns + 2 * 7, 2 * (len(OutboxMessage._meta.concrete_fields) - 1)]
    else:
        assert len(seen) == 3
    for (orm_objs, _), sql_objs in zip(pairs, groups, strict=True):
        model = type(sql_objs[0])
        assert len({obj.pk for obj in sql_objs}) == len(reps)
        for orm_obj, sql_obj in zip(orm_objs, sql_objs, strict=True):
            assert sql_obj._state.adding is False and sql_obj._state.db == "default"
            stored = [model.objects.get(pk=obj.pk) for obj in (orm_obj, sql_obj)]

            # each key is its own row's: the rep (or the payload naming it) read back is the object's
            def rep(obj):
                return obj.payload["rep"] if isinstance(obj, OutboxMessage) else obj.rep_id

            assert rep(stored[1]) == rep(sql_obj) == rep(orm_obj)
            differ = {"id", "booking_id"}
            assert [(a, v) for a, v, _ in fields(stored[1]) if a not in differ] == [
                (a, v) for a, v, _ in fields(stored[0]) if a not in differ
            ]


def new_booking(meeting_type, start: dt.datetime, token: str, *, minutes: int = 30) -> Booking:
    return Booking(
        meeting_type=meeting_type,
        pool=meeting_type.pool,
        start=start,
        end=start + dt.timedelta(minutes=minutes),
        prospect_name="P",
        prospect_email="p@example.org",
        prospect_timezone="UTC",
        manage_token_hash=token * 64,
    )


def test_insert_many_saves_a_booking_with_rows_pointing_at_it_in_one_statement_on_postgresql(clock):

    reps = [make_rep(), make_rep()]
    meeting_type = make_meeting_type(make_pool("ranked", reps))
    start = dt.datetime(2026, 3, 5, 9, tzinfo=dt.UTC)
    booking = new_booking(meeting_type, start, "d")
    hosts = [BookingHost(booking=booking, rep=r, blocked_start=start, blocked_end=booking.end) for r in reps]
    entries = [
        LedgerEntry(pool=meeting_type.pool, rep=r, booking=booking, kind="assigned", delta=1) for r in reps
    ]
    with pytest.raises(ValueError, match="related object is not saved"):
        sqlwrites.insert(hosts)  # alone, nothing says which booking
    seen: list[int] = []

    def record(execute, sql, params, many, context):
        seen.append(len(params or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        sqlwrites.insert_many([[booking], hosts, entries])
    assert len(seen) == (1 if connection.vendor == "postgresql" else 3) and max(seen) <= 50
    assert booking.pk is not None
    for row in [*hosts, *entries]:
        assert row.pk is not None and row.booking_id == booking.pk and row.booking is booking
    stored = BookingHost.objects.filter(booking_id=booking.pk).order_by("rep_id")
    assert [h.rep_id for h in stored] == sorted(r.pk for r in reps)
    assert LedgerEntry.objects.filter(booking_id=booking.pk).count() == 2
    # a list past the statement's parameter budget goes in the next statement, with the key already known
    later = new_booking(meeting_type, start, "e")
    messages = [OutboxMessage(event="booking.confirmed", handler=f"h{i}", booking=later) for i in range(6)]
    seen.clear()
    with connection.execute_wrapper(record):
        sqlwrites.insert_many([[later], messages])
    assert len(seen) == 2 and all(m.booking_id == later.pk for m in messages)
    assert OutboxMessage.objects.filter(booking_id=later.pk).count() == 6


def test_a_booking_whose_key_was_reserved_goes_with_all_its_rows_in_one_round_trip(clock, monkeypatch):
    """``key_statement`` reserves the booking's key (the booking service sends it with the rep locks): then
    nothing waits for a ``RETURNING``, and the booking, its host rows, ledger entries and outbox rows, two
    statements under psycopg's 50-parameter cache limit, go in ONE round trip (``sqlrows.batch``), with a
    statement of the caller's (``then``: an Idempotency-Key's stored response). Without
    a reserved key the outbox rows wait for the booking's: two round trips. SQLite reserves no key."""
    reps = [make_rep(), make_rep()]
    meeting_type = make_meeting_type(make_pool("ranked", reps))
    start = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)
    trips: list[int] = []
    batch = sqlrows.batch

    def counted(statements, **options):
        trips.append(len(statements))
        return batch(statements, **options)

    monkeypatch.setattr(sqlrows, "batch", counted)

    def rows_of(booking):
        host = BookingHost(booking=booking, rep=reps[0], blocked_start=booking.start, blocked_end=booking.end)
        entry = LedgerEntry(pool=meeting_type.pool, rep=reps[0], booking=booking, kind="assigned", delta=1)
        messages = [
            OutboxMessage(event="booking.confirmed", handler=f"h{i}", booking=booking, payload={"n": i})
            for i in range(3)
        ]
        return [[booking], [host], [entry], messages]

    statement = sqlwrites.key_statement(Booking, 2)
    if sqlrows.vendor() != "postgresql":
        assert statement is None
        return
    keys = [key for (key,) in sqlrows.rows(*statement)]
    assert len(set(keys)) == 2
    reserved = new_booking(meeting_type, start, "f")
    reserved.pk = keys[0]
    groups = rows_of(reserved)
    trips.clear()
    sqlwrites.insert_many(groups, then=[("SELECT %s", [7])])
    assert trips == [3]  # one round trip: two statements, then the caller's
    assert Booking.objects.get(pk=keys[0]).manage_token_hash == "f" * 64
    for row in [obj for objs in groups[1:] for obj in objs]:
        assert row.pk is not None and row.booking_id == keys[0]
        assert type(row).objects.filter(pk=row.pk, booking_id=keys[0]).exists()
    assert reserved._state.adding is False
    trips.clear()
    sqlwrites.insert_many(rows_of(new_booking(meeting_type, start + dt.timedelta(hours=1), "g")))
    assert trips == [1, 1]  # the outbox rows waited for the booking's key
    with pytest.raises(ValueError, match="all with keys or none"):
        mixed = new_booking(meeting_type, start, "h"), new_booking(meeting_type, start, "i")
        mixed[0].pk = keys[1]
        sqlwrites.insert(list(mixed))


def test_an_insert_many_that_fails_leaves_none_of_its_rows():
    from django.db import IntegrityError, transaction

    reps = [make_rep(), make_rep()]
    meeting_type = make_meeting_type(make_pool("ranked", reps))
    (booking,) = sqlwrites.insert([new_booking(meeting_type, dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC), "c")])
    entry = LedgerEntry(pool=meeting_type.pool, rep=reps[0], booking=booking, kind="assigned", delta=1.0)
    twice = [
        BookingHost(booking=booking, rep=reps[0], blocked_start=booking.start, blocked_end=booking.end)
        for _ in range(2)
    ]  # the same rep twice on one booking, over the same hour
    with pytest.raises(IntegrityError), transaction.atomic():
        sqlwrites.insert_many([[entry], twice])
    assert not LedgerEntry.objects.filter(booking=booking).exists()
    assert not BookingHost.objects.filter(booking=booking).exists()


def test_insert_refuses_what_it_cannot_write_like_bulk_create():
    from django.db.models import F

    rep = make_rep()
    with pytest.raises(ValueError, match="new LedgerEntry instances only"):
        sqlwrites.insert(
            [LedgerEntry.objects.create(pool=make_pool("ranked", [rep]), rep=rep, kind="assigned", delta=1)]
        )
    pool = make_pool("ranked", [rep])
    with pytest.raises(ValueError, match="expressions are not supported"):
        sqlwrites.insert([LedgerEntry(pool=pool, rep=rep, kind="assigned", delta=F("delta") + 1)])
    assert sqlwrites.insert([]) == []
