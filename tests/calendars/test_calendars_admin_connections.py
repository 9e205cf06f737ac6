"""The connections admin: each connection's status, last sync and last error; sync-now and refresh actions;
no way to add a connection (reps connect through OAuth or their ICS link)."""

from __future__ import annotations

import pytest

from calendars.models import Calendar, CalendarConnection
from calendars.services.sync import calendar_sync
from tests.fakes.google import FakeCalendar

pytestmark = pytest.mark.django_db
URL = "/admin/calendars/calendarconnection/"


def test_the_changelist_shows_status_last_sync_and_last_error(
    admin_client, make_rep, google_connection, fake_google
):
    good, bad = make_rep("Sam Good"), make_rep("Dana Revoked")
    good_cal = Calendar.objects.get(connection=google_connection(good), is_primary=True)
    bad_cal = Calendar.objects.get(connection=google_connection(bad), is_primary=True)
    assert calendar_sync(calendar_id=good_cal.pk) == "full"
    fake_google.revoke(bad.email)
    fake_google.expire_access_tokens()
    assert calendar_sync(calendar_id=bad_cal.pk) == "disconnected"

    page = admin_client.get(URL)
    assert page.status_code == 200
    rows = {row.rep.name: row for row in page.context["cl"].result_list}
    assert rows["Sam Good"].status == CalendarConnection.Status.CONNECTED
    assert rows["Sam Good"].last_success_at is not None and rows["Sam Good"].last_error == ""
    assert rows["Dana Revoked"].status == CalendarConnection.Status.DISCONNECTED
    html = page.content.decode()
    assert "Disconnected (reconnect needed)" in html and "invalid_grant" in html
    assert "Connected" in html

    only_bad = admin_client.get(URL, {"status__exact": "disconnected"})
    assert [row.rep.name for row in only_bad.context["cl"].result_list] == ["Dana Revoked"]
    assert admin_client.get(URL + "add/").status_code == 403


def test_sync_now_and_refresh_actions(
    admin_client, make_rep, google_connection, fake_google, queued, django_capture_on_commit_callbacks
):
    conn = google_connection(make_rep("Sam"))
    cal = Calendar.objects.get(connection=conn, is_primary=True)
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_client.post(URL, {"action": "sync_now", "_selected_action": [conn.pk]}, follow=True)
    assert answer.status_code == 200 and "Queued 1 calendar sync(s)." in answer.content.decode()
    assert queued == [cal.pk]
    assert Calendar.objects.get(pk=cal.pk).sync_requested_at is not None

    account = fake_google.accounts[conn.account_email]
    team = "team@group.calendar.google.com"
    account.calendars[team] = FakeCalendar(team, "Team")
    answer = admin_client.post(
        URL, {"action": "refresh_calendars", "_selected_action": [conn.pk]}, follow=True
    )
    assert answer.status_code == 200
    names = set(Calendar.objects.filter(connection=conn).values_list("name", flat=True))
    assert "Team" in names  # the new calendar was listed
    assert not Calendar.objects.get(connection=conn, name="Team").blocks_availability  # only primary blocks
