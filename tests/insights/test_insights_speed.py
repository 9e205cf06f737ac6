"""Speed to lead: a booking's visitor's first view of the booking page → the booking, against a fixture
computed by hand (median and p90 minutes per pool and per rep), the dashboard/CSV cells, and the whole path
from the page's cookie through the API."""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics

import pytest
import time_machine
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from booking.models import Booking
from booking.services import booking_create
from insights import kpis
from insights.services import page_visit_record
from tests.booking.booking_factories import make_meeting_type
from tests.booking.test_booking_pages import config_of
from tests.insights.conftest import at

pytestmark = pytest.mark.django_db

JAN20 = dt.datetime(2026, 1, 20, 12, 0, tzinfo=dt.UTC)
FEB25 = dt.datetime(2026, 2, 25, 12, 0, tzinfo=dt.UTC)


def visit(meeting_type, visitor, when):
    page_visit_record(meeting_type=meeting_type, visitor=visitor, utm={}, at=when)


@pytest.fixture
def speedy(meeting_type):
    """Five bookings (created_at pinned) and their visitors' page views:

    b0 va created 2 Mar 10:00; views 09:30, 09:50 and 11:00 (after the booking) → 30 min
    b1 vb created 3 Mar 12:00; views 20 Jan 12:00 (42 days before: only inside a period that reaches back)
       and 25 Feb 12:00 (within 30 days) → 8,640 min, or 60,480 min when the period starts before 20 Jan
    b2 vc created 4 Mar 09:00; a view of ANOTHER meeting type at 08:00, of this one at 08:45 → 15 min
    b3 no visitor id; b4 vd created 4 Mar 10:00, viewed only after booking (11:00) → left out
    """
    other = make_meeting_type(meeting_type.pool, slug="demo")
    rows = [
        ("va", at(5, 9), at(2, 10)),
        ("vb", at(5, 10), at(3, 12)),
        ("vc", at(5, 11), at(4, 9)),
        ("", at(6, 9), at(4, 9, 30)),
        ("vd", at(6, 10), at(4, 10)),
    ]
    made = []
    for n, (visitor, start, created) in enumerate(rows):
        result = booking_create(
            meeting_type=meeting_type,
            start=start,
            name=f"P{n}",
            email=f"p{n}@example.org",
            timezone="Europe/Berlin",
            now=created,
            visitor=visitor,
        )
        Booking.objects.filter(pk=result.body["id"]).update(created_at=created)
        made.append(Booking.objects.get(pk=result.body["id"]))
    for when in (at(2, 9, 30), at(2, 9, 50), at(2, 11)):
        visit(meeting_type, "va", when)
    visit(meeting_type, "vb", JAN20)
    visit(meeting_type, "vb", FEB25)
    visit(other, "vc", at(4, 8))
    visit(meeting_type, "vc", at(4, 8, 45))
    visit(meeting_type, "vd", at(4, 11))
    return made


@pytest.mark.parametrize("chunk", [500, 1])
def test_speed_per_booking_by_hand(meeting_type, speedy, monkeypatch, chunk):
    monkeypatch.setattr(kpis, "VISITOR_CHUNK", chunk)
    b0, b1, b2, b3, b4 = speedy
    assert b3.visitor_id == "" and b4.visitor_id == "vd"
    assert kpis.speed_to_lead(speedy, at(1, 0)) == {b0.pk: 30.0, b1.pk: 8640.0, b2.pk: 15.0}
    # a period starting before 20 January reaches vb's first view
    assert kpis.speed_to_lead(speedy, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))[b1.pk] == 60480.0


