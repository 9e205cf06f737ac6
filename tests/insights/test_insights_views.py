"""The staff simulator page: staff only, 400 with field messages on bad input, results on success."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.insights.test_insights_simulator import record_period

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    """Staff who may view bookings (what the insights pages show)."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("boss", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_booking"))
    client.force_login(user)
    return client


def test_simulator_page_is_staff_only(client):
    response = client.get("/insights/simulator/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_status_alone_does_not_open_the_insights_pages(client):
    """Every rep once needed staff status to sign in: the pages (prospects' names, every rep's revenue) ask
    for the permission to view bookings too."""
    client.force_login(get_user_model().objects.create_user("rep", password="pw", is_staff=True))
    assert client.get("/insights/simulator/").status_code == 403
    assert client.get("/insights/").status_code == 403


def test_simulator_page_bad_input_is_400_with_field_messages(staff, pool):
    response = staff.post(
        "/insights/simulator/", {"pool": pool.slug, "mode": "replay", "start": "2026-03-02"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["end"] == ["Required for a replay."]
    response = staff.post("/insights/simulator/", {"pool": "nope", "mode": "synthetic", "start": "x"})
    assert response.status_code == 400
    assert set(response.context["form"].errors) >= {"pool", "start"}
    for data in [  # each was a 500 (the period's arithmetic overflowed) or minutes of work in one request
        {"mode": "replay", "start": "9999-12-30 00:00", "end": "9999-12-31 23:59"},
        {"mode": "replay", "start": "0001-01-01 00:00", "end": "0001-01-02 00:00"},
        {"mode": "synthetic", "start": "9999-12-31 00:00", "rate": "1", "hours": "2"},
        {"mode": "synthetic", "start": "2026-03-02 00:00", "rate": "1000", "hours": "2208"},
    ]:
        response = staff.post("/insights/simulator/", {"pool": pool.slug, **data})
        assert response.status_code == 400, data
        assert set(response.context["form"].errors) & {"start", "rate"}, data


def test_simulator_page_replays_and_draws(staff, meeting_type, reps):
    record_period(meeting_type, reps)
    response = staff.post(
        "/insights/simulator/",
        {
            "pool": meeting_type.pool.slug,
            "mode": "replay",
            "start": "2026-03-02 00:00",
            "end": "2026-03-20 00:00",
        },
    )
    assert response.status_code == 200
    result = response.context["result"]
    assert result["leads"] == 12 and result["results"][0]["reproduced"] == 12
    assert b"<svg" in response.content and b"same hosts as live" in response.content


def test_a_replay_longer_than_the_page_allows_is_400(staff, meeting_type, reps, monkeypatch):
    from insights import forms

    record_period(meeting_type, reps)
    monkeypatch.setattr(forms, "MAX_SYNTHETIC_LEADS", 10)  # the period holds 12 (the limit is 10,000)
    data = {"pool": meeting_type.pool.slug, "mode": "replay", "start": "2026-03-02 00:00"}
    data["end"] = "2026-03-20 00:00"
    response = staff.post("/insights/simulator/", data)
    assert response.status_code == 400  # a replay had no bound: a long history passed gunicorn's timeout
    assert response.context["form"].non_field_errors() == [
        "12 leads in this stream; at most 10 here (`manage.py simulate_routing` runs longer ones)."
    ]
