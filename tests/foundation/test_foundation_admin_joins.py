"""Configuring Baton in the Django admin: members added together on the pool page, and a group member given
another role (there and by the config import), start at the mean load; the "needs attention" link's rep
parameter cannot crash the booking list; the meeting types' public links follow a sub-path deployment."""

from __future__ import annotations

import pytest
from django.test.utils import override_script_prefix
from django.urls import reverse
from django.utils import timezone

from routing.configfile import config_import, parse_config
from routing.ledger import member_count, pool_ledger
from routing.models import LedgerEntry, Pool, PoolMember, Rep
from tests.foundation.test_foundation_admin_inputs import form_data, opened

pytestmark = pytest.mark.django_db


def counts(pool: Pool) -> dict[str, float]:
    """Each member's fairness count as the router sees it (bookings + adjustment), by rep name."""
    members = list(PoolMember.objects.filter(pool=pool).select_related("rep"))
    ledger = pool_ledger(pool, [m.rep_id for m in members], now=timezone.now())
    return {m.rep.name: member_count(m, ledger) for m in members}


def test_members_added_together_on_the_pool_page_all_start_at_the_mean_load(admin_client):
    """Two reps added to a pool in one save of its page should both start at the pool's mean load (the
    config import passes ``joining`` so that members added together do not count each other). The admin
    saves both rows, then joins them one by one without ``joining``: the first newcomer's mean includes the
    second one's zero, so they start at 4.0 and 5.33 instead of 6.0 and get a run of bookings."""
    pool = Pool.objects.create(
        name="Inbound", slug="inbound", strategy="first_available", fairness_period="never"
    )
    reps = [
        Rep.objects.create(name=name, email=f"{name.lower()}@x.example", timezone="UTC")
        for name in ("Ann", "Bob", "Cat", "Dan")
    ]
    for rep in reps[:2]:  # the incumbents: six meetings' worth each
        PoolMember.objects.create(pool=pool, rep=rep, adjustment=6.0)
    url = reverse("admin:routing_pool_change", args=[pool.pk])
    data = form_data(admin_client.get(url))
    for i, rep in enumerate(reps[2:], start=2):
        row = {"pool": pool.pk, "rep": rep.pk, "rank": 0, "weight": 1, "active": "on", "adjustment": 0}
        data.update({f"members-{i}-{key}": value for key, value in row.items()})
    data["members-TOTAL_FORMS"] = 4
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].errors
    found = counts(pool)
    assert found["Cat"] == pytest.approx(6.0) and found["Dan"] == pytest.approx(6.0), found


@pytest.mark.parametrize("value", ["²", "9" * 30])
def test_an_odd_attention_rep_parameter_does_not_break_the_booking_list(admin_client, booking, value):
    """``NeedsAttentionFilter`` takes ``attention_rep`` when ``str.isdigit()`` says so, then calls ``int()``:
    a superscript digit ("²" is a digit to isdigit, not to int) raises ValueError, and a 30-digit id an
    OverflowError on SQLite. The booking list (a hand-edited or mangled link) is a 500 instead of the list."""
    url = reverse("admin:booking_booking_changelist")
    response = opened(admin_client, url, attention="any", attention_rep=value)
    assert getattr(response, "status_code", None) == 200, response


def test_the_meeting_type_links_follow_a_sub_path_deployment(admin_client, demo, settings):
    """Under a sub-path deployment (SCRIPT_NAME /baton, BASE_URL https://example.com/baton, which settings
    and ``config.links`` support) the meeting types' "booking page" and "slots API" links in the admin are
    written as ``/book/<slug>`` and ``/api/v1/…``: they leave Baton's prefix and lead to a 404 on the site
    root. The embed box's demo link on the same page uses ``reverse()`` and is right."""
    settings.BASE_URL = "https://example.com/baton"
    with override_script_prefix("/baton/"):  # as the WSGI handler sets it from SCRIPT_NAME
        url = reverse("admin:booking_meetingtype_changelist")
        response = admin_client.get(url.removeprefix("/baton"), SCRIPT_NAME="/baton")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'href="{url}?' in page or 'href="/baton/admin/' in page  # the admin's own links: prefixed
    assert 'href="/book/demo"' not in page, "the booking page link leaves the /baton prefix"
    assert 'href="/baton/book/demo"' in page
    assert 'href="/baton/api/v1/meeting-types/demo/slots"' in page


