"""The admin accepts what the config file accepts, no more: one day's weekly hours or date overrides do not
overlap, a group pool's members have a role, a rep's address is one mailbox in any letter case; a member
row moved to another pool joins it at the mean load; the file refuses a key given twice."""

from __future__ import annotations

import copy

import pytest
import yaml
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from calendars.admin import DateOverrideInline, WorkingHoursInline
from routing.configfile import (
    ConfigInvalid,
    config_export,
    config_import,
    dump_document,
    load_document,
    parse_config,
)
from routing.models import LedgerEntry, Pool, PoolMember, Rep
from tests.foundation.test_foundation_config import BASE

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported():
    config_import(config=parse_config(copy.deepcopy(BASE)))
    return Rep.objects.get(email="ana@x.example")


def reimported() -> None:
    """The admin's state exported and read back by the file's checks (raises ConfigInvalid if refused)."""
    parse_config(yaml.safe_load(dump_document(config_export())))


def test_weekly_hours_overlapping_another_row_of_the_day_are_refused(admin_client, imported):
    url = reverse("admin:calendars_workinghours_add")
    response = admin_client.post(url, {"rep": imported.pk, "weekday": 0, "start": "10:00", "end": "11:30"})
    assert response.status_code == 200  # Monday 09:00-12:00 is there already; before, saved (302)
    assert "the ranges overlap" in response.content.decode()
    touching = {"rep": imported.pk, "weekday": 0, "start": "12:00", "end": "13:00"}  # touches both: fine
    assert admin_client.post(url, touching).status_code == 302
    reimported()


def test_a_day_off_with_hours_on_the_same_date_is_refused(admin_client, imported):
    url = reverse("admin:calendars_dateoverride_add")
    response = admin_client.post(
        url, {"rep": imported.pk, "date": "2026-12-24", "start": "10:00", "end": "11:00"}
    )
    assert response.status_code == 200 and "a day off cannot have hours" in response.content.decode()


def inline_formset(inline, rep, rows: list[dict]):
    """The rep page's inline formset for ``inline``, bound to ``rows`` (new rows, as typed)."""
    request = RequestFactory().post("/")
    request.user = type("Admin", (), {"is_active": True, "is_staff": True, "has_perm": lambda *a: True})()
    formset_class = inline(Rep, site).get_formset(request, rep)
    prefix = formset_class.get_default_prefix()
    existing = list(formset_class.model.objects.filter(rep=rep).order_by("pk"))
    data = {f"{prefix}-TOTAL_FORMS": len(existing) + len(rows), f"{prefix}-INITIAL_FORMS": len(existing)}
    fields = [f for f in inline.fields]
    for i, row in enumerate(existing):
        data[f"{prefix}-{i}-id"] = row.pk
        data[f"{prefix}-{i}-rep"] = rep.pk
        for name in fields:
            value = getattr(row, name)
            data[f"{prefix}-{i}-{name}"] = "" if value is None else value
    for j, row in enumerate(rows, start=len(existing)):
        data[f"{prefix}-{j}-rep"] = rep.pk
        data.update({f"{prefix}-{j}-{k}": v for k, v in row.items()})
    return formset_class(data, instance=rep, prefix=prefix)


def test_the_rep_pages_rows_are_checked_together(imported):
    both = inline_formset(
        WorkingHoursInline, imported, [{"weekday": 2, "start": "09:00", "end": "12:00"}] * 2
    )
    assert not both.is_valid() and "Wednesday: the ranges overlap." in both.non_form_errors()
    fine = inline_formset(
        WorkingHoursInline,
        imported,
        [{"weekday": 2, "start": "09:00", "end": "12:00"}, {"weekday": 2, "start": "12:00", "end": "00:00"}],
    )
    assert fine.is_valid(), fine.non_form_errors()
    day_off = inline_formset(DateOverrideInline, imported, [{"date": "2026-12-31", "start": "", "end": ""}])
    assert not day_off.is_valid() and "2026-12-31: a day off cannot have hours" in str(
        day_off.non_form_errors()
    )


def test_a_group_pool_member_needs_a_role(admin_client, imported):
    cy = Rep.objects.create(name="Cy", email="cy@x.example", timezone="UTC")
    pool = Pool.objects.get(slug="team")  # a group pool
    data = {
        "pool": pool.pk,
        "rep": cy.pk,
        "rank": 0,
        "weight": 1,
        "role": "",
        "active": "on",
        "adjustment": 0,
    }
    response = admin_client.post(reverse("admin:routing_poolmember_add"), data)
    assert response.status_code == 200 and "Required in a group pool" in response.content.decode()
    assert (
        admin_client.post(reverse("admin:routing_poolmember_add"), {**data, "role": "se"}).status_code == 302
    )
    reimported()


