"""A host whose calendar Baton does not write into gets Baton's invitation by e-mail, and Gmail or Outlook
copies it into that calendar (same UID). That copy is the booking itself, not other busy time: the Google
and Microsoft syncs leave it out, as the ICS feed does, so a reschedule that overlaps the old time keeps its
host. The live check cannot tell the booking's own event from others: a host kept is asked only outside the
old time."""

from __future__ import annotations

import datetime as dt

import pytest
from calendars_harness import fixture_bytes

from booking.ics import ical_uid
from booking.models import Booking
from booking.services import booking_create, booking_reschedule
from calendars.models import BusyInterval, Calendar
from calendars.providers.microsoft import invitation_uid
from calendars.services.connections import calendar_roles_set, provider_for
from calendars.services.sync import calendar_sync
from tests.booking.booking_factories import make_meeting_type, make_pool
from tests.booking.booking_factories import make_rep as make_working_rep
from tests.calendars.test_calendars_live_booking import next_weekday_at_ten

pytestmark = pytest.mark.django_db
OWN = "booking-7-20261201T120000000000Z@book.example.com"


@pytest.fixture(autouse=True)
def uid_domain(settings):
    settings.ICAL_UID_DOMAIN = "book.example.com"


def exchange_id(uid: str) -> str:
    """The hex Global Object ID Exchange makes from another system's UID ([MS-OXOCAL] 2.2.1.27)."""
    data = b"vCal-Uid\x01\x00\x00\x00" + uid.encode() + b"\x00"
    head = bytes.fromhex("040000008200E00074C5B7101A82E008") + bytes(20)  # class id, date, time, reserved
    return (head + len(data).to_bytes(4, "little") + data).hex().upper()


def busy(rep) -> list[tuple[dt.datetime, dt.datetime]]:
    return sorted(BusyInterval.objects.filter(rep=rep).values_list("start", "end"))


def test_exchange_ids_are_read_back_to_the_invitations_uid():
    assert invitation_uid(exchange_id(OWN)) == OWN
    assert invitation_uid(OWN) == OWN
    made_by_exchange = "040000008200E00074C5B7101A82E00800000000D0E1F4D2E35ED901000000000000000010000000"
    assert invitation_uid(made_by_exchange) == made_by_exchange


def test_google_sync_leaves_out_the_copy_of_batons_invitation(make_rep, google_connection, fake_google):
    rep = make_rep()
    cal = Calendar.objects.get(connection=google_connection(rep), is_primary=True)
    start = next_weekday_at_ten().astimezone(dt.UTC)
    fake_google.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1), iCalUID=OWN)
    other = start + dt.timedelta(hours=3)
    fake_google.put_event(cal.external_id, start=other, end=other + dt.timedelta(hours=1), iCalUID="x@y.org")
    calendar_sync(calendar_id=cal.pk)
    assert busy(rep) == [(other, other + dt.timedelta(hours=1))]


def test_microsoft_sync_and_live_check_leave_out_the_copy(make_rep, ms_connection, fake_ms):
    rep = make_rep()
    connection = ms_connection(rep)
    cal = Calendar.objects.get(connection=connection, is_primary=True)
    start = next_weekday_at_ten().astimezone(dt.UTC)
    hour = dt.timedelta(hours=1)
    fake_ms.put_event(cal.external_id, start=start, end=start + hour, iCalUId=exchange_id(OWN))
    fake_ms.put_event(cal.external_id, start=start + hour, end=start + 2 * hour, iCalUId=OWN)
    other = start + 3 * hour
    fake_ms.put_event(cal.external_id, start=other, end=other + hour, iCalUId=exchange_id("x@y.org"))
    calendar_sync(calendar_id=cal.pk)
    assert busy(rep) == [(other, other + hour)]
    live = provider_for(connection).busy_in([cal.external_id], start, start + 5 * hour)
    assert live == [(other, other + hour)]


