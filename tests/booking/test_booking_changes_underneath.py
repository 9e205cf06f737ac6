"""Things changing under existing bookings: deleting a rep, pool or meeting type in the admin (parts go with
it; protected bookings are named), roles changed in a group pool (seats follow the members' current roles),
a meeting type's duration changed (a booking reports its own length). Each test failed before its fix."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from booking.models import BookingHost
from booking.services import booking_create, booking_reassign, booking_reschedule
from calendars.models import BusyInterval
from routing.models import Pool, PoolMember, Rep
from routing.services import pool_member_join
from tests.booking.booking_factories import NOW, START, make_meeting_type, make_pool, make_rep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
HOUR = dt.timedelta(hours=1)


def book(meeting_type, start=START, email="pat@example.org"):
    body = booking_create(
        meeting_type=meeting_type, start=start, name="Pat", email=email, timezone="Europe/Berlin"
    ).body
    return body, body["manage_token"]


def joined(pool, rep, **kw):
    """A member added as the admin's pool page adds one: the row, then ``pool_member_join``."""
    member = PoolMember.objects.create(pool=pool, rep=rep, **kw)
    pool_member_join(member, reason="added or re-activated by admin in the admin")
    return member


def page_text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


# --- deleting a rep or a pool in the admin


@pytest.mark.parametrize("what", ["rep", "pool"])
def test_a_superuser_can_delete_a_rep_or_pool_that_never_had_a_booking(admin_client, what):
    """An admin adds a rep with a typo in the e-mail address to a pool, notices, and wants to delete the
    rep (or a pool set up by mistake, with no meeting type and no booking). Nothing protects them: their
    member rows, skills, hours and ledger rows cascade by the models. But the admin answers even a superuser
    "Cannot delete rep: … your account doesn't have permission to delete the following types of objects:
    ledger entry" and the POST is a 403: the "joined at mean load" ledger entry that adding the member wrote
    (``routing.admin._after_member_saved`` → ``pool_member_join``) is a cascaded object of a model whose admin
    refuses every deletion (``LedgerEntryAdmin.has_delete_permission`` → False), and RepAdmin / PoolAdmin do
    not take the cascaded parts out of the permission check as ``BookingAdmin.get_deleted_objects`` does. A
    rep or pool once added through the admin can never be deleted there."""
    ana = make_rep("Ana")
    pool = make_pool("round_robin", [])
    joined(pool, ana)
    obj = ana if what == "rep" else pool
    url = reverse(f"admin:routing_{what}_delete", args=[obj.pk])
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302, (response.status_code, page_text(admin_client.get(url))[-300:])
    model = Rep if what == "rep" else Pool
    assert not model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("what", ["rep", "meetingtype"])
def test_deleting_a_rep_or_meeting_type_with_bookings_names_the_bookings(admin_client, what):
    """A rep who hosts an upcoming booking (or a meeting type that has one) cannot be deleted: the bookings
    are PROTECTed, and the admin should say so ("would require deleting the following protected related
    objects: …", naming the booking). Instead a superuser reads "your account doesn't have permission to
    delete the following types of objects: booking host, ledger entry" (or "booking"), which sends them
    looking for a permission they cannot be given, and never names the bookings to cancel or reassign first.
    Django's delete page shows ``perms_lacking`` before ``protected``, and the protected host rows / bookings
    land in ``perms_lacking`` because their admins refuse deletions (``BookingHostAdmin`` always,
    ``BookingAdmin`` for a booking not over); ``RepAdmin``/``MeetingTypeAdmin`` do not override
    ``get_deleted_objects`` as ``BookingAdmin`` does."""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]))
    book(meeting_type)
    obj = ana if what == "rep" else meeting_type
    app = "routing" if what == "rep" else "booking"
    text = page_text(admin_client.get(reverse(f"admin:{app}_{what}_delete", args=[obj.pk])))
    assert "would require deleting the following protected related objects" in text, text[-400:]


# --- stored seat roles against the members' current roles (group pools)


