"""Every registered admin page renders for a logged-in superuser: changelist, add and change form. The
models come from ``admin.site._registry``, so a newly registered model is covered without editing this file
(it only needs a row: see ``_rows`` when the demo and a booking do not make one)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse

from booking.admin_decision import render_decision
from booking.errors import BookingNotStarted
from booking.models import BookingOutcome, IdempotencyKey
from calendars.models import BookingEvent, Calendar, CalendarConnection
from routing.models import LedgerEntry, PoolMember, Rep
from tests.foundation.conftest import watched_google_connection

pytestmark = pytest.mark.django_db


def _rows(booking):
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    def periodic_task():
        every = IntervalSchedule.objects.create(every=5, period="minutes")
        return PeriodicTask.objects.create(name="demo task", task="booking.tasks.noop", interval=every)

    from calendars.models import BusyHistory
    from leads.models import Account, Lead, PoolPerformance, RoutingRule, ScoreModel

    rep = booking.hosts.first().rep
    meeting_type, pool = booking.meeting_type, booking.meeting_type.pool
    connection = CalendarConnection.objects.create(rep=rep, provider="ics", secret_blob="sealed-secret")
    calendar = Calendar.objects.create(connection=connection, external_id="feed")
    return {
        Group: lambda: Group.objects.create(name="Sales ops"),
        SolarSchedule: lambda: SolarSchedule.objects.create(event="sunrise", latitude=52.5, longitude=13.4),
        CrontabSchedule: lambda: CrontabSchedule.objects.create(minute="5"),
        IntervalSchedule: lambda: IntervalSchedule.objects.create(every=5, period="minutes"),
        PeriodicTask: periodic_task,
        ClockedSchedule: lambda: ClockedSchedule.objects.create(
            clocked_time=dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
        ),
        CalendarConnection: lambda: connection,
        Calendar: lambda: calendar,
        BookingEvent: lambda: BookingEvent.objects.create(booking=booking, rep=rep, provider="ics"),
        BookingOutcome: lambda: BookingOutcome.objects.create(booking=booking, kind="held"),
        RoutingRule: lambda: RoutingRule.objects.create(meeting_type=meeting_type, name="Enterprise"),
        ScoreModel: lambda: ScoreModel.objects.create(meeting_type=meeting_type),
        Account: lambda: Account.objects.create(domain="acme.example", owner=rep),
        Lead: lambda: Lead.objects.create(
            meeting_type=meeting_type,
            email="ana@acme.example",
            name="Ana",
            domain="acme.example",
            timezone="Europe/Berlin",
            outcome="routed",
            pool=pool,
        ),
        PoolPerformance: lambda: PoolPerformance.objects.create(pool=pool),
        BusyHistory: lambda: BusyHistory.objects.create(
            rep=rep, start=booking.start, end=booking.end, source="calendar", removed_at=booking.start
        ),
        IdempotencyKey: lambda: IdempotencyKey.objects.create(
            key_hash="k" * 64, request_hash="r" * 64, booking=booking, expires_at=booking.start
        ),
    }


def test_every_admin_page_renders(admin_client, booking):
    rows = _rows(booking)
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        changelist = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert changelist.status_code == 200, f"{model.__name__} changelist"
        add = admin_client.get(reverse("admin:{}_{}_add".format(*info)))
        assert add.status_code == (200 if model_admin.has_add_permission(changelist.wsgi_request) else 403), (
            f"{model.__name__} add form"
        )
        obj = model._default_manager.first()
        if obj is None:
            assert model in rows, f"no {model.__name__} row to open: add a maker to _rows() in {__file__}"
            obj = rows[model]()
        change = admin_client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        assert change.status_code == 200, f"{model.__name__} change form"
        assert b"sealed-secret" not in change.content
        search = admin_client.get(reverse("admin:{}_{}_changelist".format(*info)), {"q": "ana"})
        assert search.status_code == 200, f"{model.__name__} search"


def test_booking_page_shows_hosts_and_readable_decision(admin_client, booking):
    page = admin_client.get(reverse("admin:booking_booking_change", args=[booking.pk])).content.decode()
    host = booking.hosts.get()
    assert host.rep.name in page
    assert "Candidates, in the order they were considered" in page
    assert "<strong>chosen</strong>" in page
    assert "&quot;candidates&quot;" not in page and '"candidates"' not in page  # not raw JSON
    assert "Reassign…" in page


def test_render_decision_escapes_and_names_everything():
    rep = Rep.objects.create(name="Withheld Wanda", email="w@x.example", timezone="UTC")
    html = render_decision(
        {
            "strategy": "ranked",
            "start": "2026-03-03T10:00:00Z",
            "candidates": [
                {
                    "rep_id": 901,
                    "name": "<b>Ana</b>",
                    "role": "",
                    "count": 1.0,
                    "weight": 1.0,
                    "load": 1.0,
                    "last_assigned": None,
                    "rank": 0,
                    "outcome": "skipped",
                    "reason": "outside_working_hours",
                },
                {
                    "rep_id": 902,
                    "name": "Ben",
                    "role": "",
                    "count": 0.0,
                    "weight": 1.0,
                    "load": 0.0,
                    "last_assigned": "2026-03-01T09:00:00Z",
                    "rank": 1,
                    "outcome": "chosen",
                    "reason": None,
                },
            ],
            "hosts": [{"rep_id": 902, "role": ""}],
            "withheld": [rep.pk],
            "history": [
                {
                    "at": "2026-03-02T08:00:00Z",
                    "action": "reassigned",
                    "from": 902,
                    "to": 901,
                    "reason": "vacation",
                }
            ],
            "experiment": {"arm": "b"},
        }
    )
    assert "&lt;b&gt;Ana&lt;/b&gt;" in html and "<b>Ana</b>" not in html
    assert "outside working hours" in html and "never" in html and "2026-03-01 09:00 UTC" in html
    assert "chosen: <strong>Ben (#902)</strong>" in html
    assert "Withheld Wanda" in html
    assert "reassigned" in html and "vacation" in html
    assert "experiment" in html and "arm" in html


def test_reassign_page_moves_the_booking_with_a_reason(admin_client, booking):
    url = reverse("admin:booking_booking_reassign", args=[booking.pk])
    old = booking.hosts.get(active=True).rep
    page = admin_client.get(url)
    assert page.status_code == 200
    choices = list(page.context["form"].fields["to_member"].queryset)
    assert choices and old not in [m.rep for m in choices]
    no_reason = admin_client.post(url, {"to_member": choices[0].pk, "reason": ""})
    assert no_reason.status_code == 200 and no_reason.context["form"].errors["reason"]
    assert booking.hosts.get(active=True).rep == old
    for member in choices:  # the first member free at that time takes it
        response = admin_client.post(url, {"to_member": member.pk, "reason": "rep is ill"})
        if response.status_code == 302:
            break
        assert "is not free then" in str(response.context["form"].non_field_errors())
    else:
        pytest.fail("nobody could take the booking")
    assert booking.hosts.get(active=True).rep == member.rep
    kinds = set(LedgerEntry.objects.filter(booking=booking).values_list("kind", flat=True))
    assert {"reassigned_from", "reassigned_to"} <= kinds
    booking.refresh_from_db()
    assert booking.decision["history"][-1]["reason"] == "rep is ill"


def test_pool_inline_adds_member_through_join_and_records_adjustments(admin_client, demo):
    from routing.models import Pool

    pool = Pool.objects.get(slug="enterprise")
    members = list(pool.members.all())
    newcomer = Rep.objects.get(email="dev@demo.baton.example")
    prefix = "members"
    data = {
        "name": pool.name,
        "slug": pool.slug,
        "strategy": pool.strategy,
        "fairness_period": pool.fairness_period,
        "group_order": pool.group_order,
        f"{prefix}-TOTAL_FORMS": len(members) + 1,
        f"{prefix}-INITIAL_FORMS": len(members),
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }
    for i, m in enumerate([*members, PoolMember(pool=pool, rep=newcomer, weight=1.0)]):
        data.update(
            {
                f"{prefix}-{i}-id": m.pk or "",
                f"{prefix}-{i}-pool": pool.pk,
                f"{prefix}-{i}-rep": m.rep_id,
                f"{prefix}-{i}-rank": m.rank,
                f"{prefix}-{i}-weight": m.weight,
                f"{prefix}-{i}-role": m.role,
                f"{prefix}-{i}-daily_cap": m.daily_cap or "",
                f"{prefix}-{i}-active": "on",
                f"{prefix}-{i}-adjustment": m.adjustment,
            }
        )
    data[f"{prefix}-0-adjustment"] = members[0].adjustment + 2.5
    response = admin_client.post(reverse("admin:routing_pool_change", args=[pool.pk]), data)
    assert response.status_code == 302, response.context["adminform"].errors if response.context else response
    assert LedgerEntry.objects.filter(pool=pool, rep=newcomer, kind="joined").exists()
    adjusted = LedgerEntry.objects.get(pool=pool, rep=members[0].rep, kind="adjusted")
    assert adjusted.delta == pytest.approx(2.5)
    assert PoolMember.objects.get(pk=members[0].pk).adjustment == pytest.approx(members[0].adjustment + 2.5)


def test_meeting_type_admin_rejects_bad_questions(admin_client, demo):
    from booking.models import MeetingType

    mt = MeetingType.objects.get(slug="demo")
    url = reverse("admin:booking_meetingtype_change", args=[mt.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        questions='[{"key": "size", "label": "Size", "type": "select"}]', pool=mt.pool_id, active="on"
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "questions[0].options: a select question needs" in response.content.decode()


def test_outcome_actions_use_the_service(admin_client, booking, clock):
    url = reverse("admin:booking_booking_changelist")
    early = admin_client.post(url, {"action": "record_held", "_selected_action": [booking.pk]}, follow=True)
    assert BookingNotStarted.default_detail in early.content.decode()
    assert not BookingOutcome.objects.filter(booking=booking).exists()
    clock.move_to(booking.end + dt.timedelta(minutes=5))
    admin_client.post(url, {"action": "record_no_show", "_selected_action": [booking.pk]})
    booking.refresh_from_db()
    assert booking.status == "no_show" and booking.outcome.kind == "no_show"
    page = admin_client.get(reverse("admin:booking_booking_change", args=[booking.pk])).content.decode()
    assert "No-show" in page


@pytest.mark.parametrize("how", ["delete page", "delete selected"])
def test_deleting_a_calendar_connection_in_the_admin_stops_its_push_channel(
    admin_client, stopped_channels, how
):
    """A rep's Google connection deleted on the calendar connections page (its delete button, or "Delete
    selected" on the list) goes as Disconnect takes it (``connection_delete``): its push channel is stopped
    first, as the rep admin's delete does (``_disconnect_calendars``). Before, Django's delete let it
    cascade away with the channel left running: Google kept POSTing to /calendars/webhooks/google for
    days, each answered 404."""
    connection = watched_google_connection(
        Rep.objects.create(name="Ana", email="ana@example.com", timezone="Europe/Berlin")
    )
    if how == "delete page":
        url = reverse("admin:calendars_calendarconnection_delete", args=[connection.pk])
        response = admin_client.post(url, {"post": "yes"})
    else:
        url = reverse("admin:calendars_calendarconnection_changelist")
        data = {"action": "delete_selected", "_selected_action": [connection.pk], "post": "yes"}
        response = admin_client.post(url, data)
    assert response.status_code == 302
    assert not CalendarConnection.objects.filter(pk=connection.pk).exists()
    assert not Calendar.objects.filter(connection_id=connection.pk).exists()
    assert stopped_channels == ["channel-1"], (
        "the connection's Google push channel was left running at Google"
    )
