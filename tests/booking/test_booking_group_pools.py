"""Group pools (one host of every role) that can never offer a time: a member in a zone whose UTC offset is
not a multiple of the slot grid (Asia/Kolkata, +05:30, against a 60-minute grid), or a role left without an
active member. The documented rule is that such a pool offers nothing; these tests are about who is told
(the config import, the admin; the booking page: tests/e2e/test_e2e_group_no_times.py), and about seats in
a group booking that an admin gave (kept at a reschedule through a route; a refusal in words)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from booking.models import MeetingType
from booking.selectors import slots_in_window
from routing.configfile import ConfigInvalid, config_import, parse_config
from routing.core import Interval
from routing.models import PoolMember
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep
from tests.foundation.test_foundation_admin_inputs import form_data

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def _doc(*, se_zone: str = "Asia/Kolkata", interval: int = 60, se_active: bool = True) -> dict:
    """Ana (AE, Berlin, 09-17: 08:00-16:00 UTC) and Raj (SE, 09-19 in ``se_zone``: in Kolkata
    03:30-13:30 UTC): four and a half hours a day when both work."""
    return {
        "version": 1,
        "reps": [
            {
                "name": "Ana",
                "email": "ana@x.example",
                "timezone": "Europe/Berlin",
                "working_hours": {d: ["09:00-17:00"] for d in WEEKDAYS},
            },
            {
                "name": "Raj",
                "email": "raj@x.example",
                "timezone": se_zone,
                "working_hours": {d: ["09:00-19:00"] for d in WEEKDAYS},
            },
        ],
        "pools": [
            {
                "slug": "duo",
                "name": "Duo",
                "strategy": "group",
                "members": [
                    {"rep": "ana@x.example", "role": "ae"},
                    {"rep": "raj@x.example", "role": "se", "active": se_active},
                ],
            }
        ],
        "meeting_types": [
            {
                "slug": "deep",
                "title": "Deep dive",
                "duration_minutes": 60,
                "slot_interval_minutes": interval,
                "pool": "duo",
            }
        ],
    }


def _import(doc: dict) -> list[str]:
    """What ``import_config`` prints (its change lines), or the problems it refuses the file with."""
    try:
        return config_import(config=parse_config(doc))
    except ConfigInvalid as exc:
        return list(exc.errors)


def _offered(slug: str) -> list:
    window = Interval(NOW, NOW + dt.timedelta(days=14))
    return slots_in_window(MeetingType.objects.get(slug=slug), window, now=NOW)


def _said_never(lines: list[str]) -> bool:
    text = "\n".join(lines).lower()
    return any(word in text for word in ("grid", "never", "no time", "nothing to offer", "no slot"))


@pytest.mark.django_db
def test_config_import_says_nothing_about_a_group_pool_whose_zones_never_meet_on_the_slot_grid():
    """An admin imports a group pool of a Berlin AE and a Kolkata SE who both work 08:00-13:30 UTC every
    weekday, with a 60-minute slot grid. The import prints "meeting type deep: created" and nothing else:
    each rep's grid follows their own wall clock (Berlin's hours are :00 UTC, Kolkata's :30 UTC), so the
    booking page never offers a single time, for ever. The admin learns it from prospects who find an
    empty calendar. The checker, which already reads every rep's zone and every meeting type's interval,
    says nothing (routing/configfile/checker.py has no check of a group pool's zones against the grid)."""
    lines = _import(_doc())
    assert _offered("deep") == []  # the documented rule: such a pool offers nothing
    assert _said_never(lines), lines


@pytest.mark.django_db
def test_config_import_says_nothing_about_a_group_role_without_an_active_member():
    """The file makes the group pool's only SE ``active: false`` (on leave). The import succeeds silently;
    the pool's every meeting needs an SE, so the booking page offers nothing until someone notices. A
    demanding admin expects the import to warn that role ``se`` has no active member and meeting type
    ``deep`` can offer no time (the same file with a second SE would be fine)."""
    lines = _import(_doc(se_zone="Europe/Berlin", se_active=False))
    assert _offered("deep") == []
    assert _said_never(lines) or "no active member" in "\n".join(lines).lower(), lines


@pytest.fixture
def kolkata_pool():
    """A group pool: Ana (AE, Berlin) and Raj (SE, Kolkata, 09-19: 03:30-13:30 UTC); a 30-minute meeting
    type on a 30-minute grid, which offers times (both grids meet at every :00 and :30 UTC)."""
    ana = make_rep("Ana")
    raj = make_rep("Raj", tz="Asia/Kolkata", hours=(9, 19))
    pool = make_pool("group", [ana, raj], roles=["ae", "se"])
    return make_meeting_type(pool, slug="duo-call"), ana, raj


@pytest.mark.django_db
def test_admin_changing_the_grid_to_60_minutes_silently_empties_a_group_booking_page(
    admin_client, kolkata_pool, clock
):
    """On the meeting type's admin page the admin changes "slot interval minutes" from 30 to 60 (hourly
    starts look tidier). The page saves with the usual green "was changed successfully" and no warning,
    yet from then on the booking page offers nothing: the Berlin AE's starts are at :00 UTC, the Kolkata
    SE's at :30 UTC, and a group meeting needs both (booking/admin.py ``MeetingTypeAdmin`` has no check of
    the grid against the pool's zones)."""
    meeting_type, _ana, _raj = kolkata_pool
    assert _offered("duo-call")  # 30 minutes: times offered
    url = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk])
    data = form_data(admin_client.get(url))
    data["slot_interval_minutes"] = "60"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    meeting_type.refresh_from_db()
    assert meeting_type.slot_interval_minutes == 60
    assert _offered("duo-call") == []  # the documented rule: nothing is offered any more
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(m.level_tag == "warning" for m in get_messages(response.wsgi_request)) or _said_never(said), (
        said
    )


