"""Upgrading with real data: migrations from earlier states to HEAD over rows an installation holds.

Each test migrates the test database to the state before a migration (Django's MigrationExecutor, as
tests/foundation/test_foundation_upgrades.py does), writes or keeps rows of that state, migrates forward as
``manage.py migrate`` does and checks what the upgrade left. ``at_latest`` migrates forward whatever happens.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from icalendar import Calendar

from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep
from tests.foundation.test_foundation_upgrades import migrate_latest, migrate_to

PROSPECT = "pat@example.org"


@pytest.fixture
def at_latest():
    try:
        yield
    finally:
        migrate_latest()


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def deliver_all(event: str, handler: str) -> None:
    from booking import outbox
    from booking.models import OutboxMessage

    for row in OutboxMessage.objects.filter(event=event, handler=handler, delivered_at__isnull=True):
        assert outbox.deliver(message_id=row.pk, now=NOW) == "delivered"


def calendar_parts(message) -> list[Calendar]:
    return [Calendar.from_ical(c) for c, kind in message.alternatives if kind.startswith("text/calendar")]


def booked_with_batons_invitation(mailoutbox):
    """Ana, without a calendar, hosts Pat's booking: both hold Baton's e-mailed invitation (its UID)."""
    from booking.services import booking_create

    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    created = booking_create(
        meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
    ).body
    deliver_all("booking.confirmed", "email.host")
    deliver_all("booking.confirmed", "email.prospect")
    uids = {}
    for who in (ana.email, PROSPECT):
        (mail,) = [m for m in mailoutbox if m.to == [who]]
        (part,) = calendar_parts(mail)
        uids[who] = str(part.walk("VEVENT")[0]["UID"])
    return ana, created, uids


def connect_receiving_calendar(rep) -> None:
    """The rep connects a Google calendar that receives bookings (after the booking: it never had it)."""
    from calendars.models import Calendar as RepCalendar
    from calendars.models import CalendarConnection

    conn = CalendarConnection.objects.create(
        rep=rep, provider="google", account_email=rep.email, secret_blob="x", last_success_at=NOW
    )
    RepCalendar.objects.create(connection=conn, external_id="primary", can_write=True, receives_bookings=True)


@pytest.mark.django_db(transaction=True)
def test_hosts_of_bookings_made_before_booking_0018_get_the_cancel_of_batons_invitation(
    at_latest, clock, mailoutbox
):
    """Ana had no calendar connected when Pat booked (before booking 0018): her "Confirmed" e-mail carried
    Baton's iCalendar REQUEST, which her mail client put in her calendar. 0018 adds
    ``BookingHost.invitation`` with "" ("none sent yet") for every existing host row, though Baton's
    e-mails had sent those hosts their invitation. After the upgrade Ana connects a Google calendar
    receiving bookings and Pat cancels: ``send_host_email`` takes "" with a receiving calendar as "the
    provider's event" and sends no CANCEL — the cancelled meeting stays in Ana's calendar for good (the
    very case 0018 was made for, on every booking made before it). A data migration (booking 0020) records
    what was sent: "provider" where the host has a write-back event of the booking, "baton" otherwise (a
    delivered ``email.host`` for the booking)."""
    from booking.services import booking_cancel

    ana, created, uids = booked_with_batons_invitation(mailoutbox)
    migrate_to([("booking", "0017_manage_links")])  # an installation where the e-mails recorded nothing
    migrate_latest()

    connect_receiving_calendar(ana)
    sent = len(mailoutbox)
    booking_cancel(token=created["manage_token"], reason="no longer needed")
    deliver_all("booking.cancelled", "email.host")
    (cancelled,) = [m for m in mailoutbox[sent:] if m.to == [ana.email]]
    held = [(str(c["METHOD"]), str(c.walk("VEVENT")[0]["UID"])) for c in calendar_parts(cancelled)]
    assert held == [("CANCEL", uids[ana.email])], (
        f"Ana keeps Baton's invitation of the cancelled meeting: {held}"
    )


@pytest.mark.django_db(transaction=True)
def test_prospects_of_bookings_made_before_booking_0014_get_the_cancel_of_batons_invitation(
    at_latest, clock, mailoutbox
):
    """The prospect's side, booking 0014 (``Booking.prospect_invitation``): Pat's confirmation, sent before
    the upgrade while Ana had no calendar, carried Baton's REQUEST. Every existing booking gets "" after
    0014; Ana connects a receiving calendar after the upgrade and Pat cancels: "" with an inviting lead reads
    as "the provider invited", the cancellation carries no CANCEL, and Pat's calendar keeps the cancelled
    meeting (the write-back never had it, so Google sends no cancellation either). A data migration
    (booking 0020) records "baton" for bookings whose prospect e-mail was delivered while the lead had no
    write-back event."""
    from booking.services import booking_cancel

    ana, created, uids = booked_with_batons_invitation(mailoutbox)
    migrate_to([("booking", "0013_purge_outbox_task")])
    migrate_latest()

    connect_receiving_calendar(ana)
    sent = len(mailoutbox)
    booking_cancel(token=created["manage_token"])
    deliver_all("booking.cancelled", "email.prospect")
    (cancelled,) = [m for m in mailoutbox[sent:] if m.to == [PROSPECT]]
    held = [(str(c["METHOD"]), str(c.walk("VEVENT")[0]["UID"])) for c in calendar_parts(cancelled)]
    assert held == [("CANCEL", uids[PROSPECT])], (
        f"Pat keeps Baton's invitation of the cancelled meeting: {held}"
    )


class RecordingProvider:
    """Stands in for the Google client: records what the write-back asks of it."""

    def __init__(self):
        self.calls = []

    def cancel_unconfirmed(self, calendar_id, key, *, start, end, notify=True):
        self.calls.append(("cancel_unconfirmed", calendar_id, key))

    def cancel_event(self, calendar_id, event_id, *, notify=True):
        self.calls.append(("cancel_event", calendar_id, event_id))


@pytest.mark.django_db(transaction=True)
def test_a_create_left_unanswered_before_calendars_0013_is_removed_when_the_booking_is_cancelled(
    at_latest, clock, monkeypatch
):
    """Before calendars 0013 the write-back recorded a host's event as "cancelled" (nothing written) and then
    sent the create; a create whose answer never came (a timeout: Google made the event all the same and
    invited Pat) left that record — no event id, never written (``written_sequence`` -1) — for the outbox's
    retry. 0013 introduced ``creating`` for exactly this record (so that a booking that no longer wants the
    event has it removed by its key) but leaves existing records "cancelled". Pat cancels after the upgrade,
    before the retry: the write-back sees "cancelled", asks Google for nothing, and the cancelled meeting
    stays in Ana's and Pat's calendars for good. A data migration (calendars 0015: 0013 has shipped) turns
    such records (cancelled, never written, with a calendar) into ``creating``: removing by a key that made
    nothing is harmless."""
    from booking import outbox
    from booking.services import booking_cancel, booking_create
    from calendars.models import Calendar as RepCalendar
    from calendars.services import writeback

    monkeypatch.setattr(outbox, "enqueue", lambda ids: None)  # the outbox's messages wait (no worker runs)
    ana = make_rep("Ana")
    connect_receiving_calendar(ana)
    calendar = RepCalendar.objects.get(connection__rep=ana)
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]), slug="intro")
    created = booking_create(
        meeting_type=meeting_type, start=START, name="Pat", email=PROSPECT, timezone="UTC"
    ).body
    apps = migrate_to([("calendars", "0012_override_and_time_off_years")])
    apps.get_model("calendars", "BookingEvent").objects.create(  # as the write-back left a timed-out create
        booking_id=created["id"], rep_id=ana.pk, calendar_id=calendar.pk, provider="google", state="cancelled"
    )
    migrate_latest()

    booking_cancel(token=created["manage_token"])
    provider = RecordingProvider()
    monkeypatch.setattr(writeback, "provider_for", lambda connection: provider)
    writeback.booking_events_sync(booking_id=created["id"])
    from booking.models import Booking

    key = writeback._key(Booking.objects.get(pk=created["id"]), ana.pk, 0)
    assert provider.calls == [("cancel_unconfirmed", "primary", key)], (
        f"the event Google made for the cancelled booking is never removed: {provider.calls}"
    )


def reimport_problems() -> list[str]:
    """What importing an unchanged ``export_config`` refuses (docs/config.md: it imports again)."""
    from routing.configfile import (
        ConfigInvalid,
        config_export,
        config_import,
        dump_document,
        load_document,
        parse_config,
    )

    try:
        config_import(config=parse_config(load_document(dump_document(config_export()))), dry_run=True)
    except ConfigInvalid as exc:
        return list(exc.errors)
    return []


@pytest.mark.django_db(transaction=True)
def test_time_off_and_overrides_beyond_the_years_of_calendars_0012_are_brought_into_them(at_latest):
    """calendars 0012 (dates and time off in the years 2000-2999) only adds validators. An open-ended leave
    typed in the admin before it as "until 9999-12-31" (the usual way to say "indefinitely"), or an old
    override dated 1999, stays as it is: after the upgrade ``export_config`` writes it and importing that
    very export is refused (``time_off[0].end: Out of range``), and the rep's admin page refuses to save
    until someone finds the row. docs/config.md: "Rows stored before a bound was added are brought into it
    on upgrade …, so an export of upgraded data imports again" — done for routing 0008 and booking 0016,
    not here. A data migration (calendars 0015) clamps time off into the range (end 9999 → the last instant
    of 2999) and drops overrides of dates outside it."""
    apps = migrate_to([("calendars", "0011_hours_whole_minutes")])
    rep = apps.get_model("routing", "Rep").objects.create(name="Ana", email="ana@example.com", timezone="UTC")
    apps.get_model("calendars", "TimeOff").objects.create(
        rep=rep,
        start=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        end=dt.datetime(9999, 12, 31, tzinfo=dt.UTC),
        reason="parental leave",
    )
    apps.get_model("calendars", "DateOverride").objects.create(rep=rep, date=dt.date(1999, 12, 31))

    migrate_latest()

    assert reimport_problems() == []


@pytest.mark.django_db(transaction=True)
def test_disqualify_messages_beyond_the_bound_of_leads_0003_are_brought_into_it(at_latest):
    """leads 0003 (a rule's ``disqualify_message`` at most 2,000 characters) only adds a validator: a longer
    message saved before it (a TextField took any length; the admin's textarea had no limit) stays, and
    after the upgrade an unchanged ``export_config`` no longer imports (``rules[0].disqualify_message``:
    at most 2000 characters), the round trip docs/config.md promises for upgraded data ("brought into it
    on upgrade … so an export of upgraded data imports again"); the rule's admin page refuses to save too.
    A data migration (leads 0005) brings stored messages into the bound (cut at 2,000 characters)."""
    apps = migrate_to([("leads", "0002_pool_performance")])
    Pool = apps.get_model("routing", "Pool")
    pool = Pool.objects.create(name="P", slug="p", strategy="round_robin", fairness_period="month")
    meeting_type = apps.get_model("booking", "MeetingType").objects.create(
        slug="demo", title="Demo", duration_minutes=30, pool=pool
    )
    apps.get_model("leads", "RoutingRule").objects.create(
        meeting_type=meeting_type,
        name="Too small",
        outcome="disqualify",
        conditions={"all": [{"field": "answers.size", "op": "in", "value": ["1-49"]}]},
        disqualify_message="Our self-serve plan fits teams under 50 best. " * 60,
    )

    migrate_latest()

    assert reimport_problems() == []


@pytest.mark.django_db(transaction=True)
def test_reassignment_entries_of_bookings_deleted_before_routing_0004_are_removed(at_latest):
    """routing 0006 removes the ``assigned`` entries that bookings deleted before routing 0004 left with a
    NULL booking, but not the same bookings' reassignment entries. A booking of Ana's reassigned to Ben (the
    admin's reassign: ``reassigned_from`` -1 for Ana, ``reassigned_to`` +1 for Ben) and then deleted before
    the upgrade leaves Ana's -1 with ``booking_id`` NULL, which today's ledger reads as a lead taken back from
    her (``routing.ledger.TAKEN_BACK``): after the upgrade Ana is credited a booking she never had, for good
    in a ``never`` pool (round robin hands her the next booking ahead of her turn, every time). A data
    migration (routing 0009: 0006 has shipped) removes the reassignment entries of deleted bookings
    (orphaned ``reassigned_from``/``reassigned_to`` that are no routing by hand's take-back), as 0004
    removes a deleted booking's entries now."""
    apps = migrate_to([("routing", "0003_ledgerentry_ledger_pool_special")])
    Rep = apps.get_model("routing", "Rep")
    ana = Rep.objects.create(name="Ana", email="ana@example.com", timezone="UTC")
    ben = Rep.objects.create(name="Ben", email="ben@example.com", timezone="UTC")
    pool = apps.get_model("routing", "Pool").objects.create(
        name="P", slug="p", strategy="round_robin", fairness_period="never"
    )
    PoolMember = apps.get_model("routing", "PoolMember")
    for rank, rep in enumerate((ana, ben)):
        PoolMember.objects.create(pool=pool, rep=rep, rank=rank)
    meeting_type = apps.get_model("booking", "MeetingType").objects.create(
        slug="demo", title="Demo", duration_minutes=30, pool=pool
    )
    start = dt.datetime(2026, 5, 6, 10, 0, tzinfo=dt.UTC)
    booking = apps.get_model("booking", "Booking").objects.create(
        start=start,
        end=start + dt.timedelta(minutes=30),
        status="confirmed",
        prospect_name="Pat",
        prospect_email=PROSPECT,
        prospect_timezone="UTC",
        manage_token_hash="0" * 64,
        pool=pool,
        meeting_type=meeting_type,
    )
    BookingHost = apps.get_model("booking", "BookingHost")
    BookingHost.objects.create(
        booking=booking,
        rep=ana,
        blocked_start=start,
        blocked_end=booking.end,
        active=False,
        released="reassigned",
    )
    BookingHost.objects.create(booking=booking, rep=ben, blocked_start=start, blocked_end=booking.end)
    LedgerEntry = apps.get_model("routing", "LedgerEntry")
    for rep, kind, delta, reason in (
        (ana, "assigned", 1.0, "round_robin assignment"),
        (ana, "reassigned_from", -1.0, "rep_unavailable: sick"),
        (ben, "reassigned_to", 1.0, "rep_unavailable: sick"),
    ):
        LedgerEntry.objects.create(pool=pool, rep=rep, booking=booking, kind=kind, delta=delta, reason=reason)
    apps.get_model("booking", "Booking").objects.filter(pk=booking.pk).delete()  # SET_NULL then

    migrate_latest()

    from django.utils import timezone

    from routing.ledger import pool_ledger
    from routing.models import Pool

    raw = pool_ledger(Pool.objects.get(pk=pool.pk), [ana.pk, ben.pk], now=timezone.now()).raw
    assert (raw.get(ana.pk, 0), raw.get(ben.pk, 0)) == (0, 0), f"no bookings, yet the ledger reads {raw}"


# The data migrations' other cases (added by the fixer of the findings above): what each leaves alone.


@pytest.mark.django_db(transaction=True)
def test_upgraded_bookings_record_the_invitation_their_emails_sent_and_no_other(
    at_latest, clock, monkeypatch, mailoutbox
):
    """booking 0020, what it leaves alone: a host whose calendar had the write-back's event holds it
    ("provider"), as does the prospect that event invited; e-mails still waiting in the outbox record what
    they send themselves (""); a booking that has started changes no more, so its record stays ""."""
    from booking import outbox
    from booking.models import Booking, BookingHost
    from booking.services import booking_create
    from calendars.models import BookingEvent
    from calendars.models import Calendar as RepCalendar

    monkeypatch.setattr(outbox, "enqueue", lambda ids: None)  # no worker: the e-mails are sent below
    ana, ben = make_rep("Ana"), make_rep("Ben")
    connect_receiving_calendar(ben)
    later = START + dt.timedelta(days=1)

    def book(rep, start, email):
        meeting_type = make_meeting_type(make_pool("round_robin", [rep]))
        made = booking_create(meeting_type=meeting_type, start=start, name="P", email=email, timezone="UTC")
        return made.body["id"]

    started = book(ana, START, "started@example.org")
    written = book(ben, later, "written@example.org")
    BookingEvent.objects.create(  # as the write-back left it: the event in Ben's calendar
        booking_id=written,
        rep=ben,
        calendar=RepCalendar.objects.get(connection__rep=ben),
        provider="google",
        external_event_id="ev-1",
        written_sequence=0,
    )
    deliver_all("booking.confirmed", "email.host")
    deliver_all("booking.confirmed", "email.prospect")
    waiting = book(ana, later, "waiting@example.org")  # its e-mails wait in the outbox
    clock.move_to(START + dt.timedelta(hours=1))
    migrate_to([("booking", "0013_purge_outbox_task")])
    migrate_latest()

    held = {
        pk: (
            Booking.objects.get(pk=pk).prospect_invitation,
            BookingHost.objects.get(booking_id=pk).invitation,
        )
        for pk in (started, written, waiting)
    }
    assert held == {started: ("", ""), written: ("provider", "provider"), waiting: ("", "")}


@pytest.mark.django_db(transaction=True)
def test_only_unanswered_creates_become_creating_with_the_times_a_create_sent(at_latest):
    """calendars 0015: a "cancelled" record never written with a calendar becomes ``creating``, with the
    booking's times as the times its create was sent for; one written once (``written_sequence`` ≥ 0), or
    without a calendar (nothing to remove it from), stays cancelled."""
    apps = migrate_to([("calendars", "0012_override_and_time_off_years")])
    reps = [
        apps.get_model("routing", "Rep").objects.create(name=n, email=f"{n}@example.com", timezone="UTC")
        for n in ("ana", "ben", "cy")
    ]
    pool = apps.get_model("routing", "Pool").objects.create(
        name="P", slug="p", strategy="round_robin", fairness_period="month"
    )
    meeting_type = apps.get_model("booking", "MeetingType").objects.create(
        slug="demo", title="Demo", duration_minutes=30, pool=pool
    )
    booking = apps.get_model("booking", "Booking").objects.create(
        start=START,
        end=START + dt.timedelta(minutes=30),
        status="confirmed",
        prospect_name="Pat",
        prospect_email=PROSPECT,
        prospect_timezone="UTC",
        manage_token_hash="1" * 64,
        pool=pool,
        meeting_type=meeting_type,
    )
    conn = apps.get_model("calendars", "CalendarConnection").objects.create(
        rep=reps[0], provider="google", account_email="ana@example.com", secret_blob="x"
    )
    calendar = apps.get_model("calendars", "Calendar").objects.create(connection=conn, external_id="primary")
    BookingEvent = apps.get_model("calendars", "BookingEvent")
    for rep, cal, sequence in ((reps[0], calendar, -1), (reps[1], calendar, 2), (reps[2], None, -1)):
        BookingEvent.objects.create(
            booking=booking,
            rep=rep,
            calendar=cal,
            provider="google",
            state="cancelled",
            written_sequence=sequence,
        )

    migrate_latest()

    from calendars.models import BookingEvent as Current

    found = {
        e.rep_id: (e.state, e.sent_start, e.sent_end) for e in Current.objects.filter(booking_id=booking.pk)
    }
    assert found == {
        reps[0].pk: ("creating", booking.start, booking.end),
        reps[1].pk: ("cancelled", None, None),
        reps[2].pk: ("cancelled", None, None),
    }


@pytest.mark.django_db(transaction=True)
def test_time_off_and_overrides_are_clamped_into_the_years_or_dropped(at_latest):
    """calendars 0015: time off reaching before 2000 starts at 2000-01-01 00:00 UTC, time off wholly before
    2000 or after 2999 goes, as do date overrides outside the years; rows inside them stay as they were."""
    apps = migrate_to([("calendars", "0011_hours_whole_minutes")])
    rep = apps.get_model("routing", "Rep").objects.create(name="Ana", email="ana@example.com", timezone="UTC")
    TimeOff = apps.get_model("calendars", "TimeOff")

    def at(year, *rest):
        return dt.datetime(year, *(rest or (1, 1)), tzinfo=dt.UTC)

    for start, end in (
        (at(1995), at(2001)),
        (at(1990), at(2000)),
        (at(3000), at(3100)),
        (at(2026, 6, 1), at(2026, 6, 5)),
    ):
        TimeOff.objects.create(rep=rep, start=start, end=end)
    for day in (dt.date(1999, 12, 31), dt.date(3000, 1, 1), dt.date(2026, 6, 1)):
        apps.get_model("calendars", "DateOverride").objects.create(rep=rep, date=day)

    migrate_latest()

    from calendars.models import DateOverride
    from calendars.models import TimeOff as Current

    assert sorted(Current.objects.values_list("start", "end")) == [
        (at(2000), at(2001)),
        (at(2026, 6, 1), at(2026, 6, 5)),
    ]
    assert list(DateOverride.objects.values_list("date", flat=True)) == [dt.date(2026, 6, 1)]


@pytest.mark.django_db(transaction=True)
def test_a_charge_taken_back_by_a_routing_by_hand_survives_routing_0009(at_latest):
    """routing 0009 removes reassignment entries without a booking, but not the only ones written so: a
    lead's charge taken back by a routing by hand (``ledger_taken_back``), with the charge it takes back."""
    apps = migrate_to([("routing", "0008_member_bounds_data")])
    Rep = apps.get_model("routing", "Rep")
    ana = Rep.objects.create(name="Ana", email="ana@example.com", timezone="UTC")
    pool = apps.get_model("routing", "Pool").objects.create(
        name="P", slug="p", strategy="round_robin", fairness_period="never"
    )
    LedgerEntry = apps.get_model("routing", "LedgerEntry")
    for kind, delta, reason in (
        ("assigned", 1.0, "instant route: lead 7"),
        ("reassigned_from", -1.0, "lead #7 routed by hand to Ben on 2026-03-02 07:00 UTC: rep_unavailable"),
        ("reassigned_from", -1.0, "rep_unavailable: sick"),
        ("reassigned_to", 1.0, "rep_unavailable: sick"),
    ):
        LedgerEntry.objects.create(pool=pool, rep=ana, kind=kind, delta=delta, reason=reason)

    migrate_latest()

    from routing.models import LedgerEntry as Current

    assert sorted(Current.objects.filter(pool_id=pool.pk).values_list("kind", "reason")) == [
        ("assigned", "instant route: lead 7"),
        ("reassigned_from", "lead #7 routed by hand to Ben on 2026-03-02 07:00 UTC: rep_unavailable"),
    ]
