"""Third looks at the day's changes: deleting reps, pools and meeting types in the admin (only a booking's
parts skip the permission check; a rep's push channels are stopped), group seats after roles change (an SE
promoted, a role renamed after its holder left), a booking's own length on its pages, calendars.0011 on a
date override left without hours, group shares after a rename. Each test failed before its fix."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import pytest
from django.urls import reverse

from booking.models import BookingHost
from booking.services import booking_reassign
from routing.models import PoolMember, Rep
from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep
from tests.booking.test_booking_changes_underneath import book
from tests.foundation.conftest import watched_google_connection

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
HOUR = dt.timedelta(hours=1)


def page_text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def active_hosts(booking_id) -> dict[int, str]:
    return dict(BookingHost.objects.filter(booking_id=booking_id, active=True).values_list("rep_id", "role"))


# --- routing/admin_parts.py: DeletedWithIt drops every missing permission, not only the "parts"'


def test_staff_allowed_to_delete_meeting_types_but_not_leads_cannot_wipe_the_leads(client):
    """A sales-ops staff account may delete meeting types (``booking.delete_meetingtype``) but was given no
    right to delete leads: the prospects who filled in the page (name, e-mail, answers, routing decision,
    disqualified ones in nurture). It deletes an old meeting type that never got a booking: the admin
    should refuse ("your account doesn't have permission to delete … lead", 403 on the POST) as Django does
    for cascaded rows of a model the user may not delete. Since 4a43ace the page says nothing about leads and
    the POST deletes every lead of the meeting type (Lead.meeting_type is CASCADE):
    ``DeletedWithIt.get_deleted_objects`` (routing/admin_parts.py:14-16) throws away the whole
    ``perms_needed`` set, not just the rows whose own admin refuses deletion by design (ledger entries)."""
    from django.contrib.auth.models import Permission, User

    from leads.models import Lead

    meeting_type = make_meeting_type(make_pool("round_robin", [make_rep("Ana")]))
    Lead.objects.create(
        meeting_type=meeting_type,
        email="lee@bigco.example",
        name="Lee",
        domain="bigco.example",
        timezone="Europe/Berlin",
        outcome=Lead.Outcome.DISQUALIFIED,
    )
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="booking", codename__in=["view_meetingtype", "delete_meetingtype"]
        )
    )
    client.force_login(staff)
    url = reverse("admin:booking_meetingtype_delete", args=[meeting_type.pk])
    response = client.post(url, {"post": "yes"})
    assert Lead.objects.filter(email="lee@bigco.example").exists(), (
        f"a staff user without delete_lead deleted the meeting type's leads (HTTP {response.status_code})"
    )


def test_deleting_a_rep_in_the_admin_stops_the_push_channels_of_its_calendars(admin_client, stopped_channels):
    """An admin deletes a rep (now possible in the admin, 4a43ace) who had connected a Google calendar with
    push notifications on. The connection, its calendars and the encrypted tokens cascade away, but the
    channel at Google is never stopped: Google keeps POSTing changes to /calendars/webhooks/google for
    days, each answered 404 (and logged), exactly what ``connection_delete`` / ``_watch_stop_quietly``
    exist to prevent ("its push channel would go on pushing, unknown, for days"). RepAdmin should delete
    the rep's connections through ``connection_delete`` (channels stopped first), as Disconnect does."""
    rep = make_rep("Ana")
    watched_google_connection(rep)
    response = admin_client.post(reverse("admin:routing_rep_delete", args=[rep.pk]), {"post": "yes"})
    assert response.status_code == 302, page_text(response)[-300:]
    assert not Rep.objects.filter(pk=rep.pk).exists()
    assert stopped_channels == ["channel-1"], "the rep's Google push channel was left running at Google"


# --- booking/services/reassign.py: _seat_role


def _group_booking():
    """A group pool (ae: Ana, Cy; se: Bo, Di) and Pat's meeting with Ana (ae) and Bo (se)."""
    ana, bo, cy, di = make_rep("Ana"), make_rep("Bo"), make_rep("Cy"), make_rep("Di")
    pool = make_pool("group", [ana, bo, cy, di], roles=["ae", "se", "ae", "se"])
    body, _ = book(make_meeting_type(pool))
    assert active_hosts(body["id"]) == {ana.pk: "ae", bo.pk: "se"}
    return pool, body, (ana, bo, cy, di)


def test_the_se_seat_of_a_host_promoted_to_ae_goes_to_another_se():
    """Bo, the sales engineer on Pat's meeting (Ana is the AE), is promoted: the admin changes Bo's role in
    the group pool to "ae". Bo's SE seat on the upcoming meeting has to be handed over, so the admin
    reassigns it to Di, the other SE: refused, "The 'ae' seat goes only to a member in that role; Di is
    'se'." Only an AE is accepted (Cy), which leaves Pat's meeting with two account executives and no sales
    engineer. ``_seat_role`` (booking/services/reassign.py:25-33) takes the seat's role from its holder's
    role *now* even when the row's own role ("se") is still a role of the pool; it should keep the row's
    role while some member has it (and follow a rename only when none does)."""
    pool, body, (ana, bo, cy, di) = _group_booking()
    PoolMember.objects.filter(pool=pool, rep=bo).update(role="ae")
    di_member = PoolMember.objects.get(pool=pool, rep=di)
    booking_reassign(
        booking_id=body["id"], to_member_id=di_member.pk, from_rep_id=bo.pk, reason="promoted", now=NOW
    )
    assert active_hosts(body["id"]) == {ana.pk: "ae", di.pk: "se"}