@pytest.mark.django_db
def test_admin_deactivating_the_last_member_of_a_role_gives_no_warning(admin_client, clock):
    """On the pool member page the admin unticks "active" for the group pool's only SE. The save shows
    "was changed successfully" and nothing else, though every meeting of the pool needs an SE: the pool's
    booking page now offers nothing at all. The rep page warns about the rep's bookings needing attention,
    but nothing warns that a live booking page just went empty (routing/admin.py ``PoolMemberAdmin``)."""
    ana, sol = make_rep("Ana"), make_rep("Sol")
    pool = make_pool("group", [ana, sol], roles=["ae", "se"])
    make_meeting_type(pool, slug="duo-demo")
    assert _offered("duo-demo")
    member = PoolMember.objects.get(pool=pool, rep=sol)
    url = reverse("admin:routing_poolmember_change", args=[member.pk])
    data = form_data(admin_client.get(url))
    data.pop("active", None)  # unticked
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content[:2000]
    assert _offered("duo-demo") == []
    found = list(get_messages(response.wsgi_request))
    said = [str(m) for m in found]
    assert any(m.level_tag == "warning" for m in found) or _said_never(said), said


@pytest.mark.django_db
def test_group_reschedule_drops_the_ae_an_admin_seated_when_the_booking_came_through_a_route(clock):
    """A lead was routed to Ann (AE) of a group pool (the route's candidates: Ann and both SEs); the admin
    then gave the AE seat to Abe, the account's owner (``booking_reassign``: allowed, Abe is a member of the
    pool and free). The prospect moves the meeting to a time when Abe is free but the SE is busy. The rule
    is "the hosts still free keep their seats (the prospect keeps their AE); only the other roles are
    routed" (booking/services/manage.py ``_new_hosts``), yet the prospect ends up with Ann again and Abe's
    meeting is silently cancelled: the kept seats are applied to the pool restricted to the route's
    candidates (``seats_kept(routed.spec, …)``), where Abe, not a candidate, is unavailable, so keeping the
    seat fails and the whole meeting is routed again among the candidates. ``reschedule_slots`` already
    knows that "a host kept need not be a candidate of the route"."""
    from booking.models import Booking
    from booking.services import booking_create, booking_reassign, booking_reschedule
    from calendars.models import BusyInterval
    from leads.tokens import Route
    from tests.booking.booking_factories import START

    ann, abe, sol, sue = make_rep("Ann AE"), make_rep("Abe AE"), make_rep("Sol SE"), make_rep("Sue SE")
    pool = make_pool("group", [ann, abe, sol, sue], roles=["ae", "ae", "se", "se"])
    meeting_type = make_meeting_type(pool, slug="routed-duo")
    route = Route(pool=pool, rep_ids=frozenset({ann.pk, sol.pk, sue.pk}))
    created = booking_create(
        meeting_type=meeting_type,
        start=START,
        name="Pat",
        email="pat@example.org",
        timezone="UTC",
        route=route,
    ).body
    booking = Booking.objects.get(pk=created["id"])
    hosts = {h.role: h.rep for h in booking.hosts.filter(active=True).select_related("rep")}
    assert hosts["ae"] == ann
    abe_member = PoolMember.objects.get(pool=pool, rep=abe)
    booking_reassign(
        booking_id=booking.pk, to_member_id=abe_member.pk, from_rep_id=ann.pk, code="account_owner"
    )
    se = hosts["se"]
    new_start = START + dt.timedelta(hours=2)
    BusyInterval.objects.create(rep=se, start=new_start, end=new_start + dt.timedelta(minutes=30))
    moved = booking_reschedule(token=created["manage_token"], start=new_start)
    now = {h["role"]: h["name"] for h in moved["hosts"]}
    assert now["se"] != se.name
    assert now["ae"] == "Abe AE", now


