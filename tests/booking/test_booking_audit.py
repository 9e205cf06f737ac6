"""Issue 4 audit: the points not covered elsewhere — durable transactions, rescheduling over its own time,
admin reassignment, per-address rate limits, unknown API paths, the OpenAPI schema without warnings, and
a property test that no POST body makes the API answer 500."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from booking.errors import ReassignNotPossible
from booking.models import Booking
from booking.services import booking_create, booking_reassign, booking_reschedule
from calendars.models import BusyInterval
from routing.models import LedgerEntry, PoolMember
from tests.booking.booking_factories import NOW, body, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
URL = "/api/v1/meeting-types/intro/bookings"


def post(api, url, data, **headers):
    return api.post(url, data, format="json", headers=headers)


# --- one durable transaction


def test_create_and_reschedule_refuse_to_run_inside_an_outer_transaction(meeting_type):
    start = dt.datetime(2026, 3, 3, 9, tzinfo=dt.UTC)
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        booking_create(
            meeting_type=meeting_type,
            start=start,
            name="Pat",
            email="pat@example.org",
            timezone="UTC",
            answers={"size": "1-10"},
        )
    assert not Booking.objects.exists()
    result = booking_create(
        meeting_type=meeting_type,
        start=start,
        name="Pat",
        email="pat@example.org",
        timezone="UTC",
        answers={"size": "1-10"},
    )
    token = result.body["manage_token"]
    with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
        booking_reschedule(token=token, start=start + dt.timedelta(hours=1))


# --- reschedule: its own booking does not count as busy


def test_reschedule_into_an_overlapping_time_keeps_the_host(api, meeting_type, rep):
    meeting_type.duration_minutes = 60
    meeting_type.buffer_after_minutes = 15
    meeting_type.save()
    created = post(api, URL, body()).json()
    # 10:00–11:00 (+15) → 10:30–11:30: overlaps its own current time, which must not block it
    response = post(
        api, f"/api/v1/bookings/{created['manage_token']}/reschedule", {"start": "2026-03-03T10:30:00+01:00"}
    )
    assert response.status_code == 200, response.json()
    booking = Booking.objects.get()
    host = booking.hosts.get()
    assert host.rep_id == rep.pk and host.active
    assert (host.blocked_start, host.blocked_end) == (
        dt.datetime(2026, 3, 3, 9, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 3, 10, 45, tzinfo=dt.UTC),
    )
    # but another booking's time still blocks it
    other = post(api, URL, body(start="2026-03-03T13:00:00+01:00", email="o@example.org"))
    assert other.status_code == 201
    clash = post(
        api, f"/api/v1/bookings/{created['manage_token']}/reschedule", {"start": "2026-03-03T12:30:00+01:00"}
    )
    assert clash.status_code == 409 and clash.json()["code"] == "slot_unavailable"
    assert clash.json()["alternatives"]


def test_a_reschedule_to_the_booking_own_start_changes_and_sends_nothing(
    api, meeting_type, rep, mailoutbox, django_capture_on_commit_callbacks
):
    created = post(api, URL, body()).json()
    url = f"/api/v1/bookings/{created['manage_token']}/reschedule"
    with django_capture_on_commit_callbacks(execute=True):  # the outbox would deliver after each commit
        for start in ("2026-03-03T10:00:00+01:00", "2026-03-03T09:00:00Z"):  # a client's retry, any zone
            again = post(api, url, {"start": start})
            assert again.status_code == 200, again.json()
            assert (again.json()["start"], again.json()["sequence"]) == (created["start"], 0)
            assert [h["name"] for h in again.json()["hosts"]] == ["Ana"]
    booking = Booking.objects.get()
    assert booking.sequence == 0 and "history" not in (booking.decision or {})
    assert mailoutbox == []
    with django_capture_on_commit_callbacks(execute=True):
        assert post(api, url, {"start": "2026-03-03T10:30:00+01:00"}).json()["sequence"] == 1
    assert len(mailoutbox) == 2  # a real move tells the prospect and the host


# --- admin reassignment (service)


@pytest.fixture
def two_rep_booking(api, meeting_type, rep):
    bo = make_rep("Bo")
    member = PoolMember.objects.create(pool=meeting_type.pool, rep=bo, rank=1)
    created = post(api, URL, body()).json()
    booking = Booking.objects.get(pk=created["id"])
    return booking, member


def test_reassign_is_recorded_and_moves_fairness(two_rep_booking, rep):
    booking, member = two_rep_booking
    source = booking.hosts.get(active=True).rep_id
    target = member if source == rep.pk else PoolMember.objects.get(pool=booking.pool, rep=rep)
    booking_reassign(booking_id=booking.pk, to_member_id=target.pk, reason="vacation", actor="admin")
    booking.refresh_from_db()
    hosts = {h.rep_id: h for h in booking.hosts.all()}
    assert hosts[target.rep_id].active and not hosts[source].active
    assert hosts[source].released == "reassigned"
    entry = booking.decision["history"][-1]
    assert (entry["action"], entry["from"], entry["to"], entry["reason"], entry["by"]) == (
        "reassigned",
        source,
        target.rep_id,
        "vacation",
        "admin",
    )
    ledger = {(e.rep_id, e.kind, e.delta) for e in LedgerEntry.objects.filter(booking=booking)}
    assert {(source, "reassigned_from", -1.0), (target.rep_id, "reassigned_to", 1.0)} <= ledger
    assert booking.sequence == 1


def test_reassign_refuses_busy_or_foreign_targets(two_rep_booking, rep):
    booking, member = two_rep_booking
    source = booking.hosts.get(active=True).rep_id
    target = member if source == rep.pk else PoolMember.objects.get(pool=booking.pool, rep=rep)
    BusyInterval.objects.create(rep_id=target.rep_id, start=booking.start, end=booking.end)
    with pytest.raises(ReassignNotPossible, match="not free"):
        booking_reassign(booking_id=booking.pk, to_member_id=target.pk, reason="x")
    stranger = PoolMember.objects.create(pool=make_pool_for_other(), rep=make_rep("Cy"))
    with pytest.raises(ReassignNotPossible, match="not in this booking's pool"):
        booking_reassign(booking_id=booking.pk, to_member_id=stranger.pk, reason="x")
    with pytest.raises(ReassignNotPossible, match="already hosts"):
        own = PoolMember.objects.get(pool=booking.pool, rep_id=source)
        booking_reassign(booking_id=booking.pk, to_member_id=own.pk, reason="x")
    assert booking.hosts.get(active=True).rep_id == source


def make_pool_for_other():
    from tests.booking.booking_factories import make_pool

    return make_pool("round_robin", [])


# --- rate limit is per client address


def test_rate_limit_is_per_client_address(api, meeting_type, settings):
    settings.BOOKING_RATE_LIMIT = "1/min"
    first = api.post(URL, body(), format="json", REMOTE_ADDR="203.0.113.1")
    second = api.post(URL, body(start="2026-03-03T11:00:00+01:00"), format="json", REMOTE_ADDR="203.0.113.1")
    other = api.post(URL, body(start="2026-03-03T12:00:00+01:00"), format="json", REMOTE_ADDR="203.0.113.2")
    assert (first.status_code, second.status_code, other.status_code) == (201, 429, 201)
    assert second.json()["code"] == "rate_limited" and second.json()["retry_after"] >= 1
    assert second.json()["retry_after"] == int(second["Retry-After"])  # the body said one second more


def test_the_servers_own_zone_names_are_no_time_zone(api, meeting_type):
    """The system's zoneinfo directory holds ``localtime`` (the server's own zone) and ``Factory`` (none at
    all): the slots API took them and the booking page's zone list offered them."""
    from routing.validators import known_timezones

    assert not {"localtime", "Factory", "posixrules"} & known_timezones()
    for zone in ("localtime", "Factory"):
        answer = api.get(f"/api/v1/meeting-types/{meeting_type.slug}/slots", {"timezone": zone})
        assert answer.status_code == 400 and "timezone" in answer.json()["errors"]


