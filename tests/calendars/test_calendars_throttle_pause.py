"""Google and Microsoft pushing back, beyond tests/calendars/test_calendars_throttle.py: a calendar paused by
a provider's Retry-After is not synced again before it (pushes meanwhile call nothing), and a first calendar
listing refused is recorded on the connection and tried again with back-off."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from calendars.models import CalendarConnection
from calendars.services.sync import calendar_sync
from tests.calendars.test_calendars_throttle import GRAPH_429, MS_DELTA, primary

pytestmark = pytest.mark.django_db
Status = CalendarConnection.Status


def test_a_push_during_graphs_retry_after_does_not_call_graph_again(
    make_rep, ms_connection, fake_ms, monkeypatch, django_capture_on_commit_callbacks
):
    """A sync throttled with ``Retry-After: 120`` fails (longer than the 30 s in-worker cap), and the pause
    asked for is dropped (``ProviderUnavailable.retry_after`` is read by nothing). A change notification 10 s
    later queues a sync that asks Graph again at once, 110 s early: every push of a busy mailbox keeps the
    tenant throttled."""
    import time_machine

    from calendars.services.sync import request_sync

    cal = primary(ms_connection(make_rep()))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    fake_ms.add_fault("GET", MS_DELTA, status=429, times=-1, headers={"Retry-After": "120"}, body=GRAPH_429)
    throttled_at = timezone.now()
    with time_machine.travel(throttled_at, tick=False):
        assert calendar_sync(calendar_id=cal.pk) == "failed"
    asked = len(fake_ms.requests_to("GET", MS_DELTA))
    queued = []
    monkeypatch.setattr("calendars.services.sync._enqueue", queued.append)
    with time_machine.travel(throttled_at + dt.timedelta(seconds=10), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            request_sync(calendar_id=cal.pk)  # what the webhook does for a change notification
        for calendar_id in list(queued):
            calendar_sync(calendar_id=calendar_id)
    assert len(fake_ms.requests_to("GET", MS_DELTA)) == asked, "Graph asked again 110 s before Retry-After"


def test_a_throttled_first_calendar_listing_is_recorded_on_the_connection(make_rep, fake_google):
    """Connecting while Google rate-limits the calendar list (403 ``rateLimitExceeded``, still refused after
    the client's retries): the page says "Connected, but the calendars could not be listed yet", and the
    connection stays ``connected`` with no ``last_error`` — yet the rep is withheld from every booking page
    (no first listing: ``last_success_at`` empty) until the daily list refresh. The admin's connection list
    shows nothing wrong; the failure table promises ``error`` and ``last_error`` for a throttled provider."""
    from calendars.errors import ProviderUnavailable
    from calendars.selectors import withheld_rep_ids
    from calendars.services.connections import calendars_refresh, connection_create

    rep = make_rep()
    fake_google.add_account(rep.email, time_zone=rep.timezone)
    tokens = fake_google.issue_tokens(rep.email)
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=tokens["expires_in"])).isoformat()
    secrets = {"token": tokens["access_token"], "refresh_token": tokens["refresh_token"], "expiry": expiry}
    conn = connection_create(
        rep=rep, provider=CalendarConnection.Provider.GOOGLE, secrets=secrets, account_email=rep.email
    )
    fake_google.add_fault(
        "GET",
        r"/calendar/v3/users/me/calendarList",
        status=403,
        times=-1,
        body=b'{"error": {"code": 403, "message": "Rate Limit Exceeded", "errors": '
        b'[{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "Rate Limit Exceeded"}]}}',
    )
    with pytest.raises(ProviderUnavailable):
        calendars_refresh(connection_id=conn.pk)  # what the OAuth callback's ``_after_connect`` does
    assert withheld_rep_ids([rep.pk], now=timezone.now()) == {rep.pk}
    conn.refresh_from_db()
    assert (conn.status, "403" in conn.last_error or "rate" in conn.last_error.lower()) == (
        Status.ERROR,
        True,
    ), (conn.status, conn.last_error)
