"""Push channels and reconnects at their edges: malformed webhook bodies, a broker that is down, channels
opened by two runs at once or while the rep disconnects, calendars leaving the account's list, and a rep
reconnecting on their page, and a renewal that records the new channel before it stops the old. Each test
failed before its fix."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import time_machine

from booking.models import Booking, BookingHost
from calendars.models import BookingEvent, Calendar, CalendarConnection
from calendars.providers.google import GoogleProvider
from calendars.services.connections import calendars_refresh, connection_delete
from calendars.services.sync import calendar_sync
from calendars.services.watches import _digest, watch_ensure
from calendars.services.writeback import booking_events_sync
from tests.calendars.calendars_harness import primary

pytestmark = pytest.mark.django_db
GRAPH_HOOK = "/calendars/webhooks/microsoft"


# --- webhooks: malformed bodies must be 4xx, never 500


def test_a_deeply_nested_graph_body_is_a_400_not_a_500(client):
    """Anyone on the internet can POST to the public Graph webhook. A 200 kB body of nested brackets
    (``{"value": [[[[...]]]]}``, far below the upload limit) makes ``json.loads`` raise RecursionError,
    which ``calendars/webhooks.py`` does not catch (only ``ValueError``): the endpoint answers 500 and
    every such request mailed a traceback to the admins. A body that is not a notification is a 400, like
    the other malformed bodies."""
    client.raise_request_exception = False
    depth = 100_000
    body = '{"value": ' + "[" * depth + "]" * depth + "}"
    answer = client.post(GRAPH_HOOK, data=body, content_type="application/json")
    assert answer.status_code == 400


def test_a_graph_lifecycle_notification_with_the_broker_down_is_still_accepted_and_synced(
    client, make_rep, ms_connection, queued, django_capture_on_commit_callbacks, monkeypatch
):
    """With the Celery broker unreachable, a genuine ``subscriptionRemoved`` lifecycle notification made
    the Graph webhook answer 500: queueing the resubscription raised out of the view (the sync request
    beside it tolerates a broker outage). The subscription was already forgotten and the catch-up sync
    never requested, so Graph's retry matched no calendar and was dropped. Now: 202 and a queued sync, the
    resubscription left to the renewal sweep (``calendars.tasks.enqueue``)."""
    from kombu.exceptions import OperationalError

    from calendars.tasks import watch_ensure_task

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(watch_ensure_task, "delay", broker_down)
    cal = primary(ms_connection(make_rep()))
    Calendar.objects.filter(pk=cal.pk).update(watch_channel_id="sub-1", watch_secret_hash=_digest("state-1"))
    client.raise_request_exception = False
    item = {"subscriptionId": "sub-1", "clientState": "state-1", "lifecycleEvent": "subscriptionRemoved"}
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(GRAPH_HOOK, data={"value": [item]}, content_type="application/json")
    assert answer.status_code == 202
    assert queued == [cal.pk]


def test_saving_calendar_choices_with_the_broker_down_is_not_a_server_error(
    client, make_rep, google_connection, monkeypatch
):
    """With the broker unreachable, a rep who ticked a calendar and pressed Save got a 500 page although
    their choices were saved: queueing the push channel raised. The renewal sweep opens the channel later;
    the rep gets the normal redirect."""
    from django.contrib.auth import get_user_model
    from kombu.exceptions import OperationalError

    from calendars.tasks import watch_ensure_task

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    conn = google_connection(make_rep("Dana", user=user), extra_calendars=("Team",))
    team = Calendar.objects.get(connection=conn, is_primary=False)
    main = primary(conn)
    monkeypatch.setattr(watch_ensure_task, "delay", broker_down)
    client.force_login(user)
    client.raise_request_exception = False
    answer = client.post(
        "/calendars/roles", {"blocks": [str(main.pk), str(team.pk)], "receives": str(main.pk)}
    )
    assert Calendar.objects.get(pk=team.pk).blocks_availability  # saved
    assert answer.status_code == 302


# --- channel lifecycle


def test_two_concurrent_renewals_of_one_google_channel_leave_no_orphan_channel(
    make_rep, google_connection, fake_google, push, settings, monkeypatch
):
    """Two renewals of one channel at once (the 30-minute *renew push channels* sweep and the rep saving
    their calendar choices, which queues ``watch_ensure`` for every calendar) each opened a new Google
    channel, and the calendar row kept only the last one written: the other was never stopped, and for up
    to 7 days Google posted every change to Baton, answered 404. The channel is now recorded only over the
    one the run started from; the run that lost stops the channel it opened. Simulated by letting the
    second renewal run while the first is between events.watch and its database write."""
    cal = primary(google_connection(make_rep()))
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"
    cal.refresh_from_db()
    original = GoogleProvider.subscribe
    calls = {"n": 0}

    def subscribe(self, *args, **kwargs):
        watch = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # a second worker renews the same calendar at this moment
            assert watch_ensure(calendar_id=cal.pk) == "renewed"
        return watch

    monkeypatch.setattr(GoogleProvider, "subscribe", subscribe)
    renew_at = cal.watch_expiration - dt.timedelta(hours=settings.CALENDAR_WATCH_RENEW_HOURS - 1)
    with time_machine.travel(renew_at):
        assert watch_ensure(calendar_id=cal.pk) == "superseded"
    cal.refresh_from_db()
    assert list(fake_google.channels) == [cal.watch_channel_id], "a channel nobody will ever stop"


def test_a_rep_disconnecting_while_a_channel_opens_leaves_no_channel_behind(
    make_rep, google_connection, fake_google, push, monkeypatch
):
    """A channel being opened (after the rep ticked a calendar, or on connecting) while the rep presses
    *Disconnect*: the disconnect stops the channels it finds (none yet) and deletes the calendar; the
    channel just opened was then forgotten, pushing to Baton (404s) until it expired 7 days later, although
    the page promises that Disconnect stops push channels. The run finds its row gone and stops it.

    The disconnect also revokes the Google grant once committed; here that is only recorded, not done at
    the fake: a revoked grant's token cannot stop the channel any more, and whether Google goes on pushing
    a revoked grant's channel until it expires is not documented (docs/calendars.md, Disconnect)."""
    from calendars.providers import google_auth

    revoked = []
    monkeypatch.setattr(google_auth, "revoke_grant", lambda token, **kw: revoked.append(token))
    conn = google_connection(make_rep())
    cal = primary(conn)
    original = GoogleProvider.subscribe

    def subscribe(self, *args, **kwargs):
        watch = original(self, *args, **kwargs)
        connection_delete(connection=CalendarConnection.objects.get(pk=conn.pk))  # the rep disconnects
        return watch

    monkeypatch.setattr(GoogleProvider, "subscribe", subscribe)
    watch_ensure(calendar_id=cal.pk)
    assert not Calendar.objects.filter(pk=cal.pk).exists()
    assert fake_google.channels == {}, "the disconnected calendar's channel is still open at Google"
    assert len(revoked) == 1


