"""Upcoming bookings that need an admin: a host deactivated, on time off or busy (a synced event, busy time
entered in Baton) during the meeting after it was booked. The booking list's "needs attention" filter and
the rep admin's warning after a save."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from booking.models import Booking
from booking.selectors import bookings_needing_attention
from booking.services import booking_cancel, booking_create
from calendars.models import BusyInterval, DateOverride, TimeOff, WorkingHours
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def hosted():
    """Two bookings at START (09:00–09:30 UTC) in a ranked pool: Ana hosts the first, Bo the second."""
    ana, bo = make_rep("Ana"), make_rep("Bo")
    meeting_type = make_meeting_type(make_pool("ranked", [ana, bo]), slug="att")
    ids = {}
    for rep in (ana, bo):
        body = booking_create(
            meeting_type=meeting_type,
            start=START,
            name="Pat",
            email=f"p-{rep.pk}@example.org",
            timezone="UTC",
        ).body
        ids[rep.name] = (body["id"], body["manage_url"].rstrip("/").rsplit("/", 1)[-1])
    return ana, bo, ids


def needing(reason: str = "", **kw) -> set[int]:
    return set(
        bookings_needing_attention(Booking.objects.all(), reason, now=NOW, **kw).values_list("pk", flat=True)
    )


def test_nothing_needs_attention_while_hosts_are_free(hosted):
    ana, bo, ids = hosted
    BusyInterval.objects.create(rep=ana, start=START - HOUR, end=START)  # touching is not overlapping
    TimeOff.objects.create(rep=ana, start=START + dt.timedelta(minutes=30), end=START + HOUR)
    assert needing() == set()


@pytest.mark.parametrize("reason", ["time_off", "busy", "inactive"])
def test_each_reason_finds_the_hosts_booking(hosted, reason):
    ana, bo, ids = hosted
    if reason == "time_off":
        TimeOff.objects.create(rep=ana, start=START - HOUR, end=START + dt.timedelta(minutes=10))
    elif reason == "busy":
        BusyInterval.objects.create(rep=ana, start=START + dt.timedelta(minutes=20), end=START + HOUR)
    else:
        ana.active = False
        ana.save()
    assert needing(reason) == needing() == {ids["Ana"][0]}
    assert needing(reason, rep_id=bo.pk) == set()
    others = {"time_off", "busy", "inactive", "removed", "off_hours"} - {reason}
    assert all(needing(other) == set() for other in others)


def test_cancelled_and_past_bookings_need_nothing(hosted):
    ana, bo, ids = hosted
    BusyInterval.objects.create(rep=ana, start=START, end=START + HOUR)
    BusyInterval.objects.create(rep=bo, start=START, end=START + HOUR)
    booking_cancel(token=ids["Ana"][1], now=NOW)
    assert needing() == {ids["Bo"][0]}
    later = START + dt.timedelta(minutes=30)
    assert (
        set(bookings_needing_attention(Booking.objects.all(), now=later).values_list("pk", flat=True))
        == set()
    )


def test_the_booking_list_filters_by_reason(hosted, admin_client):
    ana, bo, ids = hosted
    TimeOff.objects.create(rep=bo, start=START, end=START + HOUR)
    url = reverse("admin:booking_booking_changelist")
    listed = lambda query: {b.pk for b in admin_client.get(url, query).context["cl"].result_list}  # noqa: E731
    assert listed({"attention": "any"}) == listed({"attention": "time_off"}) == {ids["Bo"][0]}
    assert listed({"attention": "busy"}) == set()
    assert listed({"attention": "nonsense"}) == {ids["Ana"][0], ids["Bo"][0]}
    assert "needs attention" in admin_client.get(url).content.decode()


def test_deactivating_a_rep_in_the_admin_says_which_bookings_to_reassign(hosted, admin_client):
    ana, bo, ids = hosted
    WorkingHours.objects.filter(rep=ana).delete()  # no inline rows to post back
    data = {"name": ana.name, "email": ana.email, "timezone": ana.timezone, "daily_cap": ""}  # active: off
    for prefix in ("skills", "working_hours", "date_overrides", "time_off", "memberships"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    data.update({"memberships-TOTAL_FORMS": 1, "memberships-INITIAL_FORMS": 1})
    data["memberships-0-id"] = ana.memberships.get().pk
    data["memberships-0-rep"] = ana.pk
    response = admin_client.post(reverse("admin:routing_rep_change", args=[ana.pk]), data, follow=True)
    text = " ".join(str(m) for m in response.context["messages"])
    assert "1 upcoming booking of Ana needs attention" in text, text
    link = re.search(r'href="([^"]+)"', text).group(1).replace("&amp;", "&")
    assert {b.pk for b in admin_client.get(link).context["cl"].result_list} == {ids["Ana"][0]}


@pytest.mark.parametrize(
    ("change", "off"),
    [
        ("day_off", True),  # a date override with no hours
        ("afternoon_only", True),  # an override 12:00–17:00 on that date
        ("morning_only", False),  # an override 09:00–12:00 still covers 10:00–10:30
        ("weekly_later", True),  # Tuesday's weekly hours now 13:00–17:00
        ("none", False),
    ],
)
def test_a_host_off_work_at_the_meeting_needs_attention(hosted, change, off):
    ana, bo, ids = hosted  # the bookings are at 10:00–10:30 Berlin on Tuesday 3 March
    day = START.date()
    if change == "day_off":
        DateOverride.objects.create(rep=ana, date=day)
    elif change == "afternoon_only":
        DateOverride.objects.create(rep=ana, date=day, start=dt.time(12), end=dt.time(17))
    elif change == "morning_only":
        DateOverride.objects.create(rep=ana, date=day, start=dt.time(9), end=dt.time(12))
    elif change == "weekly_later":
        WorkingHours.objects.filter(rep=ana, weekday=1).update(start=dt.time(13))
    expected = {ids["Ana"][0]} if off else set()
    assert needing("off_hours") == needing() == expected
    assert needing("off_hours", rep_id=bo.pk) == set()
