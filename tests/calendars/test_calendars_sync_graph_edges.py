"""Google / Microsoft sync edges: a Graph 401 refreshes before it disconnects, hidden Google calendars stay,
Graph @removed is confirmed for Baton's own events, and a delta round counts an event's last entry."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.core import mail

from calendars.models import BookingEvent, BusyInterval, Calendar, CalendarConnection
from calendars.services.connections import calendar_roles_set, calendars_refresh
from calendars.services.sync import calendar_sync
from calendars.services.writeback import booking_events_sync
from tests.calendars.calendars_harness import primary, reschedule
from tests.fakes.http import json_response

pytestmark = pytest.mark.django_db
UTC = dt.UTC
Status = CalendarConnection.Status


def hour(days: float = 2) -> dt.datetime:
    return dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=days)


def test_a_graph_access_token_refused_early_refreshes_instead_of_disconnecting_the_rep(
    make_rep, ms_connection, fake_ms
):
    """Graph answers 401 for an access token MSAL still holds as valid (a worker clock a few minutes slow,
    a token Microsoft dropped early) while the refresh token is fine. Baton takes any Graph 401 for a
    revoked grant: the connection is marked disconnected, the rep is withheld from every booking page and
    e-mailed to reconnect, although a silent refresh would have worked (Google's client refreshes on 401)."""
    rep = make_rep()
    cal = primary(ms_connection(rep))
    start = hour()
    fake_ms.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    fake_ms.expire_access_tokens()  # Graph no longer takes the cached token; the grant itself is intact
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert CalendarConnection.objects.get(pk=cal.connection_id).status == Status.CONNECTED
    assert mail.outbox == []


def _google_lists_hidden_only_on_request(fake_google, hidden: set[str]) -> None:
    """calendarList.list as Google documents it: ``showHidden`` defaults to false, so calendars the user hid
    from the list in Google Calendar's sidebar are left out unless asked for."""
    for i, (method, rx, handler) in enumerate(fake_google.routes):
        if method == "GET" and rx.pattern.endswith("/users/me/calendarList$"):

            def listing(req, handler=handler):
                resp = handler(req)
                page = json.loads(resp.body)
                show = req.query.get("showHidden") == "true"
                items = []
                for item in page.get("items", []):
                    if item["id"] in hidden:
                        if not show:
                            continue
                        item = {**item, "hidden": True}
                    items.append(item)
                return json_response(200, {**page, "items": items})

            fake_google.routes[i] = (method, rx, listing)


def test_a_blocking_google_calendar_hidden_in_the_sidebar_keeps_blocking(
    make_rep, google_connection, fake_google
):
    """A rep ticks a second Google calendar ("Onsite") as blocking, then hides it from the list in Google
    Calendar's sidebar. calendarList.list leaves hidden calendars out unless showHidden=true, so the next
    calendar-list refresh deletes the calendar in Baton with all its busy times: prospects book the rep's
    onsite days."""
    rep = make_rep()
    conn = google_connection(rep, extra_calendars=("Onsite",))
    main = primary(conn)
    onsite = Calendar.objects.get(connection=conn, is_primary=False)
    calendar_roles_set(rep=rep, blocking_ids={main.pk, onsite.pk}, receiving_id=main.pk)
    start = hour(3)
    fake_google.put_event(onsite.external_id, start=start, end=start + dt.timedelta(hours=8))
    assert calendar_sync(calendar_id=onsite.pk) == "full"
    assert BusyInterval.objects.filter(rep=rep).count() == 1
    _google_lists_hidden_only_on_request(fake_google, {onsite.external_id})
    calendars_refresh(connection_id=conn.pk)  # the daily refresh of calendar lists
    assert Calendar.objects.filter(pk=onsite.pk, blocks_availability=True).exists()
    assert list(BusyInterval.objects.filter(rep=rep).values_list("start", "end")) == [
        (start, start + dt.timedelta(hours=8))
    ]


def test_batons_graph_event_moved_past_the_delta_window_is_not_reported_as_deleted_by_the_host(
    make_rep, ms_connection, fake_ms, make_booking, mailoutbox
):
    """The Graph delta link covers the window of the last full sync, rolled only weekly. A booking moved to
    a time inside Baton's sync horizon but past that older window end leaves the delta's view, and Graph
    reports Baton's own (updated) event as ``@removed`` (it does so for any create or edit outside a
    calendarView delta's range: microsoft-graph-docs issues 6599, 4258). Baton takes it for the host
    deleting the meeting: the booking is flagged "host removed it" and the admins are e-mailed to reassign
    or cancel a meeting that is in the host's calendar."""
    t0 = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with time_machine.travel(t0, tick=True):
        rep = make_rep()
        cal = primary(ms_connection(rep))
        assert cal.receives_bookings and cal.blocks_availability
        assert calendar_sync(calendar_id=cal.pk) == "full"  # delta window: [t0 - 1 day, t0 + 180 days]
    with time_machine.travel(t0 + dt.timedelta(days=6), tick=True):  # no weekly roll yet
        booking = make_booking(rep, start=t0 + dt.timedelta(days=178))  # inside both windows
        assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
        assert calendar_sync(calendar_id=cal.pk) == "incremental"
        reschedule(booking, 24 * 4)  # day 182 from t0: 176 days from now, inside Baton's 180-day horizon
        assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "updated"}
        assert calendar_sync(calendar_id=cal.pk) == "incremental"
    event = BookingEvent.objects.get(booking=booking)
    assert event.host_removed_at is None
    assert [m.subject for m in mailoutbox] == []