def test_a_calendar_gone_from_the_list_has_its_push_channel_stopped(
    make_rep, google_connection, fake_google, push
):
    """A rep blocks their time with a shared "Team" calendar (a push channel is opened on it), then removes
    it from their Google calendar list. The daily *refresh calendar lists* (or *Refresh*) deleted the
    Calendar row without ``channels.stop``: the channel lived on for up to 7 days, every change of the team
    calendar pushed to Baton and answered 404. Like Disconnect and "stops blocking", it is stopped now."""
    rep = make_rep()
    conn = google_connection(rep, extra_calendars=("Team",))
    team = Calendar.objects.get(connection=conn, is_primary=False)
    Calendar.objects.filter(pk=team.pk).update(blocks_availability=True)
    assert watch_ensure(calendar_id=team.pk) == "subscribed"
    team.refresh_from_db()
    assert team.watch_channel_id in fake_google.channels
    fake_google.accounts[rep.email].calendars.pop(team.external_id)  # removed from the rep's list
    calendars_refresh(connection_id=conn.pk)
    assert not Calendar.objects.filter(pk=team.pk).exists()
    assert team.watch_channel_id not in fake_google.channels, "the vanished calendar's channel still runs"


# --- a rep reconnecting through the calendar page


def path_and_query(url: str) -> str:
    parts = requests.utils.urlparse(url)
    return f"{parts.path}?{parts.query}"


