"""The rep-facing pages: sign-in under a sub-path deployment, and double clicks on the calendar page (an ICS
feed added twice, two calendar-list refreshes at once) on PostgreSQL."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client
from django.test.utils import override_script_prefix

from calendars.models import Calendar, CalendarConnection
from tests.calendars.calendars_harness import fixture_bytes
from tests.fakes.google import FakeCalendar

pytestmark = pytest.mark.django_db


# --- a sub-path deployment (SCRIPT_NAME /baton, BASE_URL https://example.com/baton) ------------------------


def test_a_signed_out_rep_under_a_sub_path_is_sent_to_baton_s_own_sign_in_page(settings):
    """Under a sub-path deployment (a proxy passing ``SCRIPT_NAME=/baton``, which the pages, static files and
    OAuth redirect URIs follow), a rep opening their calendar page signed out is sent to ``/accounts/login/``
    on the site's root, outside Baton: a 404 (or another application), so they cannot sign in at all.
    ``LOGIN_URL`` is a literal path, which Django does not prefix; the URL name would be reversed."""
    settings.BASE_URL = "https://example.com/baton"
    with override_script_prefix("/baton/"):  # as the WSGI handler sets it from SCRIPT_NAME
        answer = Client().get("/calendars/", SCRIPT_NAME="/baton")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/baton/accounts/login/"), answer["Location"]


def test_a_rep_signing_in_under_a_sub_path_lands_on_their_calendar_page(settings):
    """Signing in on ``/baton/accounts/login/`` (no ``next``, as from a bookmark or the sign-out page) sends
    the rep to ``/calendars/`` on the site's root instead of ``/baton/calendars/``: a 404 after every
    successful sign-in. ``LOGIN_REDIRECT_URL`` is a literal path; the URL name would be reversed."""
    settings.BASE_URL = "https://example.com/baton"
    get_user_model().objects.create_user("dana", "dana@example.com", "the-right-one-123")
    with override_script_prefix("/baton/"):
        answer = Client().post(
            "/accounts/login/",
            {"username": "dana", "password": "the-right-one-123"},
            SCRIPT_NAME="/baton",
        )
    assert answer.status_code == 302
    assert answer["Location"] == "/baton/calendars/", answer["Location"]


# --- the ICS form: one secret feed added twice at once (a double click) ------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_click_on_add_ics_feed_stores_the_feed_once(fake_ics, make_rep, monkeypatch):
    """``connection_create`` promises "the same secret feed added again (a double click): one connection, not
    two synced apart", but for ICS it only looks for the feed among the rep's connections: unlike a Google or
    Microsoft account (``_account_lock``) nothing serialises two requests, so on PostgreSQL (READ COMMITTED)
    both POSTs of a double click find no connection and each creates one. The rep sees the feed twice and
    Baton polls it twice. (The hook only holds each request just before its insert until the other one gets
    there too, or 3 s.)"""
    user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    rep = make_rep("Dana", user=user)
    url = fake_ics.publish(fixture_bytes("recurring_dst.ics"))
    both_checked = threading.Barrier(2, timeout=3)
    manager = CalendarConnection.objects
    create = manager.create

    def create_after_the_other_checked(**kwargs):
        # the other request waits for this one (a lock): go on alone
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        return create(**kwargs)

    monkeypatch.setattr(manager, "create", create_after_the_other_checked)
    answers = []

    def click():
        client = Client()
        client.force_login(user)
        try:
            answers.append(client.post("/calendars/connect/ics", {"url": url}).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [302, 302]
    assert CalendarConnection.objects.filter(rep=rep, provider="ics").count() == 1


# --- Refresh pressed twice (or while the daily list refresh runs) -------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_store_a_new_calendar_once_without_a_server_error(
    fake_google, google_connection, make_rep, monkeypatch
):
    """A calendar the rep just added in Google comes to Baton with the next list refresh. Two refreshes of
    the same account at once (a double click on Refresh, or the rep's Refresh while the daily
    ``calendar_list_refresh_task`` runs) both read the stored calendars, find the new one missing and insert
    it: on PostgreSQL nothing makes ``_store_calendars`` take turns, so the second insert breaks the
    ``calendar_unique_external`` constraint and the rep's Refresh is answered with a 500 (a task: crashes).
    (The hook holds each insert until the other one gets there too, or 3 s.)"""
    user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    rep = make_rep("Dana", user=user)
    connection = google_connection(rep)
    cal_id = "team@group.calendar.google.com"
    fake_google.accounts[rep.email].calendars[cal_id] = FakeCalendar(cal_id, "Team")
    both_listed = threading.Barrier(2, timeout=3)
    manager = Calendar.objects
    create = manager.create

    def create_after_the_other_listed(**kwargs):
        # the other refresh waits for this one (a lock): go on alone
        with contextlib.suppress(threading.BrokenBarrierError):
            both_listed.wait()
        return create(**kwargs)

    monkeypatch.setattr(manager, "create", create_after_the_other_listed)
    answers = []

    def click():
        client = Client(raise_request_exception=False)
        client.force_login(user)
        try:
            answers.append(client.post(f"/calendars/{connection.pk}/refresh").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [302, 302]
    assert Calendar.objects.filter(connection=connection, external_id=cal_id).count() == 1