def test_a_rep_address_is_one_mailbox_in_any_letter_case(admin_client, imported):
    doc = copy.deepcopy(BASE)
    doc["reps"].append({"name": "Ana again", "email": "Ana@X.example", "timezone": "UTC"})
    with pytest.raises(ConfigInvalid, match="duplicate rep 'Ana@X.example'"):
        parse_config(doc)
    doc = copy.deepcopy(BASE)
    doc["reps"][0]["email"] = "ANA@x.example"  # the rep exists as ana@x.example
    with pytest.raises(ConfigInvalid, match="a rep exists as 'ana@x.example'"):
        parse_config(doc)
    data = {"name": "Ana 2", "email": "ANA@X.EXAMPLE", "timezone": "UTC", "active": "on"}
    for prefix in ("skills", "working_hours", "date_overrides", "time_off", "memberships"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    response = admin_client.post(reverse("admin:routing_rep_add"), data)
    assert response.status_code == 200 and "in any letter case" in response.content.decode()
    assert Rep.objects.filter(email__iexact="ana@x.example").count() == 1


def test_a_member_moved_to_another_pool_joins_it_at_the_mean_load(admin_client, imported):
    doc = copy.deepcopy(BASE)
    doc["reps"].append({"name": "Cy", "email": "cy@x.example", "timezone": "UTC"})
    doc["pools"] += [
        {
            "slug": "busy",
            "name": "Busy",
            "strategy": "first_available",
            "members": [{"rep": "ana@x.example"}],
        },
        {
            "slug": "quiet",
            "name": "Quiet",
            "strategy": "first_available",
            "members": [{"rep": "cy@x.example"}],
        },
    ]
    config_import(config=parse_config(doc))
    busy = Pool.objects.get(slug="busy")
    PoolMember.objects.filter(pool=busy).update(adjustment=10.0)
    member = PoolMember.objects.get(pool__slug="quiet")
    data = {"pool": busy.pk, "rep": member.rep_id, "rank": 0, "weight": 1, "active": "on", "adjustment": 0}
    response = admin_client.post(reverse("admin:routing_poolmember_change", args=[member.pk]), data)
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.pool_id == busy.pk and member.adjustment == pytest.approx(10.0)  # before: 0, every booking
    assert LedgerEntry.objects.filter(pool=busy, rep_id=member.rep_id, kind="joined").count() == 1


@pytest.mark.parametrize(
    "text,filename",
    [
        ("reps:\n  - name: Ana\n    email: a@x.example\n    name: Ann\n", "baton.yaml"),
        ('{"reps": [], "reps": []}', "baton.json"),
    ],
)
def test_a_key_given_twice_is_refused(text, filename):
    """PyYAML and json keep the last of two equal keys: a pasted second ``monday:`` dropped the first
    Monday's hours without a word."""
    with pytest.raises(ConfigInvalid, match="given twice"):
        load_document(text, filename=filename)


def test_yaml_merge_keys_still_work():
    text = "defaults: &d {timezone: UTC, active: true}\nrep: {<<: *d, timezone: Europe/Berlin}\n"
    assert load_document(text, filename="baton.yaml")["rep"] == {"timezone": "Europe/Berlin", "active": True}


def standing(pool: Pool) -> dict[str, float]:
    from routing.ledger import member_count, pool_ledger

    members = list(PoolMember.objects.filter(pool=pool).select_related("rep"))
    ledger = pool_ledger(pool, [m.rep_id for m in members], now=timezone.now())
    return {m.rep.name: member_count(m, ledger) for m in members}


@pytest.mark.parametrize("where", ["admin", "config file"])
def test_a_rep_made_active_again_starts_at_the_mean_load(where, admin_client, imported):
    """While a rep is inactive the others take their share; made active again (on the rep itself, not the
    membership) they start at each pool's mean load, as a member made active again does. Before, they kept
    their old count and, with a long fairness period, took every booking until caught up."""
    doc = copy.deepcopy(BASE)
    doc["pools"].append(
        {
            "slug": "sales",
            "name": "Sales",
            "strategy": "first_available",
            "fairness_period": "never",
            "members": [{"rep": "ana@x.example"}, {"rep": "ben@x.example"}],
        }
    )
    doc["reps"][1]["active"] = False  # Ben is away
    config_import(config=parse_config(doc))
    sales = Pool.objects.get(slug="sales")
    PoolMember.objects.filter(pool=sales, rep__name="Ana").update(adjustment=12.0)  # Ana took his share
    assert standing(sales) == {"Ana": 12.0, "Ben": 0.0}
    ben = Rep.objects.get(name="Ben")
    if where == "admin":
        data = {"name": "Ben", "email": ben.email, "timezone": ben.timezone, "active": "on", "daily_cap": 4}
        for prefix in ("skills", "working_hours", "date_overrides", "time_off", "memberships"):
            data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
        data.update({"memberships-TOTAL_FORMS": 2, "memberships-INITIAL_FORMS": 2})
        for i, member in enumerate(PoolMember.objects.filter(rep=ben).order_by("pk")):
            data.update({f"memberships-{i}-id": member.pk, f"memberships-{i}-rep": ben.pk})
        response = admin_client.post(reverse("admin:routing_rep_change", args=[ben.pk]), data)
        assert response.status_code == 302, response.content.decode()[:2000]
    else:
        doc["reps"][1]["active"] = True
        config_import(config=parse_config(doc))
    assert standing(sales) == {"Ana": 12.0, "Ben": pytest.approx(12.0)}
    assert LedgerEntry.objects.filter(pool=sales, rep=ben, kind="joined").count() == 2  # added, back
