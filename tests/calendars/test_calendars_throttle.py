"""Google and Microsoft pushing back (429, 403 rate limits, 5xx, Retry-After): the syncs, the
webhook-triggered syncs and the calendar write-back must wait as long as asked, never storm, and say in
words an admin understands what happened."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from calendars.errors import CalendarWriteFailed
from calendars.models import Calendar, CalendarConnection
from calendars.services.sync import calendar_sync
from calendars.services.writeback import booking_events_sync
from tests.calendars.calendars_harness import ms_events

pytestmark = pytest.mark.django_db
Status = CalendarConnection.Status
INSERT = r"/calendar/v3/calendars/[^/]+/events"
GOOGLE_LIST = r"/calendar/v3/calendars/[^/]+/events"
MS_CREATE = r"/v1.0/me/calendars/[^/]+/events"
MS_DELTA = r"/v1.0/me/calendars/[^/]+/calendarView/delta"
GRAPH_429 = b'{"error": {"code": "TooManyRequests", "message": "Please retry again later."}}'
GOOGLE_503 = b'{"error": {"code": 503, "message": "Backend Error", "errors": [{"reason": "backendError"}]}}'
# RFC 9110 10.2.3: Retry-After is delay-seconds OR an HTTP-date
HTTP_DATE = "Wed, 21 Oct 2037 07:28:00 GMT"


def primary(conn) -> Calendar:
    return Calendar.objects.get(connection=conn, is_primary=True)


def outbox_row(booking, django_capture_on_commit_callbacks):
    from booking import outbox as booking_outbox
    from calendars import outbox

    outbox.register(booking_outbox.register_handler)  # what BookingConfig.ready does at start-up
    with django_capture_on_commit_callbacks(execute=False):
        rows = booking_outbox.emit("booking.confirmed", booking)
    (row,) = [r for r in rows if r.handler == "calendars.outbox.write_booking_to_calendars"]
    return row


def test_a_graph_write_throttled_for_two_minutes_is_not_retried_after_thirty_seconds(
    settings, make_rep, ms_connection, fake_ms, make_booking, django_capture_on_commit_callbacks
):
    """Graph answers the create 429 with ``Retry-After: 120``: the provider gives up at once (longer than its
    30 s in-worker cap), the outbox records a failed attempt, and schedules the next one 30 s later
    (``backoff_seconds(1)``): Graph is asked again 90 s before it said it would accept the request."""
    from booking import outbox as booking_outbox

    settings.BOOKING_OUTBOX_GRACE_SECONDS = 0
    settings.BOOKING_OUTBOX_LEASE_SECONDS = 60
    rep = make_rep()
    conn = ms_connection(rep)
    booking = make_booking(rep)
    row = outbox_row(booking, django_capture_on_commit_callbacks)
    fake_ms.add_fault("POST", MS_CREATE, status=429, times=-1, headers={"Retry-After": "120"}, body=GRAPH_429)
    now = timezone.now()
    assert booking_outbox.deliver(message_id=row.pk, now=now) == "retry"
    assert len(fake_ms.requests_to("POST", MS_CREATE)) == 1  # not retried within the attempt (120 s > 30 s)
    row.refresh_from_db()
    assert row.next_attempt_at >= now + dt.timedelta(seconds=120), (
        f"retried {(row.next_attempt_at - now).total_seconds():.0f} s later; Graph asked for 120 s"
    )
    fake_ms.clear_faults()
    assert booking_outbox.deliver(message_id=row.pk, now=row.next_attempt_at) == "delivered"
    assert len(ms_events(fake_ms, conn)) == 1


def test_a_throttled_write_says_why_in_the_outbox_error(
    settings, make_rep, ms_connection, fake_ms, make_booking, django_capture_on_commit_callbacks
):
    """The outbox row is what an admin sees of a failing write-back (admin *Outbox*, its ``last_error``):
    it reads ``CalendarWriteFailed: calendar write failed for reps [7]`` — no provider, no status, nothing
    saying Microsoft is throttling and the write will be retried; the cause is only in a log line."""
    from booking import outbox as booking_outbox

    settings.BOOKING_OUTBOX_GRACE_SECONDS = 0
    rep = make_rep()
    ms_connection(rep)
    booking = make_booking(rep)
    row = outbox_row(booking, django_capture_on_commit_callbacks)
    fake_ms.add_fault("POST", MS_CREATE, status=429, times=-1, headers={"Retry-After": "120"}, body=GRAPH_429)
    assert booking_outbox.deliver(message_id=row.pk) == "retry"
    row.refresh_from_db()
    error = row.last_error
    assert "429" in error or "throttl" in error.lower(), error


def test_a_google_retry_after_given_as_a_date_does_not_skip_the_other_hosts(
    make_rep, google_connection, ms_connection, fake_google, fake_ms, make_booking
):
    """Google's 503 carries ``Retry-After`` as an HTTP-date (allowed by HTTP): ``float()`` of it raises
    ValueError in ``GoogleProvider._execute``, which is no ``CalendarError``, so ``_sync_once`` stops at the
    lead: the co-host's calendar is never written and the outbox records a bare ValueError, against "any
    host failing raises CalendarWriteFailed after all hosts were tried"."""
    lead, co_host = make_rep(), make_rep()
    google_connection(lead)
    co_conn = ms_connection(co_host)
    fake_google.add_fault(
        "POST", INSERT, status=503, times=-1, headers={"Retry-After": HTTP_DATE}, body=GOOGLE_503
    )
    booking = make_booking(lead, co_host)
    with pytest.raises(CalendarWriteFailed) as failure:
        booking_events_sync(booking_id=booking.pk)
    assert failure.value.details["outcome"] == {
        lead.pk: "failed: provider_unavailable",
        co_host.pk: "created",
    }
    assert len(ms_events(fake_ms, co_conn)) == 1