@pytest.mark.django_db
def test_reassigning_a_group_seat_to_a_member_whose_calendar_is_stale_says_inactive(clock):
    """The admin gives the SE seat of a group booking to Raj, an active SE whose Google calendar has not
    synced yet (Baton cannot see his busy time: he is withheld). The refusal reads "Raj SE is not free
    then: inactive." Raj is active (rep and membership); the admin checks both, finds them ticked and has
    no idea what is wrong. The reason is the calendar (booking/services/reassign.py ``_why_not_free`` gets
    the withheld rep as an inactive member from ``load_pool_state`` and reports the core's ``inactive``;
    the booking's own decision record lists such reps as withheld)."""
    from booking.errors import ReassignNotPossible
    from booking.models import Booking
    from booking.services import booking_create, booking_reassign
    from calendars.models import Calendar, CalendarConnection
    from tests.booking.booking_factories import START

    ana, sol, raj = make_rep("Ana AE"), make_rep("Sol SE"), make_rep("Raj SE")
    pool = make_pool("group", [ana, sol, raj], roles=["ae", "se", "se"])
    connection = CalendarConnection.objects.create(rep=raj, provider="google", secret_blob="x")
    Calendar.objects.create(connection=connection, external_id="raj", blocks_availability=True)
    meeting_type = make_meeting_type(pool, slug="stale-duo")
    created = booking_create(
        meeting_type=meeting_type, start=START, name="Pat", email="pat@example.org", timezone="UTC"
    ).body
    booking = Booking.objects.get(pk=created["id"])
    raj_member = PoolMember.objects.get(pool=pool, rep=raj)
    with pytest.raises(ReassignNotPossible) as refused:
        booking_reassign(booking_id=booking.pk, to_member_id=raj_member.pk, from_rep_id=sol.pk, reason="x")
    message = str(refused.value.detail)
    assert "inactive" not in message, message
    assert "calendar" in message.lower() or "sync" in message.lower(), message