# --- unknown paths, schema


def test_unknown_api_path_is_json_404(api):
    for response in (api.get("/api/v1/nothing/here"), api.post("/api/v1/bookings/id/x/outcome", {})):
        assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_openapi_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/api/v1/meeting-types:",
        "/api/v1/meeting-types/{slug}:",
        "/api/v1/meeting-types/{slug}/slots:",
        "/api/v1/meeting-types/{slug}/bookings:",
        "/api/v1/bookings/{token}:",
        "/api/v1/bookings/{token}/cancel:",
        "/api/v1/bookings/{token}/reschedule:",
        "/api/v1/bookings/id/{booking_id}/outcome:",
    ):
        assert path in text


# --- no input produces a 500

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_VALUES = {
    "start": st.one_of(
        JSON,
        st.datetimes(
            # hypothesis takes naive bounds and attaches the drawn zone itself
            min_value=dt.datetime(1990, 1, 1),  # noqa: DTZ001
            max_value=dt.datetime(2100, 1, 1),  # noqa: DTZ001
            timezones=st.timezones(),
        ).map(lambda d: d.isoformat()),
        st.sampled_from(["2026-03-03T10:00:00+01:00", "2026-03-03T10:00:00", "2026-03-03T10:00:00+14:00"]),
    ),
    "name": st.one_of(JSON, st.text(max_size=300)),
    "email": st.one_of(JSON, st.emails(), st.text(max_size=300)),
    "timezone": st.one_of(JSON, st.timezone_keys(), st.text(max_size=80)),
    "answers": st.one_of(JSON, st.fixed_dictionaries({"size": JSON}), st.just({"size": "1-10"})),
    "note": st.one_of(JSON, st.text(max_size=2100)),
    "utm": JSON,
}
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries({}, optional=FIELD_VALUES),
    st.fixed_dictionaries(FIELD_VALUES),
)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=BODIES, key=st.one_of(st.none(), st.text(min_size=1, max_size=300)))
def test_no_post_body_makes_a_500(api, meeting_type, data, key):
    headers = {}
    if key is not None:
        try:
            key.encode("latin-1")
        except UnicodeEncodeError:
            key = key.encode("utf-8").decode("latin-1")
        headers["Idempotency-Key"] = key.replace("\r", "").replace("\n", "")
    payload = json.dumps(data, allow_nan=True)
    response = api.post(URL, payload, content_type="application/json", headers=headers)
    assert response.status_code in (201, 400, 409, 422), (response.status_code, data)
    assert "code" in response.json() or response.status_code == 201
    if response.status_code == 201:
        Booking.objects.all().delete()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["start", "end", "timezone", "x"]), st.text(max_size=40)))
def test_no_slots_query_makes_a_500(api, meeting_type, query):
    response = api.get("/api/v1/meeting-types/intro/slots", query)
    assert response.status_code in (200, 400), (response.status_code, query)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        JSON, st.fixed_dictionaries({}, optional={"start": FIELD_VALUES["start"], "timezone": JSON})
    )
)
def test_no_reschedule_body_makes_a_500(api, meeting_type, data):
    token = post(api, URL, body()).json()["manage_token"]
    response = api.post(
        f"/api/v1/bookings/{token}/reschedule", json.dumps(data), content_type="application/json"
    )
    assert response.status_code in (200, 400, 409), (response.status_code, data)
    Booking.objects.all().delete()


def test_now_is_frozen():
    assert dt.datetime.now(dt.UTC) == NOW