def test_a_google_503_with_a_dated_retry_after_is_reported_as_unavailable_not_unreadable(
    make_rep, google_connection, fake_google
):
    """The same date-form ``Retry-After`` on a sync: the calendar's and connection's ``last_error`` say "The
    calendar's data could not be read (ValueError); the error is logged." and a traceback is logged at
    ERROR — an admin is sent looking for bad data when Google was merely down for a while."""
    rep = make_rep()
    cal = primary(google_connection(rep))
    fake_google.add_fault(
        "GET", GOOGLE_LIST, status=503, times=-1, headers={"Retry-After": HTTP_DATE}, body=GOOGLE_503
    )
    assert calendar_sync(calendar_id=cal.pk) == "failed"
    cal.refresh_from_db()
    assert "503" in cal.last_error and "could not be read" not in cal.last_error, cal.last_error
    assert CalendarConnection.objects.get(pk=cal.connection_id).status == Status.ERROR


def test_graph_backoff_without_retry_after_is_jittered_across_calendars(
    make_rep, ms_connection, fake_ms, monkeypatch
):
    """Graph's 503 without ``Retry-After``: ``_retry_after`` falls back to exactly 1 s, 2 s, 4 s. The
    calendars of one tenant that were throttled together all come back at the same instants (a retry
    storm that keeps the tenant throttled); an exponential back-off needs jitter."""
    from calendars.providers import microsoft

    waits: list[float] = []
    monkeypatch.setattr(microsoft.time, "sleep", waits.append)
    reps = [make_rep() for _ in range(3)]
    calendars = [primary(ms_connection(rep)) for rep in reps]
    unavailable = b'{"error": {"code": "ServiceUnavailable"}}'
    fake_ms.add_fault("GET", MS_DELTA, status=503, times=-1, body=unavailable)
    per_calendar = []
    for cal in calendars:
        waits.clear()
        assert calendar_sync(calendar_id=cal.pk) == "failed"
        per_calendar.append(tuple(waits))
    assert all(len(w) == 3 for w in per_calendar), per_calendar
    assert len(set(per_calendar)) == len(per_calendar), f"every calendar waits {per_calendar[0]}"


def test_a_graph_504_is_not_reported_as_throttling(make_rep, ms_connection, fake_ms, monkeypatch):
    """A 504 Gateway Timeout is Graph not answering in time, not Baton being throttled; ``last_error`` says
    "Microsoft Graph throttled the request (HTTP 504)", so an admin looks for a request quota problem."""
    from calendars.providers import microsoft

    monkeypatch.setattr(microsoft.time, "sleep", lambda seconds: None)
    cal = primary(ms_connection(make_rep()))
    fake_ms.add_fault("GET", MS_DELTA, status=504, times=-1, body=b'{"error": {"code": "GatewayTimeout"}}')
    assert calendar_sync(calendar_id=cal.pk) == "failed"
    cal.refresh_from_db()
    assert "504" in cal.last_error and "throttl" not in cal.last_error.lower(), cal.last_error