def test_speed_pool_and_rep_figures(meeting_type, reps, speedy):
    b0, b1, b2, _b3, _b4 = speedy
    hand = {b0.pk: 30.0, b1.pk: 8640.0, b2.pk: 15.0}
    table = kpis.rep_rows(meeting_type.pool, at(1, 0), at(8, 0))
    totals = table["totals"]
    # [15, 30, 8640]: median 30; p90 at position 1.8 → 30 + 0.8 × 8610 = 6918
    assert totals["speed_to_lead_minutes"] == 30.0
    assert totals["speed_to_lead_p90_minutes"] == pytest.approx(6918.0)
    assert totals["speed_to_lead_bookings"] == 3
    rows = {r["rep_id"]: r for r in table["rows"]}
    for rep in reps:
        mine = [hand[b.pk] for b in speedy if b.pk in hand and b.hosts.get().rep_id == rep.pk]
        row = rows[rep.pk]
        assert row["speed_to_lead_bookings"] == len(mine)
        assert row["speed_to_lead_minutes"] == (statistics.median(mine) if mine else None)
    assert sum(r["speed_to_lead_bookings"] for r in table["rows"]) == 3

    # longer period: vb's 20 January view counts → [15, 30, 60480]: median 30, p90 30 + 0.8 × 60450 = 48390
    longer = kpis.rep_rows(meeting_type.pool, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), at(8, 0))["totals"]
    assert longer["speed_to_lead_minutes"] == 30.0
    assert longer["speed_to_lead_p90_minutes"] == pytest.approx(48390.0)

    # from 3 March: b0 is outside; b1 still reaches back 30 days → [15, 8640]: median 4327.5, p90 7777.5
    later = kpis.rep_rows(meeting_type.pool, at(3, 0), at(8, 0))["totals"]
    assert later["speed_to_lead_minutes"] == pytest.approx(4327.5)
    assert later["speed_to_lead_p90_minutes"] == pytest.approx(7777.5)
    assert later["speed_to_lead_bookings"] == 2


def test_speed_without_visitors_is_none(meeting_type):
    result = booking_create(
        meeting_type=meeting_type, start=at(5, 9), name="P", email="p@example.org",
        timezone="Europe/Berlin", now=at(2, 9),
    )  # fmt: skip
    assert Booking.objects.get(pk=result.body["id"]).visitor_id == ""
    totals = kpis.rep_rows(meeting_type.pool, at(1, 0), at(8, 0))["totals"]
    assert totals["speed_to_lead_minutes"] is None and totals["speed_to_lead_p90_minutes"] is None
    assert totals["speed_to_lead_bookings"] == 0


def test_dashboard_and_csv_show_speed(client, meeting_type, speedy):
    user = get_user_model().objects.create_user("boss", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    query = {"pool": meeting_type.pool.slug, "start": "2026-03-01 00:00", "end": "2026-03-08 00:00"}
    html = client.get("/insights/", query).content.decode()
    assert "30 / 6918 <small>(3)</small>" in html
    text = client.get("/insights/", {**query, "table": "reps"}).content.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sum(int(r["speed_to_lead_bookings"]) for r in rows) == 3
    b0, b1, b2, _b3, _b4 = speedy
    hand = {b0.pk: 30.0, b1.pk: 8640.0, b2.pk: 15.0}
    for row in rows:
        mine = [hand[b.pk] for b in speedy if b.pk in hand and b.hosts.get().rep.name == row["name"]]
        assert row["speed_to_lead_minutes"] == (str(statistics.median(mine)) if mine else "")


def test_page_cookie_to_booking_to_speed(client, meeting_type):
    with time_machine.travel(at(2, 9), tick=False):
        visitor = config_of(client.get("/book/intro"))["visitor"]
    with time_machine.travel(at(2, 9, 5), tick=False):
        client.get("/book/intro")  # a second view does not move the first
    with time_machine.travel(at(2, 9, 20), tick=False):
        body = {"start": "2026-03-05T10:00:00+01:00", "name": "Pat", "email": "pat@example.org",
                "timezone": "Europe/Berlin", "visitor": visitor}  # fmt: skip
        response = APIClient().post("/api/v1/meeting-types/intro/bookings", body, format="json")
    assert response.status_code == 201, response.json()
    totals = kpis.rep_rows(meeting_type.pool, at(1, 0), at(8, 0))["totals"]
    assert totals["speed_to_lead_minutes"] == 20.0 and totals["speed_to_lead_bookings"] == 1
