"""API tests: meeting types, slots, create, get, cancel, reschedule — and their error paths."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine

from booking.models import Booking, BookingHost, IdempotencyKey
from booking.selectors import token_hash
from calendars.models import BusyInterval
from routing.models import LedgerEntry
from tests.booking.booking_factories import NOW, body, make_meeting_type, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"


def post(api, url, data, **headers):
    return api.post(url, data, format="json", headers=headers)


# --- meeting types


def test_meeting_types_list_and_detail(api, meeting_type):
    make_meeting_type(meeting_type.pool, slug="hidden", active=False)
    listed = api.get("/api/v1/meeting-types").json()
    assert [m["slug"] for m in listed] == ["intro"]
    detail = api.get("/api/v1/meeting-types/intro").json()
    assert detail["duration"] == 30 and detail["location_kind"] == "video"
    assert detail["questions"][0]["key"] == "size"
    assert "pool" not in detail and "location_detail" not in detail


@pytest.mark.parametrize("slug", ["nope", "hidden"])
def test_unknown_or_inactive_meeting_type_is_404(api, meeting_type, slug):
    make_meeting_type(meeting_type.pool, slug="hidden", active=False)
    for response in (
        api.get(f"/api/v1/meeting-types/{slug}"),
        api.get(f"/api/v1/meeting-types/{slug}/slots"),
        post(api, f"/api/v1/meeting-types/{slug}/bookings", body()),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


# --- slots


def test_slots_in_asked_zone_sorted_with_offsets(api, meeting_type):
    response = api.get(
        "/api/v1/meeting-types/intro/slots?start=2026-03-03&end=2026-03-03&timezone=America/New_York"
    )
    assert response.status_code == 200
    data = response.json()
    assert data["timezone"] == "America/New_York"
    starts = [s["start"] for s in data["slots"]]
    # Berlin 09:00–17:00 = New York 03:00–11:00 on 3 March (both in winter time)
    assert starts[0] == "2026-03-03T03:00:00-05:00" and starts[-1] == "2026-03-03T10:30:00-05:00"
    assert len(starts) == 16 and starts == sorted(starts)
    assert data["slots"][0]["end"] == "2026-03-03T03:30:00-05:00"


def test_slots_default_range_is_today_plus_six_days(api, meeting_type):
    data = api.get("/api/v1/meeting-types/intro/slots?timezone=Europe/Berlin").json()
    assert (data["start"], data["end"]) == ("2026-03-02", "2026-03-08")
    days = {s["start"][:10] for s in data["slots"]}
    assert days == {"2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"}
    # notice: now 08:00 Berlin + 60 min → first slot 09:00
    assert data["slots"][0]["start"] == "2026-03-02T09:00:00+01:00"


def test_slots_hide_busy_time_without_leaking_it(api, meeting_type, rep):
    BusyInterval.objects.create(
        rep=rep,
        start=dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC),
        end=dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC),
        external_id="secret-board-meeting",
    )
    response = api.get("/api/v1/meeting-types/intro/slots?start=2026-03-03&end=2026-03-03&timezone=UTC")
    starts = [s["start"] for s in response.json()["slots"]]
    assert "2026-03-03T09:00:00+00:00" not in starts and "2026-03-03T09:30:00+00:00" not in starts
    assert "2026-03-03T10:00:00+00:00" in starts
    assert b"secret" not in response.content and b"busy" not in response.content


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start=2026-03-10&end=2026-03-01", "end"),
        ("start=2026-03-01&end=2026-05-02", "end"),
        ("start=2026-13-01", "start"),
        ("timezone=Mars/Olympus", "timezone"),
        ("end=yesterday", "end"),
        # at either end of Python's dates the day's UTC window overflowed: a 500 before
        ("start=9999-12-30&end=9999-12-31", "start"),
        ("start=9999-12-31", "start"),
        ("start=0001-01-01&end=0001-01-01&timezone=Pacific/Kiritimati", "start"),
        ("start=2026-03-01&end=3000-01-01", "end"),
    ],
)
def test_slots_bad_query_is_400_with_field(api, meeting_type, query, field):
    response = api.get(f"/api/v1/meeting-types/intro/slots?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]


def test_slots_at_the_edges_of_the_accepted_years_are_empty(api, meeting_type):
    for query in ("start=2000-01-01&timezone=Etc/GMT%2B12", "start=2999-12-31&timezone=Pacific/Kiritimati"):
        response = api.get(f"/api/v1/meeting-types/intro/slots?{query}")
        assert response.status_code == 200 and response.json()["slots"] == []


def test_slots_62_days_is_allowed(api, meeting_type):
    response = api.get("/api/v1/meeting-types/intro/slots?start=2026-03-01&end=2026-05-01")
    assert response.status_code == 200


def test_slots_query_count_is_constant(api, meeting_type, django_assert_max_num_queries):
    pool = meeting_type.pool
    from routing.models import PoolMember

    for _ in range(6):
        PoolMember.objects.create(pool=pool, rep=make_rep())
    with django_assert_max_num_queries(12):
        assert api.get("/api/v1/meeting-types/intro/slots").status_code == 200


# --- create


def test_create_booking(api, meeting_type, rep, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, URL, body())
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["status"] == "confirmed"
    assert data["start"] == "2026-03-03T10:00:00+01:00" and data["end"] == "2026-03-03T10:30:00+01:00"
    assert data["hosts"] == [{"name": "Ana", "email": rep.email, "role": ""}]
    token = data["manage_token"]
    assert data["manage_url"] == f"https://book.example.com/manage/{token}"
    booking = Booking.objects.get(pk=data["id"])
    assert booking.manage_token_hash == token_hash(token) and token not in str(booking.__dict__)
    assert booking.decision["hosts"] == [{"rep_id": rep.pk, "role": ""}]
    assert booking.answers == {"size": "1-10"} and booking.utm == {"utm_source": "test"}
    host = booking.hosts.get()
    assert (host.blocked_start, host.blocked_end) == (booking.start, booking.end)
    assert LedgerEntry.objects.filter(rep=rep, kind="assigned", booking=booking).count() == 1
    assert {m.to[0] for m in mailoutbox} == {"pat@example.org", rep.email}


def test_buffers_widen_the_blocked_range(api, meeting_type):
    meeting_type.buffer_before_minutes, meeting_type.buffer_after_minutes = 10, 15
    meeting_type.save()
    booking = Booking.objects.get(pk=post(api, URL, body()).json()["id"])
    host = booking.hosts.get()
    assert host.blocked_start == booking.start - dt.timedelta(minutes=10)
    assert host.blocked_end == booking.end + dt.timedelta(minutes=15)


def test_taken_slot_is_409_with_alternatives(api, meeting_type):
    assert post(api, URL, body()).status_code == 201
    response = post(api, URL, body(email="other@example.org"))
    assert response.status_code == 409
    data = response.json()
    assert data["code"] == "slot_unavailable"
    assert data["alternatives"][:2] == ["2026-03-03T10:30:00+01:00", "2026-03-03T11:00:00+01:00"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"start": "2026-03-03T10:00:00"}, "start"),  # naive
        ({"start": "tomorrow at ten"}, "start"),
        ({"start": 12345}, "start"),
        ({"start": "2026-03-03T10:10:00+01:00"}, "start"),  # off grid
        ({"start": "2026-03-03T10:00:30+01:00"}, "start"),  # seconds
        ({"start": "2026-03-02T08:30:00+01:00"}, "start"),  # inside minimum notice
        ({"start": "2026-05-04T10:00:00+02:00"}, "start"),  # past the horizon
        ({"start": "9999-12-31T23:40:00-14:00"}, "start"),  # out of the accepted years
        ({"start": "0001-01-01T00:00:00+14:00"}, "start"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"note": "x" * 2001}, "note"),
        ({"answers": {}}, "answers"),
        ({"answers": {"size": "500+"}}, "answers"),
        ({"answers": {"size": "1-10", "shoe": "42"}}, "answers"),
        ({"answers": ["1-10"]}, "answers"),
        ({"utm": {"a": {"b": 1}}}, "utm"),
    ],
)
def test_create_validation_errors_are_400_with_fields(api, meeting_type, override, field):
    response = post(api, URL, body(**override))
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"]
    assert not Booking.objects.exists()


def test_missing_fields_and_bad_json(api, meeting_type):
    response = post(api, URL, {})
    assert response.status_code == 400
    assert {"start", "name", "email", "timezone"} <= set(response.json()["errors"])
    raw = api.post(URL, "{not json", content_type="application/json")
    assert raw.status_code == 400 and raw.json()["code"] == "malformed_request"
    listed = api.post(URL, "[1, 2]", content_type="application/json")
    assert listed.status_code == 400 and listed.json()["code"] == "invalid"
    form = api.post(URL, {"name": "x"})
    assert form.status_code == 415


def test_a_body_over_the_upload_limit_is_413_and_books_nothing(api, meeting_type, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = json.dumps(body(answers={"note": "x" * 20_000}))
    response = api.post(URL, big, content_type="application/json")
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "request_too_large"
    assert not Booking.objects.exists()


def test_answer_types(api, meeting_type):
    meeting_type.questions = [
        {"key": "seats", "type": "number", "required": True},
        {"key": "agree", "type": "checkbox", "required": True},
        {"key": "tools", "type": "multiselect", "options": ["a", "b"]},
        {"key": "mail", "type": "email"},
    ]
    meeting_type.save()
    bad = post(api, URL, body(answers={"seats": "ten", "agree": "yes", "tools": ["c"], "mail": "nope"}))
    assert set(bad.json()["errors"]["answers"]) == {"seats", "agree", "tools", "mail"}
    good = post(api, URL, body(answers={"seats": 10, "agree": True, "tools": ["a"], "mail": "a@b.co"}))
    assert good.status_code == 201


# --- idempotency


def test_idempotency_replays_first_response(api, meeting_type):
    first = post(api, URL, body(), **{"Idempotency-Key": "abc-123"})
    again = post(api, URL, body(), **{"Idempotency-Key": "abc-123"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1
    row = IdempotencyKey.objects.get()
    assert "abc-123" not in str(row.__dict__) and first.json()["manage_token"] not in row.sealed_response


def test_idempotency_replays_when_the_first_request_committed_after_the_replay_check(
    api, meeting_type, monkeypatch
):
    """The second request's early replay check runs before the first one commits; by the time it reads the
    pool the slot is taken. It still replays the first response (the key was committed with the slot)."""
    from booking.services import idempotency

    first = post(api, URL, body(), **{"Idempotency-Key": "late-1"})
    real, calls = idempotency.replay, []

    def replay(*args, **kwargs):
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)  # the early check: not committed yet

    monkeypatch.setattr(idempotency, "replay", replay)
    again = post(api, URL, body(), **{"Idempotency-Key": "late-1"})
    assert (again.status_code, again.json()) == (201, first.json())
    assert len(calls) == 2 and Booking.objects.count() == 1


def test_idempotency_key_with_other_body_is_422(api, meeting_type):
    post(api, URL, body(), **{"Idempotency-Key": "k1"})
    response = post(api, URL, body(name="Someone Else"), **{"Idempotency-Key": "k1"})
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"


def test_idempotency_key_expires_after_24h(api, meeting_type, clock):
    post(api, URL, body(), **{"Idempotency-Key": "k2"})
    clock.shift(dt.timedelta(hours=24, seconds=1))
    response = post(api, URL, body(start="2026-03-04T10:00:00+01:00"), **{"Idempotency-Key": "k2"})
    assert response.status_code == 201
    assert Booking.objects.count() == 2


def test_failed_request_does_not_burn_the_key(api, meeting_type):
    post(api, URL, body())
    assert post(api, URL, body(email="b@example.org"), **{"Idempotency-Key": "k3"}).status_code == 409
    ok = post(
        api, URL, body(email="b@example.org", start="2026-03-03T11:00:00+01:00"), **{"Idempotency-Key": "k3"}
    )
    assert ok.status_code == 201


def test_overlong_idempotency_key_is_400(api, meeting_type):
    response = post(api, URL, body(), **{"Idempotency-Key": "x" * 256})
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]


# --- get / cancel / reschedule


@pytest.fixture
def booked(api, meeting_type):
    data = post(api, URL, body()).json()
    return data["manage_token"], data


def test_get_booking_by_token(api, booked):
    token, created = booked
    data = api.get(f"/api/v1/bookings/{token}").json()
    assert data["id"] == created["id"] and data["start"] == created["start"]
    assert data["can_cancel"] is True and "manage_token" not in data
    utc = api.get(f"/api/v1/bookings/{token}?timezone=UTC").json()
    assert utc["start"] == "2026-03-03T09:00:00+00:00"


@pytest.mark.parametrize("token", ["x", "A" * 43, "../../etc/passwd", "%00" * 10])
def test_unknown_token_is_plain_404(api, booked, token):
    for response in (
        api.get(f"/api/v1/bookings/{token}"),
        post(api, f"/api/v1/bookings/{token}/cancel", {}),
        post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T11:00:00+01:00"}),
    ):
        assert response.status_code == 404
        assert (
            response.json() == {"code": "not_found", "detail": "No such booking."}
            or response.json()["code"] == "not_found"
        )


def test_cancel_frees_the_slot_and_credits_back(
    api, booked, rep, mailoutbox, django_capture_on_commit_callbacks
):
    token, created = booked
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, f"/api/v1/bookings/{token}/cancel", {"reason": "changed plans"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    booking = Booking.objects.get(pk=created["id"])
    assert booking.sequence == 1 and booking.cancel_reason == "changed plans"
    host = booking.hosts.get()
    assert host.active is False and host.released == "cancelled"
    assert LedgerEntry.objects.filter(rep=rep, kind="credited", delta=-1).count() == 1
    assert len(mailoutbox) == 2
    again = post(api, f"/api/v1/bookings/{token}/cancel", {})
    assert again.status_code == 409 and again.json()["code"] == "booking_already_cancelled"
    # the slot is free again
    assert post(api, URL, body(email="next@example.org")).status_code == 201


def test_cancel_counts_when_pool_counts_cancellations(api, booked, rep):
    token, _ = booked
    rep.memberships.update()
    pool = rep.pools.get()
    pool.count_cancellations = True
    pool.save()
    post(api, f"/api/v1/bookings/{token}/cancel", {})
    assert not LedgerEntry.objects.filter(kind="credited").exists()


def test_reschedule_keeps_host_when_free(api, booked, rep):
    token, created = booked
    response = post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T10:30:00+01:00"})
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["start"] == "2026-03-03T10:30:00+01:00" and data["sequence"] == 1
    booking = Booking.objects.get(pk=created["id"])
    host = booking.hosts.get()
    assert host.rep_id == rep.pk and host.active
    assert host.blocked_start == dt.datetime(2026, 3, 3, 9, 30, tzinfo=dt.UTC)
    assert booking.decision["history"][-1]["kept_hosts"] is True


def test_reschedule_routes_again_when_host_busy(api, meeting_type, rep):
    other = make_rep("Bo")
    from routing.models import PoolMember

    PoolMember.objects.create(pool=meeting_type.pool, rep=other, rank=1)
    meeting_type.pool.strategy = "first_available"
    meeting_type.pool.save()
    token = post(api, URL, body()).json()["manage_token"]
    booking = Booking.objects.get()
    first_host = booking.hosts.get().rep_id
    BusyInterval.objects.create(
        rep_id=first_host,
        start=dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC),
        end=dt.datetime(2026, 3, 4, 10, tzinfo=dt.UTC),
    )
    response = post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-04T10:00:00+01:00"})
    assert response.status_code == 200, response.json()
    rows = {h.rep_id: h for h in booking.hosts.all()}
    new_host = next(r for r in rows if r != first_host)
    assert rows[first_host].active is False and rows[first_host].released == "reassigned"
    assert rows[new_host].active is True
    kinds = set(LedgerEntry.objects.filter(booking=booking).values_list("kind", flat=True))
    assert {"reassigned_from", "reassigned_to"} <= kinds


def test_reschedule_to_taken_time_is_409_and_keeps_old_slot(api, booked):
    token, created = booked
    post(api, URL, body(start="2026-03-03T14:00:00+01:00", email="x@example.org"))
    response = post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-03T14:00:00+01:00"})
    assert response.status_code == 409 and response.json()["code"] == "slot_unavailable"
    booking = Booking.objects.get(pk=created["id"])
    assert booking.start == dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC) and booking.hosts.get().active


def test_reschedule_cancelled_or_past_is_409(api, booked, clock):
    token, _ = booked
    clock.move_to(dt.datetime(2026, 3, 3, 9, 15, tzinfo=dt.UTC))
    past = post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-04T10:00:00+01:00"})
    assert past.status_code == 409 and past.json()["code"] == "booking_in_past"
    clock.move_to(NOW)
    post(api, f"/api/v1/bookings/{token}/cancel", {})
    cancelled = post(api, f"/api/v1/bookings/{token}/reschedule", {"start": "2026-03-04T10:00:00+01:00"})
    assert cancelled.status_code == 409 and cancelled.json()["code"] == "booking_already_cancelled"


def test_reschedule_validation(api, booked):
    token, _ = booked
    for data in ({}, {"start": "2026-03-04T10:00:00"}, {"start": "2026-03-04T10:07:00+01:00"}):
        response = post(api, f"/api/v1/bookings/{token}/reschedule", data)
        assert response.status_code == 400 and "start" in response.json()["errors"]


def test_no_session_cookie_or_csrf_needed(api, meeting_type):
    from rest_framework.test import APIClient

    strict = APIClient(enforce_csrf_checks=True)
    response = strict.post(URL, body(), format="json")
    assert response.status_code == 201
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies


def test_post_rate_limit(api, meeting_type, settings):
    settings.BOOKING_RATE_LIMIT = "2/min"
    codes = [post(api, URL, body(start=f"2026-03-03T1{i}:00:00+01:00")).status_code for i in range(3)]
    assert codes == [201, 201, 429]
    assert api.get("/api/v1/meeting-types/intro/slots").status_code == 200  # GETs count apart
    with time_machine.travel(NOW + dt.timedelta(minutes=2), tick=False):
        assert post(api, URL, body(start="2026-03-03T14:00:00+01:00")).status_code == 201


def test_get_rate_limit(api, meeting_type, settings):
    settings.API_READ_RATE_LIMIT = "2/min"
    slots = "/api/v1/meeting-types/intro/slots"
    codes = [api.get(slots).status_code for _ in range(2)] + [api.get("/api/v1/meeting-types").status_code]
    assert codes == [200, 200, 429]
    limited = api.get(slots)
    assert limited.json()["code"] == "rate_limited" and int(limited.headers["Retry-After"]) > 0
    assert post(api, URL, body()).status_code == 201  # POSTs count apart
    with time_machine.travel(NOW + dt.timedelta(minutes=2), tick=False):
        assert api.get(slots).status_code == 200


def test_schema_documents_the_endpoints(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json() if response.headers["Content-Type"].endswith("json") else None
    text = response.content.decode()
    for path in ("/api/v1/meeting-types/{slug}/slots", "/api/v1/bookings/{token}/reschedule"):
        assert path in text
    if schema:
        assert "201" in schema["paths"]["/api/v1/meeting-types/{slug}/bookings"]["post"]["responses"]


def test_schema_says_what_the_api_refuses(api):
    """What the API answers 400 for is in the schema (a client generated from it knows), and no
    implementation note of the serializers leaks into the public description."""
    schema = api.get("/api/schema/?format=json").json()
    body = schema["components"]["schemas"]["BookingCreate"]
    assert body["description"].startswith("A booking: one of the offered starts")
    assert body["properties"]["name"]["minLength"] == 1
    assert body["properties"]["timezone"]["minLength"] == 1
    assert "400" in schema["paths"]["/api/v1/bookings/{token}"]["get"]["responses"]  # a bad ?timezone=


def test_host_rows_survive(meeting_type):
    assert BookingHost.objects.count() == 0