def test_a_reschedule_over_the_old_time_keeps_a_host_whose_calendar_holds_the_invitation(
    google_connection, fake_google
):
    first, second = make_working_rep("First"), make_working_rep("Second")
    connection = google_connection(first)
    cal = Calendar.objects.get(connection=connection, is_primary=True)
    calendar_roles_set(rep=first, blocking_ids={cal.pk}, receiving_id=None)  # invitations go by e-mail
    calendar_sync(calendar_id=cal.pk)
    meeting_type = make_meeting_type(make_pool("ranked", [first, second]), duration_minutes=60)
    start = next_weekday_at_ten()
    body = booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email="pat@example.org", timezone="Europe/Berlin"
    ).body
    booking = Booking.objects.get(pk=body["id"])
    assert [h["name"] for h in body["hosts"]] == ["First"]
    # Gmail puts the e-mailed invitation into First's calendar
    uid = ical_uid(booking.pk, booking.created_at)
    fake_google.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1), iCalUID=uid)
    calendar_sync(calendar_id=cal.pk)
    token = body["manage_url"].rstrip("/").rsplit("/", 1)[-1]
    moved = booking_reschedule(token=token, start=start + dt.timedelta(minutes=30))
    assert [h["name"] for h in moved["hosts"]] == ["First"]


def test_the_upgrade_makes_the_next_google_and_microsoft_syncs_full(
    make_rep, google_connection, ics_connection
):
    """Migration 0008: rows synced from invitation copies before this version go at the next (full) sync."""
    import importlib

    from django.apps import apps

    google = Calendar.objects.get(connection=google_connection(make_rep()), is_primary=True)
    feed = Calendar.objects.get(connection=ics_connection(make_rep(), fixture_bytes("google_export_xwr.ics")))
    for cal in (google, feed):
        calendar_sync(calendar_id=cal.pk)
    assert Calendar.objects.filter(window_end__isnull=True).count() == 0
    migration = importlib.import_module("calendars.migrations.0008_full_sync_for_invitation_copies")
    migration.full_sync_next(apps, None)
    google.refresh_from_db()
    feed.refresh_from_db()
    assert google.window_end is None and feed.window_end is not None


def test_a_group_reschedule_over_the_old_time_keeps_the_free_host_despite_their_own_event(
    google_connection, fake_google
):
    """The AE's calendar holds the booking's own event at the old time, and the new time overlaps it: the
    AE is asked live only outside the old time, so they keep their seat while the busy SE's is routed."""
    from calendars.models import BusyInterval

    ann, abe = make_working_rep("Ann AE"), make_working_rep("Abe AE")
    sol, sue = make_working_rep("Sol SE"), make_working_rep("Sue SE")
    for rep in (ann, abe):
        calendar_sync(calendar_id=Calendar.objects.get(connection=google_connection(rep), is_primary=True).pk)
    pool = make_pool("group", [ann, abe, sol, sue], roles=["ae", "ae", "se", "se"])
    meeting_type = make_meeting_type(pool, duration_minutes=60)
    start = next_weekday_at_ten()
    body = booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email="pat@example.org", timezone="Europe/Berlin"
    ).body
    first = {h["role"]: h["name"] for h in body["hosts"]}
    ae = ann if first["ae"] == "Ann AE" else abe
    cal = Calendar.objects.get(connection__rep=ae, is_primary=True)
    fake_google.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))  # its own event
    se = sol if first["se"] == "Sol SE" else sue
    later = start + dt.timedelta(minutes=30)
    BusyInterval.objects.create(rep=se, start=later, end=later + dt.timedelta(hours=1))
    token = body["manage_url"].rstrip("/").rsplit("/", 1)[-1]
    moved = {h["role"]: h["name"] for h in booking_reschedule(token=token, start=later)["hosts"]}
    assert moved["ae"] == first["ae"] and moved["se"] != first["se"]
