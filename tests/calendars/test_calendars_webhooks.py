"""Push: channel/subscription lifecycle and the webhook endpoints (handshakes, token checks, collapsing)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import time_machine

from calendars.models import BusyInterval, Calendar
from calendars.services.sync import calendar_sync
from calendars.services.watches import watch_ensure, watches_due
from calendars.tasks import renew_watches_task

pytestmark = pytest.mark.django_db


def primary(conn) -> Calendar:
    return Calendar.objects.get(connection=conn, is_primary=True)


def test_push_is_off_without_https(make_rep, google_connection):
    cal = primary(google_connection(make_rep()))
    assert watch_ensure(calendar_id=cal.pk) == "disabled"
    assert watches_due(now=dt.datetime.now(dt.UTC)) == []


def test_google_channel_open_renew_stop(make_rep, google_connection, fake_google, push, settings):
    cal = primary(google_connection(make_rep()))
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"
    cal.refresh_from_db()
    first_channel = cal.watch_channel_id
    assert list(fake_google.channels) == [first_channel] and cal.watch_secret_hash
    assert fake_google.channels[first_channel]["_address"] == f"{push.url}/calendars/webhooks/google"
    assert watch_ensure(calendar_id=cal.pk) == "ok"
    with time_machine.travel(
        cal.watch_expiration - dt.timedelta(hours=settings.CALENDAR_WATCH_RENEW_HOURS - 1)
    ):
        assert watches_due(now=dt.datetime.now(dt.UTC)) == [cal.pk]
        assert watch_ensure(calendar_id=cal.pk) == "renewed"
    cal.refresh_from_db()
    assert cal.watch_channel_id != first_channel
    assert list(fake_google.channels) == [cal.watch_channel_id]  # the old channel was stopped


def test_microsoft_subscription_handshake_and_patch_renewal(make_rep, ms_connection, fake_ms, push, settings):
    cal = primary(ms_connection(make_rep()))
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"  # Graph's validationToken handshake passed
    cal.refresh_from_db()
    sub_id, secret_hash = cal.watch_channel_id, cal.watch_secret_hash
    assert cal.watch_expiration < dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4231)
    with time_machine.travel(cal.watch_expiration - dt.timedelta(hours=2)):
        assert watch_ensure(calendar_id=cal.pk) == "renewed"
    cal.refresh_from_db()
    assert cal.watch_channel_id == sub_id and cal.watch_secret_hash == secret_hash  # PATCH keeps clientState
    assert len(fake_ms.requests_to("PATCH", "/v1.0/subscriptions/.*")) == 1


def test_channels_stop_when_a_calendar_stops_blocking(make_rep, google_connection, fake_google, push):
    cal = primary(google_connection(make_rep()))
    watch_ensure(calendar_id=cal.pk)
    Calendar.objects.filter(pk=cal.pk).update(blocks_availability=False)
    assert watches_due(now=dt.datetime.now(dt.UTC)) == [cal.pk]
    assert renew_watches_task() == 1  # the task queued (eagerly ran) watch_ensure
    assert fake_google.channels == {}
    assert Calendar.objects.get(pk=cal.pk).watch_channel_id == ""


def _google_headers(channel, token, state="exists"):
    return {
        "HTTP_X_GOOG_CHANNEL_ID": channel,
        "HTTP_X_GOOG_CHANNEL_TOKEN": token,
        "HTTP_X_GOOG_RESOURCE_STATE": state,
        "HTTP_X_GOOG_RESOURCE_ID": "res",
        "HTTP_X_GOOG_MESSAGE_NUMBER": "2",
    }


def test_google_webhook_checks_the_token_and_collapses(
    client, make_rep, google_connection, queued, django_capture_on_commit_callbacks
):
    cal = primary(google_connection(make_rep()))
    from calendars.services.watches import _digest

    Calendar.objects.filter(pk=cal.pk).update(watch_channel_id="chan-1", watch_secret_hash=_digest("tok-1"))
    url = "/calendars/webhooks/google"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, **_google_headers("chan-1", "tok-1", "sync")).status_code == 200
        assert queued == []  # the handshake message does not sync
        assert client.post(url, **_google_headers("chan-1", "wrong")).status_code == 403
        assert client.post(url, **_google_headers("nope", "tok-1")).status_code == 404
        for _ in range(5):
            assert client.post(url, **_google_headers("chan-1", "tok-1")).status_code == 200
    assert queued == [cal.pk]  # five notifications, one queued sync
    assert client.get(url).status_code == 405


def test_microsoft_validation_handshake_echoes_the_token(client):
    token = "Validation: Testing client application reachability for subscription Request-Id: 4b1f"
    started = time.monotonic()
    answer = client.post(
        "/calendars/webhooks/microsoft?validationToken=" + token.replace(" ", "%20").replace(":", "%3A")
    )
    assert answer.status_code == 200 and answer.content.decode() == token
    assert answer["Content-Type"].startswith("text/plain")
    assert time.monotonic() - started < 1


def test_microsoft_notifications_check_client_state(
    client, make_rep, ms_connection, queued, django_capture_on_commit_callbacks, monkeypatch
):
    from calendars.services.watches import _digest
    from calendars.tasks import watch_ensure_task

    renewals = []
    monkeypatch.setattr(watch_ensure_task, "delay", renewals.append)
    cal = primary(ms_connection(make_rep()))
    Calendar.objects.filter(pk=cal.pk).update(watch_channel_id="sub-1", watch_secret_hash=_digest("state-1"))

    def post(**item):
        return client.post(
            "/calendars/webhooks/microsoft",
            data={"value": [{"subscriptionId": "sub-1", **item}]},
            content_type="application/json",
        )

    with django_capture_on_commit_callbacks(execute=True):
        assert post(clientState="forged", changeType="updated").status_code == 202
    assert queued == []
    with django_capture_on_commit_callbacks(execute=True):
        assert post(clientState="state-1", changeType="updated").status_code == 202
        assert post(clientState="state-1", changeType="created").status_code == 202
    assert queued == [cal.pk]
    assert post(clientState="state-1", lifecycleEvent="reauthorizationRequired").status_code == 202
    assert renewals == [cal.pk]
    assert (
        client.post(
            "/calendars/webhooks/microsoft", data="not json", content_type="application/json"
        ).status_code
        == 400
    )


@pytest.mark.parametrize(
    "payload",
    ['{"value": 5}', '{"value": true}', '{"value": 1.5}', '{"value": "abc"}', '{"value": {"a": 1}}']
    + ["[]", '"x"', "null"],
)
def test_a_graph_notification_body_of_the_wrong_shape_is_400(client, payload):
    answer = client.post("/calendars/webhooks/microsoft", data=payload, content_type="application/json")
    assert answer.status_code == 400  # {"value": 5}, true and 1.5 were 500 (iterating a number)


def test_a_graph_batch_is_looked_up_in_one_query_and_odd_items_are_dropped(
    client, make_rep, ms_connection, queued, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    from calendars.services.watches import _digest

    cal = primary(ms_connection(make_rep()))
    Calendar.objects.filter(pk=cal.pk).update(watch_channel_id="sub-1", watch_secret_hash=_digest("state-1"))
    odd = [5, None, {"subscriptionId": "a\x00b", "clientState": "s"}, {"subscriptionId": {"x": 1}}]
    forged = [{"subscriptionId": f"sub-{i}", "clientState": "forged"} for i in range(500)]
    real = {"subscriptionId": "sub-1", "clientState": "state-1", "changeType": "updated"}
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(4):
        answer = client.post(
            "/calendars/webhooks/microsoft",
            data={"value": [*odd, *forged, real]},
            content_type="application/json",
        )
    assert answer.status_code == 202 and queued == [cal.pk]  # one query per item before (over 500)


def test_a_google_push_naming_a_channel_with_nul_is_unknown(client):
    answer = client.post(
        "/calendars/webhooks/google", HTTP_X_GOOG_CHANNEL_ID="a\x00b", HTTP_X_GOOG_RESOURCE_STATE="exists"
    )
    assert answer.status_code == 404  # PostgreSQL refuses NUL in text: a 500 there before


def test_end_to_end_google_push_reaches_the_app_and_the_sync_picks_up_the_change(
    make_rep, google_connection, fake_google, push, queued, transactional_db
):
    rep = make_rep()
    cal = primary(google_connection(rep))
    calendar_sync(calendar_id=cal.pk)
    watch_ensure(calendar_id=cal.pk)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    fake_google.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))  # POSTs to the app
    fake_google.put_event(
        cal.external_id, start=start + dt.timedelta(hours=2), end=start + dt.timedelta(hours=3)
    )
    exists = [n for n in fake_google.notifications if n["state"] == "exists"]
    assert [n["status"] for n in exists] == [200, 200]
    assert queued == [cal.pk]  # two pushes, one queued sync
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert BusyInterval.objects.filter(rep=rep).count() == 2


def test_end_to_end_graph_notification_reaches_the_app(
    make_rep, ms_connection, fake_ms, push, queued, transactional_db
):
    rep = make_rep()
    cal = primary(ms_connection(rep))
    calendar_sync(calendar_id=cal.pk)
    assert watch_ensure(calendar_id=cal.pk) == "subscribed"
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    fake_ms.put_event(cal.external_id, start=start, end=start + dt.timedelta(hours=1))
    (delivery,) = fake_ms.notifications
    assert delivery["status"] == 202 and delivery["seconds"] < 3  # Graph wants 2xx within 3 seconds
    assert queued == [cal.pk]
    assert calendar_sync(calendar_id=cal.pk) == "incremental"
    assert BusyInterval.objects.filter(rep=rep).count() == 1