def test_a_group_member_given_another_role_starts_at_that_roles_mean_load(admin_client):
    """In a ``group`` pool fairness is per role, and a member joins at the mean load of its own role
    (``pool_member_join``: an SE joining at the mean of AEs and SEs "took every SE seat until caught up").
    Changing a member's role on the pool page moves it into the other role's queue, yet ``_prepare_member``
    re-joins only a row moved to another pool or rep: the former AE keeps its AE-sized count (2) among SEs
    at 6 and takes every SE seat until it has caught up."""
    pool = Pool.objects.create(name="Solutions", slug="solutions", strategy="group", fairness_period="never")
    for name, role, load in [
        ("Ann", "ae", 2.0),
        ("Amy", "ae", 2.0),
        ("Abe", "ae", 2.0),
        ("Sam", "se", 6.0),
        ("Sue", "se", 6.0),
    ]:
        rep = Rep.objects.create(name=name, email=f"{name.lower()}@x.example", timezone="UTC")
        PoolMember.objects.create(pool=pool, rep=rep, role=role, adjustment=load)
    moved = PoolMember.objects.get(pool=pool, rep__name="Abe")
    url = reverse("admin:routing_pool_change", args=[pool.pk])
    data = form_data(admin_client.get(url))
    index = next(k.split("-")[1] for k, v in data.items() if k.endswith("-id") and str(v) == str(moved.pk))
    data[f"members-{index}-role"] = "se"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].errors
    assert PoolMember.objects.get(pk=moved.pk).role == "se"
    found = counts(pool)
    assert found["Abe"] == pytest.approx(6.0), found


def test_a_group_member_given_another_role_by_the_config_import_starts_at_that_roles_mean_load():
    """As on the pool page, so in the config import: a member of a ``group`` pool whose role the file
    changes moves into the other role's queue and starts at that role's mean load (a ``joined`` entry in
    the ledger), not with its old role's count, which took every seat of the new role until caught up."""
    people = [("Ann", "ae", 2), ("Amy", "ae", 2), ("Abe", "ae", 2), ("Sam", "se", 6), ("Sue", "se", 6)]
    doc = {
        "version": 1,
        "reps": [
            {"name": name, "email": f"{name.lower()}@x.example", "timezone": "UTC"} for name, _, _ in people
        ],
        "pools": [
            {
                "slug": "solutions",
                "name": "Solutions",
                "strategy": "group",
                "fairness_period": "never",
                "members": [{"rep": f"{name.lower()}@x.example", "role": role} for name, role, _ in people],
            }
        ],
    }
    config_import(config=parse_config(doc))
    pool = Pool.objects.get(slug="solutions")
    for name, _, load in people:
        PoolMember.objects.filter(pool=pool, rep__name=name).update(adjustment=load)
    doc["pools"][0]["members"][2]["role"] = "se"
    changes = config_import(config=parse_config(doc))
    assert "pool solutions: member abe@x.example: changed role" in changes
    found = counts(pool)
    assert found["Abe"] == pytest.approx(6.0), found
    assert found["Ann"] == found["Amy"] == pytest.approx(2.0) and found["Sam"] == pytest.approx(6.0), found
    joined = LedgerEntry.objects.filter(pool=pool, rep__name="Abe", kind="joined").latest("pk")
    assert joined.delta == pytest.approx(6.0)
    assert config_import(config=parse_config(doc)) == []  # and the next import changes nothing