def test_reconnecting_on_the_calendar_page_removes_a_meeting_cancelled_while_the_grant_was_revoked(
    client, google_connection, fake_google
):
    """A booking is cancelled while its host's Google grant is revoked: the write-back keeps the event
    "pending" for ``connection_events_resync`` when the rep reconnects. But the real reconnect, the OAuth
    callback of the rep's calendar page (``views._after_connect``), only listed calendars, synced and
    opened channels: the cancelled meeting stayed in the rep's Google calendar for good (the prospect's
    invitation too). The callback queues the resync now."""
    from django.contrib.auth import get_user_model

    from routing.models import Rep
    from tests.calendars.test_calendars_removed_events import booked

    booking, cal = booked(google_connection)
    rep = booking.hosts.get().rep
    user = get_user_model().objects.create_user("ana", "ana@example.com", "pw-ana-123")
    Rep.objects.filter(pk=rep.pk).update(user=user)
    written = BookingEvent.objects.get(booking=booking).external_event_id
    fake_google.revoke(rep.email)
    fake_google.expire_access_tokens()
    assert calendar_sync(calendar_id=cal.pk) == "disconnected"
    Booking.objects.filter(pk=booking.pk).update(
        status=Booking.Status.CANCELLED, sequence=booking.sequence + 1
    )
    BookingHost.objects.filter(booking=booking).update(active=False, released=BookingHost.Released.CANCELLED)
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "pending"}

    client.force_login(user)  # the rep reconnects the same account on their calendar page
    fake_google.signed_in_as = rep.email
    start = client.post("/calendars/connect/google")
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    done = client.get(path_and_query(consent.headers["Location"]))
    assert done.status_code == 302
    assert CalendarConnection.objects.get(pk=cal.connection_id).status == "connected"
    assert fake_google.calendar(cal.external_id).events[written]["status"] == "cancelled", (
        "the meeting cancelled while the grant was revoked is still in the host's calendar"
    )
    assert BookingEvent.objects.get(booking=booking).state == BookingEvent.State.CANCELLED


def test_a_renewed_google_channel_is_recorded_before_the_old_one_is_stopped(
    make_rep, google_connection, fake_google, push, settings, monkeypatch
):
    """Google channels cannot be extended: a renewal opens a new one and stops the old. It stopped the old
    one first, inside the provider call, and recorded the new one after: a change pushed on the new channel
    meanwhile came on a channel Baton did not know (404) while the old channel was already stopped, and it
    waited for the next poll. The old channel is stopped once the new one is recorded."""
    cal = primary(google_connection(make_rep()))
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"
    cal.refresh_from_db()
    old = cal.watch_channel_id
    seen = []
    original = GoogleProvider.unsubscribe

    def unsubscribe(self, watch):
        seen.append((watch.channel_id, Calendar.objects.get(pk=cal.pk).watch_channel_id))
        return original(self, watch)

    monkeypatch.setattr(GoogleProvider, "unsubscribe", unsubscribe)
    renew_at = cal.watch_expiration - dt.timedelta(hours=settings.CALENDAR_WATCH_RENEW_HOURS - 1)
    with time_machine.travel(renew_at):
        assert watch_ensure(calendar_id=cal.pk) == "renewed"
    cal.refresh_from_db()
    assert seen == [(old, cal.watch_channel_id)], "the old channel was stopped before the new one was known"
    assert list(fake_google.channels) == [cal.watch_channel_id]