@pytest.mark.parametrize("change", ["pool_switched_to_group", "roles_renamed"])
def test_an_existing_booking_can_be_reassigned_after_the_pools_roles_change(change):
    """An admin turns a round-robin pool into a ``group`` pool (giving members the roles ae/se), or renames a
    group pool's role "ae" to "am". An upcoming booking's host is then deactivated; the admin follows "See
    and reassign" and picks a colleague — every choice is refused, e.g. "The '' seat goes only to a member
    in that role; Cy is 'ae'.": the seat's role is read from the host row stored at booking time ("" or
    "ae"), a role no member has any more, so no member can ever take the seat and the only way out is to
    cancel the prospect's meeting. Was: ``booking/services/reassign.py:131`` compares the target member's
    current role with the host row's stored role."""
    ana, bo, cy = make_rep("Ana"), make_rep("Bo"), make_rep("Cy")
    if change == "pool_switched_to_group":
        pool = make_pool("round_robin", [ana, bo, cy])
    else:
        pool = make_pool("group", [ana, bo, cy], roles=["ae", "se", "ae"])
    body, _ = book(make_meeting_type(pool))
    lead = Rep.objects.get(email=body["hosts"][0]["email"])
    if change == "pool_switched_to_group":
        Pool.objects.filter(pk=pool.pk).update(strategy="group")
        for rep, role in ((ana, "ae"), (bo, "se"), (cy, "ae")):
            PoolMember.objects.filter(pool=pool, rep=rep).update(role=role)
    else:
        PoolMember.objects.filter(pool=pool, role="ae").update(role="am")
    lead_role = PoolMember.objects.get(pool=pool, rep=lead).role
    target = PoolMember.objects.filter(pool=pool, role=lead_role).exclude(rep=lead).get()
    booking_reassign(booking_id=body["id"], to_member_id=target.pk, reason="host left", now=NOW)
    hosts = set(
        BookingHost.objects.filter(booking_id=body["id"], active=True).values_list("rep_id", flat=True)
    )
    assert target.rep_id in hosts and lead.pk not in hosts


def test_a_reschedule_keeps_the_free_account_executive_after_roles_are_renamed():
    """A group pool (ae: Ana, Cy; se: Bo, Di); Pat's meeting is with Ana and Bo. The admin renames the role
    "ae" to "am". Pat moves the meeting to a time when Bo is busy and Ana is free. Documented: "the hosts free
    then keep their seats and only the other roles are routed, so a prospect keeps their account executive
    when only the sales engineer is busy". Instead Ana is dropped for Cy (and gets "You no longer host this
    meeting"): ``booking/services/manage.py:216`` seats the free hosts by the role stored on their host rows
    ("ae"), which no member has any more, so ``seats_kept`` restricts nothing and every role is routed
    afresh. The seat should be keyed by the member's current role."""
    ana, cy, bo, di = make_rep("Ana"), make_rep("Cy"), make_rep("Bo"), make_rep("Di")
    pool = make_pool("group", [ana, cy, bo, di], roles=["ae", "ae", "se", "se"])
    body, token = book(make_meeting_type(pool))
    assert [h["name"] for h in body["hosts"]] == ["Ana", "Bo"]
    PoolMember.objects.filter(pool=pool, role="ae").update(role="am")
    new = START + HOUR
    BusyInterval.objects.create(rep=bo, start=new, end=new + HOUR)
    out = booking_reschedule(token=token, start=new, now=NOW)
    assert "Ana" in [h["name"] for h in out["hosts"]], out["hosts"]


# --- a meeting type's duration changed under a booking


def test_the_booking_api_reports_the_bookings_own_length_after_the_type_changes():
    """Pat booked a 30-minute intro (10:00–10:30). The admin then makes the meeting type 60 minutes. ``GET
    /api/v1/bookings/{token}`` now answers ``start`` 10:00, ``end`` 10:30 and ``meeting_type.duration`` 60:
    one response contradicting itself, and a client (the embed, a CRM sync) that shows "60 min" from it
    tells Pat the wrong length. ``booking.presenters.booking_body`` (``booking/presenters.py:60``) reads the
    duration from the meeting type as it is now, not from the booking."""
    ana = make_rep("Ana")
    meeting_type = make_meeting_type(make_pool("round_robin", [ana]))
    _, token = book(meeting_type)
    meeting_type.duration_minutes = 60
    meeting_type.save()
    body = APIClient().get(f"/api/v1/bookings/{token}").json()
    length = dt.datetime.fromisoformat(body["end"]) - dt.datetime.fromisoformat(body["start"])
    assert body["meeting_type"]["duration"] == length.total_seconds() / 60, body