def test_a_departed_hosts_seat_is_not_given_to_a_second_ae_after_a_rename():
    """Bo (se) leaves the company: his membership is removed, and the admin renames the pool's "se" role
    to "sales" (Di). Bo's seat on Pat's meeting then goes to anyone: reassigning it to Cy, a second AE, is
    accepted, and Pat meets two AEs and no sales engineer. ``_seat_role`` returns None ("no limit") when the
    departed holder's stored role matches no member; the seat is the one role of the pool the other hosts
    do not hold ("sales" here), and only a member in it should be able to take it."""
    from booking.errors import ReassignNotPossible

    pool, body, (ana, bo, cy, di) = _group_booking()
    PoolMember.objects.filter(pool=pool, rep=bo).delete()
    PoolMember.objects.filter(pool=pool, role="se").update(role="sales")
    cy_member = PoolMember.objects.get(pool=pool, rep=cy)
    with pytest.raises(ReassignNotPossible):
        booking_reassign(
            booking_id=body["id"], to_member_id=cy_member.pk, from_rep_id=bo.pk, reason="left", now=NOW
        )


# --- a booking's own length (4a43ace: the API; the pages still read the type's)


def test_the_manage_page_states_the_bookings_own_length_after_the_type_changes(client):
    """Pat booked a 30-minute intro (10:00–10:30 Berlin). The admin then makes the meeting type 60 minutes.
    The API now says ``duration`` 30 (4a43ace), but Pat's manage page (and the confirmation page, which
    share ``booking/_details.html``) reads "What: Intro call (60 min)" right above "When: … 10:00 – 10:30":
    the page contradicts itself and tells Pat the wrong length. ``_details.html`` reads
    ``meeting_type.duration_minutes``, not the booking's own length (``booking/presenters.py:47``)."""
    meeting_type = make_meeting_type(make_pool("round_robin", [make_rep("Ana")]))
    _, token = book(meeting_type)
    meeting_type.duration_minutes = 60
    meeting_type.save()
    response = client.get(f"/manage/{token}")
    assert response.status_code == 200
    what = re.search(r'id="detail-what">([^<]*)<', response.content.decode()).group(1)
    assert "30 min" in what, what


# --- calendars/migrations/0011: a date override's only range shorter than a minute


def test_calendars_0011_keeps_a_date_that_had_no_bookable_hours_unbookable():
    """A rep's date override for Tuesday 3 March was typed as 09:00:00–09:00:20 (before 0011 the admin took
    seconds): the date's hours are replaced by twenty seconds, so nobody could book Ana that day. 0011 (as
    changed in 5ec1371) deletes "a range shorter than a minute" — the date's only override row — and the
    date falls back to Ana's weekly hours (09:00–17:00): after the upgrade prospects book her on the day
    she had blocked. A date whose every range goes should keep a day-off row (start and end empty), not
    lose its override."""
    from rest_framework.test import APIClient

    from calendars.models import DateOverride

    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]))
    day = dt.date(2026, 3, 3)
    DateOverride.objects.create(rep=ana, date=day, start=dt.time(9, 0), end=dt.time(9, 0, 20))
    migration = importlib.import_module("calendars.migrations.0011_hours_whole_minutes")
    from django.apps import apps

    migration.whole_minutes(apps, None)
    slots = (
        APIClient()
        .get(
            f"/api/v1/meeting-types/{meeting_type.slug}/slots",
            {"start": day.isoformat(), "end": day.isoformat(), "timezone": "Europe/Berlin"},
        )
        .json()["slots"]
    )
    assert slots == [], f"Ana is offered on her blocked day after calendars.0011: {slots[:3]}…"


# --- insights/kpis.py: group shares after a renamed role


def test_dashboard_shares_survive_a_renamed_group_role():
    """A group pool (ae: Ana, Cy; se: Bo, Di) has two meetings this month, Ana+Bo and Cy+Di. The admin
    renames the role "ae" to "am" (4a43ace made such renames work for reassign and reschedule). The
    dashboard's rep table then shows no share at all for Ana and Cy (``share`` None, "nothing assigned")
    though each hosted one of the role's two meetings: ``rep_rows`` (insights/kpis.py:118-153) keys the
    role's seats by the host rows' stored role ("ae") and the member's held seats by (rep, current role)
    ("am"), so both sides read 0 for a renamed role."""
    from insights.kpis import rep_rows

    ana, bo, cy, di = make_rep("Ana"), make_rep("Bo"), make_rep("Cy"), make_rep("Di")
    pool = make_pool("group", [ana, bo, cy, di], roles=["ae", "se", "ae", "se"])
    meeting_type = make_meeting_type(pool)
    first, _ = book(meeting_type, email="pat@example.org")
    second, _ = book(meeting_type, email="sam@example.org")
    hosted = set(active_hosts(first["id"])) | set(active_hosts(second["id"]))
    assert hosted == {ana.pk, bo.pk, cy.pk, di.pk}
    PoolMember.objects.filter(pool=pool, role="ae").update(role="am")
    table = rep_rows(pool, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1))
    rows = {r["name"]: r for r in table["rows"]}
    assert rows["Bo"]["share"] == pytest.approx(0.5)  # the role not renamed
    assert rows["Ana"]["share"] == pytest.approx(0.5), rows["Ana"]