def test_a_graph_event_changed_then_removed_in_one_delta_round_stops_blocking(
    make_rep, ms_connection, fake_ms
):
    """Graph documents that a delta round may return the same event more than once; the later entry is its
    newer state. A meeting moved (page 1) and then deleted (page 2) within one round is applied upserts-first
    whatever the order: Baton keeps the moved meeting as busy time, a phantom that hides the rep's slots
    until the weekly full resync."""
    rep = make_rep()
    cal = primary(ms_connection(rep))
    start = hour()
    event = fake_ms.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    moved = {k: v for k, v in event.items() if not k.startswith("_")}
    for key, hours in (("start", 3), ("end", 4)):
        naive = (start + dt.timedelta(hours=hours)).replace(tzinfo=None)
        moved[key] = {"dateTime": naive.isoformat(), "timeZone": "UTC"}
    fake_ms.delete_event(cal.external_id, event["id"], notify=False)  # its state at the end of the round
    base = f"{fake_ms.graph}/me/calendars/{cal.external_id}/calendarView/delta"
    seen: dict[str, str] = {}
    for i, (method, rx, handler) in enumerate(fake_ms.routes):
        if method == "GET" and "/calendarView/delta" in rx.pattern:

            def replaying(req, handler=handler):
                if "$deltatoken" in req.query and "token" not in seen:
                    seen["token"] = req.query["$deltatoken"]
                    return json_response(200, {"value": [moved], "@odata.nextLink": f"{base}?$skiptoken=two"})
                if req.query.get("$skiptoken") == "two":
                    removed = {
                        "@odata.type": "#microsoft.graph.event",
                        "id": event["id"],
                        "@removed": {"reason": "deleted"},
                    }
                    link = f"{base}?$deltatoken={seen['token']}"
                    return json_response(200, {"value": [removed], "@odata.deltaLink": link})
                return handler(req)

            fake_ms.routes[i] = (method, rx, replaying)
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert list(BusyInterval.objects.filter(rep=rep).values_list("start", "end")) == []


def test_a_graph_401_after_a_forced_refresh_still_disconnects(make_rep, ms_connection, fake_ms):
    """The refresh on a 401 is tried once: Graph refusing the freshly refreshed token too is a lost grant."""
    rep = make_rep()
    cal = primary(ms_connection(rep))
    assert calendar_sync(calendar_id=cal.pk) == "full"
    body = b'{"error": {"code": "InvalidAuthenticationToken", "message": "Access token is invalid."}}'
    fake_ms.add_fault("GET", "/v1.0/me/calendars/[^/]+/calendarView/delta", status=401, body=body, times=-1)
    refreshes = len(fake_ms.requests_to("POST", ".*/oauth2/v2.0/token"))
    assert calendar_sync(calendar_id=cal.pk) == "disconnected"
    assert len(fake_ms.requests_to("POST", ".*/oauth2/v2.0/token")) == refreshes + 1
    assert len(fake_ms.requests_to("GET", "/v1.0/me/calendars/[^/]+/calendarView/delta")) == 3
    assert CalendarConnection.objects.get(pk=cal.connection_id).status == Status.DISCONNECTED


def test_graph_removals_are_confirmed_only_for_batons_own_events(
    make_rep, ms_connection, fake_ms, make_booking, mailoutbox
):
    """A host deleting their own meeting costs no extra request; Baton's event they deleted is read (404)
    and the booking flagged."""
    rep = make_rep()
    cal = primary(ms_connection(rep))
    start = hour()
    mine = fake_ms.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))
    booking = make_booking(rep, start=hour(3))
    assert booking_events_sync(booking_id=booking.pk) == {rep.pk: "created"}
    assert calendar_sync(calendar_id=cal.pk) == "full"
    fake_ms.delete_event(cal.external_id, mine["id"], notify=False)
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    gets = "/v1.0/me/calendars/[^/]+/events/[^/]+"
    assert fake_ms.requests_to("GET", gets) == [] and BusyInterval.objects.filter(rep=rep).count() == 0
    event = BookingEvent.objects.get(booking=booking)
    fake_ms.delete_event(cal.external_id, event.external_event_id, notify=False)
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert len(fake_ms.requests_to("GET", gets)) == 1
    event.refresh_from_db()
    assert event.host_removed_at is not None and len(mailoutbox) == 1


def test_a_hidden_google_calendar_is_listed_with_show_hidden(make_rep, google_connection, fake_google):
    """The fake's own ``hidden`` flag (as Google's calendarList.list answers): Baton keeps the calendar."""
    rep = make_rep()
    conn = google_connection(rep, extra_calendars=("Onsite",))
    onsite = Calendar.objects.get(connection=conn, is_primary=False)
    fake_google.calendar(onsite.external_id).hidden = True
    calendars_refresh(connection_id=conn.pk)
    assert Calendar.objects.filter(pk=onsite.pk).exists()
    assert all(r.query.get("showHidden") == "true" for r in fake_google.requests_to("GET", ".*/calendarList"))
