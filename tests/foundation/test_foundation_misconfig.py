"""Incomplete or odd configuration: the public pages and API answer with an empty state or a 4xx with a code,
never a 500, and the admin neither 500s nor hides a booking that needs attention."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from booking.models import Booking, MeetingType
from booking.selectors import bookings_needing_attention
from calendars.models import WorkingHours
from routing.models import Pool, PoolMember, Rep
from tests.booking.booking_factories import body, make_meeting_type, make_pool, make_rep

pytestmark = pytest.mark.django_db

SLOTS = {"start": "2026-03-02", "end": "2026-03-20", "timezone": "Europe/Berlin"}
START = "2026-03-03T10:00:00+01:00"
LATER = "2026-03-04T10:00:00+01:00"


@pytest.fixture(autouse=True)
def base_url(settings):  # the rest as tests/foundation/conftest.py's quiet_settings, and its clock
    settings.BASE_URL = "https://book.example.com"


@pytest.fixture
def api():
    return APIClient(raise_request_exception=False)


def _book(api, mt, start=START) -> dict:
    response = api.post(
        f"/api/v1/meeting-types/{mt.slug}/bookings", body(start=start, answers={}), format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _empty_pools():
    """(name, meeting type) for every way a pool can have nobody to offer."""
    cases = []
    for strategy in ("round_robin", "first_available", "ranked", "group"):
        pool = Pool.objects.create(name=f"Empty {strategy}", slug=f"empty-{strategy}", strategy=strategy)
        cases.append((f"no members ({strategy})", make_meeting_type(pool)))
    pool = make_pool("round_robin", [make_rep(), make_rep()])
    PoolMember.objects.filter(pool=pool).update(active=False)
    cases.append(("all members inactive", make_meeting_type(pool)))
    cases.append(
        ("all reps inactive", make_meeting_type(make_pool("first_available", [make_rep(active=False)])))
    )
    ae, se = make_rep(), make_rep()
    pool = make_pool("group", [ae, se], roles=["ae", "se"])
    PoolMember.objects.filter(pool=pool, rep=se).update(active=False)
    cases.append(("group role without an active member", make_meeting_type(pool)))
    cases.append(("rep without working hours", make_meeting_type(make_pool("ranked", [make_rep(days=[])]))))
    long_pool = make_pool("first_available", [make_rep()])
    cases.append(("duration longer than any window", make_meeting_type(long_pool, duration_minutes=720)))
    cases.append(
        (
            "notice beyond the horizon",
            make_meeting_type(long_pool, horizon_days=1, minimum_notice_minutes=3 * 1440),
        )
    )
    return cases


def test_nothing_to_offer_is_an_empty_state_and_a_coded_409_never_a_500(api, clock):
    for name, mt in _empty_pools():
        assert api.get(f"/book/{mt.slug}").status_code == 200, name
        slots = api.get(f"/api/v1/meeting-types/{mt.slug}/slots", SLOTS)
        assert slots.status_code == 200 and slots.json()["slots"] == [], name
        booked = api.post(
            f"/api/v1/meeting-types/{mt.slug}/bookings", body(start=START, answers={}), format="json"
        )
        assert booked.status_code in (400, 409), (name, booked.content)
        assert booked.json()["code"] in ("slot_unavailable", "invalid"), name
        routed = api.post(
            f"/api/v1/meeting-types/{mt.slug}/route",
            {"name": "A", "email": "a@b.example", "timezone": "UTC"},
            format="json",
        )
        assert routed.status_code == 200, (name, routed.content)


def test_hours_ending_at_midnight_offer_and_book_the_last_hour(api, clock):
    mt = make_meeting_type(make_pool("first_available", [make_rep(hours=(20, 0))]))
    assert _book(api, mt, start="2026-03-03T23:30:00+01:00")["start"] == "2026-03-03T23:30:00+01:00"


def _surfaces_ok(api, admin_client, booked: dict) -> None:
    token = booked["manage_token"]
    for url in (
        f"/manage/{token}",
        f"/manage/{token}/confirmation",
        f"/manage/{token}/ics",
        f"/api/v1/bookings/{token}",
    ):
        assert api.get(url).status_code == 200, url
    assert api.get(f"/api/v1/bookings/{token}/slots", SLOTS | {"end": "2026-03-06"}).status_code == 200
    for url in (
        reverse("admin:booking_booking_change", args=[booked["id"]]),
        reverse("admin:booking_booking_reassign", args=[booked["id"]]),
        reverse("admin:booking_booking_changelist") + "?attention=any",
    ):
        assert admin_client.get(url).status_code == 200, url


def test_changes_after_booking_keep_every_page_working(api, admin_client, clock):
    a, b = make_rep(), make_rep()
    removed = make_meeting_type(make_pool("first_available", [a, b]))
    booked = _book(api, removed)
    host = Booking.objects.get(pk=booked["id"]).hosts.get().rep_id
    PoolMember.objects.filter(pool=removed.pool, rep_id=host).delete()  # host taken out of the pool
    _surfaces_ok(api, admin_client, booked)
    moved = api.post(f"/api/v1/bookings/{booked['manage_token']}/reschedule", {"start": LATER}, format="json")
    assert moved.status_code == 200 and moved.json()["hosts"][0]["email"] != Rep.objects.get(pk=host).email

    group = make_meeting_type(make_pool("group", [make_rep(), make_rep()], roles=["ae", "se"]))
    booked = _book(api, group)
    Pool.objects.filter(pk=group.pool_id).update(strategy="round_robin")  # strategy changed since
    _surfaces_ok(api, admin_client, booked)
    moved = api.post(f"/api/v1/bookings/{booked['manage_token']}/reschedule", {"start": LATER}, format="json")
    assert moved.status_code == 200 and len(moved.json()["hosts"]) == 2  # free hosts keep the booking

    inactive_type = make_meeting_type(make_pool("round_robin", [make_rep()]))
    booked = _book(api, inactive_type)
    MeetingType.objects.filter(pk=inactive_type.pk).update(active=False)
    _surfaces_ok(api, admin_client, booked)
    assert api.get(f"/book/{inactive_type.slug}").status_code == 404


def test_host_changes_flag_the_booking_and_the_rep_page_says_so(api, admin_client, clock):
    flagged = {}
    for name, change in {
        "deactivated": lambda rep: Rep.objects.filter(pk=rep.pk).update(active=False),
        "zone moved": lambda rep: Rep.objects.filter(pk=rep.pk).update(timezone="America/Los_Angeles"),
        "no hours left": lambda rep: WorkingHours.objects.filter(rep=rep).delete(),
    }.items():
        rep = make_rep()
        booked = _book(api, make_meeting_type(make_pool("round_robin", [rep])))
        change(rep)
        flagged[name] = booked["id"]
        _surfaces_ok(api, admin_client, booked)
        if name != "zone moved":  # nobody left to move it to
            assert api.get(f"/api/v1/bookings/{booked['manage_token']}/slots", SLOTS).json()["slots"] == []
    found = set(
        bookings_needing_attention(Booking.objects.all(), now=timezone.now()).values_list("pk", flat=True)
    )
    assert set(flagged.values()) <= found, flagged


def test_a_rep_hosting_bookings_cannot_be_deleted_and_the_admin_says_why(api, admin_client, clock):
    rep = make_rep()
    _book(api, make_meeting_type(make_pool("round_robin", [rep])))
    assert admin_client.get(reverse("admin:routing_rep_delete", args=[rep.pk])).status_code == 200
    response = admin_client.post(reverse("admin:routing_rep_delete", args=[rep.pk]), {"post": "yes"})
    assert response.status_code == 200 and Rep.objects.filter(pk=rep.pk).exists()
    bulk = {"action": "delete_selected", "_selected_action": [rep.pk], "post": "yes"}
    assert admin_client.post(reverse("admin:routing_rep_changelist"), bulk).status_code == 200
    assert Rep.objects.filter(pk=rep.pk).exists()


@pytest.mark.parametrize(
    "questions",
    [
        '[{"key": "a", "label": "A"}, {"key": "a", "label": "B"}]',
        '[{"key": "a", "label": "A", "type": "weird"}]',
        '{"a": 1}',
        "[1]",
    ],
)
def test_meeting_type_admin_refuses_bad_questions_with_a_form_error(admin_client, questions):
    mt = make_meeting_type(make_pool("first_available", [make_rep()]))
    url = reverse("admin:booking_meetingtype_change", args=[mt.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {k: (v.pk if hasattr(v, "pk") else v) for k, v in form.initial.items() if v is not None}
    data.update(
        questions=questions,
        pool=mt.pool_id,
        **{"routing_rules-TOTAL_FORMS": 0, "routing_rules-INITIAL_FORMS": 0},
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200 and response.context["adminform"].form.errors.get("questions")
    assert MeetingType.objects.get(pk=mt.pk).questions == []
