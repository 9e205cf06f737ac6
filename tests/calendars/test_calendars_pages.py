"""The rep's calendar page (OAuth connect flows, ICS, choices, disconnect), the admin, and secrets handling:
tokens encrypted at rest, rotated by a command, and never shown in logs, admin pages or reprs."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from calendars.crypto import decrypt_secrets, encrypt_secrets
from calendars.errors import TokenKeyMissing
from calendars.models import Calendar, CalendarConnection
from calendars.services.sync import calendar_sync

pytestmark = pytest.mark.django_db


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def connect_google(rep_client, fake_google, email="dana@work.example"):
    fake_google.add_account(email, extra_calendars=("Team",))
    fake_google.signed_in_as = email
    start = rep_client.post("/calendars/connect/google")
    assert start.status_code == 302
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)  # the user clicks "Allow"
    return start, rep_client.get(path_and_query(consent.headers["Location"]))


def test_google_connect_flow(rep_client, fake_google):
    start, done = connect_google(rep_client, fake_google)
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
    assert query["code_challenge_method"] == ["S256"] and query["include_granted_scopes"] == ["true"]
    assert "https://www.googleapis.com/auth/calendar.events" in query["scope"][0].split()
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/calendars/oauth/google/callback"]
    assert done.status_code == 302 and done["Location"] == "/calendars/"
    conn = CalendarConnection.objects.get(rep=rep_client.rep)
    assert conn.provider == "google" and conn.account_email == "dana@work.example"
    secrets = decrypt_secrets(conn.secret_blob)
    assert secrets["refresh_token"] in fake_google.refresh_tokens
    assert secrets["refresh_token"] not in conn.secret_blob and secrets["token"] not in conn.secret_blob
    names = sorted(Calendar.objects.filter(connection=conn).values_list("name", "blocks_availability"))
    assert names == [("Team", False), ("dana@work.example", True)]
    page = rep_client.get("/calendars/")
    assert page.status_code == 200 and b"dana@work.example" in page.content and b"Team" in page.content


def test_reconnecting_the_same_account_replaces_the_grant(rep_client, fake_google):
    connect_google(rep_client, fake_google)
    conn = CalendarConnection.objects.get(rep=rep_client.rep)
    CalendarConnection.objects.filter(pk=conn.pk).update(status="disconnected", last_error="invalid_grant")
    fake_google.signed_in_as = "dana@work.example"
    start = rep_client.post("/calendars/connect/google")
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    rep_client.get(path_and_query(consent.headers["Location"]))
    conn.refresh_from_db()
    assert CalendarConnection.objects.filter(rep=rep_client.rep).count() == 1
    assert conn.status == "connected" and conn.last_error == ""


def test_a_callback_with_a_foreign_state_is_refused(rep_client, fake_google):
    rep_client.post("/calendars/connect/google")
    answer = rep_client.get("/calendars/oauth/google/callback?state=forged&code=4/abc")
    assert answer.status_code == 400
    assert not CalendarConnection.objects.exists()
    assert (
        rep_client.get("/calendars/oauth/google/callback?state=x&code=y").status_code == 400
    )  # nothing started


def test_a_declined_consent_is_reported(rep_client, fake_google):
    start = rep_client.post("/calendars/connect/google")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    answer = rep_client.get(
        f"/calendars/oauth/google/callback?state={state}&error=access_denied", follow=True
    )
    assert b"did not grant access" in answer.content
    assert not CalendarConnection.objects.exists()


def test_microsoft_connect_flow(rep_client, fake_ms):
    fake_ms.add_user("dana@contoso.example")
    start = rep_client.post("/calendars/connect/microsoft")
    assert start.status_code == 302 and start["Location"].startswith(fake_ms.authority)
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    done = rep_client.get(path_and_query(consent.headers["Location"]))
    assert done.status_code == 302
    conn = CalendarConnection.objects.get(rep=rep_client.rep)
    assert conn.provider == "microsoft" and conn.account_email == "dana@contoso.example"
    assert "home_account_id" in decrypt_secrets(conn.secret_blob)
    assert Calendar.objects.get(connection=conn).receives_bookings


def test_adding_an_ics_feed(rep_client, fake_ics):
    from calendars_harness import fixture_bytes

    bad = rep_client.post("/calendars/connect/ics", {"url": "ftp://nope"})
    assert bad.status_code == 400 and b"http(s)://" in bad.content
    not_ics = rep_client.post("/calendars/connect/ics", {"url": fake_ics.publish(b"<html></html>")})
    assert not_ics.status_code == 400 and b"iCalendar" in not_ics.content
    url = fake_ics.publish(fixture_bytes("recurring_dst.ics"))
    ok = rep_client.post("/calendars/connect/ics", {"url": url})
    assert ok.status_code == 302
    conn = CalendarConnection.objects.get(rep=rep_client.rep)
    assert conn.account_email == "127.0.0.1" and url not in conn.secret_blob
    page = rep_client.get("/calendars/").content.decode()
    assert "Dana Reyes (work)" in page and url.split("/")[-2] not in page  # the secret path is never shown


def test_choosing_calendars(rep_client, fake_google, fake_ics):
    from calendars_harness import fixture_bytes

    connect_google(rep_client, fake_google)
    rep_client.post("/calendars/connect/ics", {"url": fake_ics.publish(fixture_bytes("recurring_dst.ics"))})
    team = Calendar.objects.get(name="Team")
    primary = Calendar.objects.get(name="dana@work.example")
    feed = Calendar.objects.get(connection__provider="ics")
    refused = rep_client.post("/calendars/roles", {"blocks": [str(feed.pk)], "receives": str(feed.pk)})
    assert refused.status_code == 400 and b"Select a valid choice" in refused.content
    ok = rep_client.post(
        "/calendars/roles", {"blocks": [str(team.pk), str(feed.pk)], "receives": str(team.pk)}
    )
    assert ok.status_code == 302
    assert set(Calendar.objects.filter(blocks_availability=True).values_list("pk", flat=True)) == {
        team.pk,
        feed.pk,
    }
    assert (
        Calendar.objects.get(receives_bookings=True) == team
        and not Calendar.objects.get(pk=primary.pk).blocks_availability
    )


def test_reps_only_touch_their_own_connections(rep_client, make_rep, google_connection):
    other = google_connection(make_rep("Sam"))
    assert rep_client.post(f"/calendars/{other.pk}/disconnect").status_code == 404
    assert rep_client.post(f"/calendars/{other.pk}/refresh").status_code == 404
    assert CalendarConnection.objects.filter(pk=other.pk).exists()


def test_disconnect(rep_client, fake_google):
    connect_google(rep_client, fake_google)
    conn = CalendarConnection.objects.get(rep=rep_client.rep)
    assert rep_client.post(f"/calendars/{conn.pk}/disconnect").status_code == 302
    assert not CalendarConnection.objects.exists() and not Calendar.objects.exists()


def test_logins_without_a_rep_and_anonymous_visitors(client):
    assert client.get("/calendars/").status_code == 302  # to the login page
    user = get_user_model().objects.create_user("ops", "ops@example.com", "pw-ops-123")
    client.force_login(user)
    assert client.get("/calendars/").status_code == 403
    assert client.post("/calendars/connect/google").status_code == 403


def test_no_encryption_key_means_nothing_is_stored(rep_client, fake_google, settings):
    settings.TOKEN_ENCRYPTION_KEYS = []
    with pytest.raises(TokenKeyMissing):
        encrypt_secrets({"token": "x"})
    _, done = connect_google(rep_client, fake_google)
    page = rep_client.get(done["Location"]).content.decode()
    assert "TOKEN_ENCRYPTION_KEYS is empty" in page
    assert not CalendarConnection.objects.exists()


def test_rotate_token_keys(make_rep, google_connection, settings, capsys):
    conn = google_connection(make_rep())
    secrets = decrypt_secrets(CalendarConnection.objects.get(pk=conn.pk).secret_blob)
    old_key, new_key = settings.TOKEN_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_token_keys")
    assert "re-encrypted 1 calendar connection(s)" in capsys.readouterr().out
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]  # the old key can go now
    assert decrypt_secrets(CalendarConnection.objects.get(pk=conn.pk).secret_blob) == secrets
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="could not be decrypted"):
        call_command("rotate_token_keys")


def test_tokens_never_appear_in_logs_admin_pages_or_reprs(
    admin_client, make_rep, google_connection, fake_google, fake_ics, caplog, settings
):
    from calendars_harness import fixture_bytes

    from calendars.services.connections import ics_connect

    caplog.set_level(logging.DEBUG)
    rep = make_rep()
    conn = google_connection(rep)
    feed_url = fake_ics.publish(fixture_bytes("recurring_dst.ics"))
    feed = ics_connect(rep=rep, url=feed_url)
    for cal in Calendar.objects.filter(blocks_availability=True):
        calendar_sync(calendar_id=cal.pk)
    fake_google.revoke(rep.email)
    fake_google.expire_access_tokens()
    calendar_sync(calendar_id=Calendar.objects.get(connection=conn).pk)  # invalid_grant is logged
    secrets = decrypt_secrets(CalendarConnection.objects.get(pk=conn.pk).secret_blob)
    needles = [
        secrets["token"],
        secrets["refresh_token"],
        settings.GOOGLE_CLIENT_SECRET,
        feed_url.split("/")[-2],
    ]
    pages = [
        admin_client.get("/admin/calendars/calendarconnection/").content.decode(),
        admin_client.get(f"/admin/calendars/calendarconnection/{conn.pk}/change/").content.decode(),
        admin_client.get(f"/admin/calendars/calendarconnection/{feed.pk}/change/").content.decode(),
        admin_client.get("/admin/calendars/calendar/").content.decode(),
        admin_client.get(
            f"/admin/calendars/calendar/{Calendar.objects.get(connection=conn).pk}/change/"
        ).content.decode(),
    ]
    assert "Disconnected (reconnect needed)" in pages[0] and "invalid_grant" in pages[0]
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "disconnected" in logs
    texts = [*pages, logs, repr(conn), str(conn), repr(feed), str(feed)]
    for needle in needles:
        for text in texts:
            assert needle not in text
