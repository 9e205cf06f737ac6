"""``manage.py demo`` / ``demo_admin`` and the landing page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import authenticate, get_user_model

from booking.models import MeetingType
from calendars.models import BusyInterval
from routing.core.strategies import STRATEGY_CHOICES
from routing.models import LedgerEntry, Pool, PoolMember, Rep
from tests.foundation.conftest import run

pytestmark = pytest.mark.django_db


def snapshot():
    busy = sorted(BusyInterval.objects.values_list("rep_id", "start", "end", "external_id"))
    return {
        "reps": Rep.objects.count(),
        "pools": Pool.objects.count(),
        "members": PoolMember.objects.count(),
        "meeting_types": MeetingType.objects.count(),
        "ledger": LedgerEntry.objects.count(),
        "busy": busy,
    }


def test_demo_has_what_the_issue_asks_for(demo):
    reps = Rep.objects.all()
    assert reps.count() >= 6
    assert len({r.timezone for r in reps}) >= 3
    assert {p.strategy for p in Pool.objects.all()} >= {key for key, _ in STRATEGY_CHOICES}
    for pool in Pool.objects.all():
        assert pool.meeting_types.exists(), pool
    group = Pool.objects.get(strategy="group")
    assert set(group.members.values_list("role", flat=True)) == {"ae", "se"}
    assert MeetingType.objects.get(slug="demo").pool.strategy == "first_available"
    assert MeetingType.objects.exclude(questions=[]).exists()
    assert BusyInterval.objects.filter(external_id__startswith="demo:").count() > 50


def test_demo_twice_changes_nothing(demo, clock):
    before = snapshot()
    output = run("demo")
    assert "already loaded, left as it is" in output
    assert snapshot() == before
    output = run("demo", "--reset")  # the file imported again: it matches what it loaded
    assert "no changes (already loaded)" in output
    assert snapshot() == before


def test_demo_busy_times_follow_now_and_are_replaced(demo, clock):
    first = BusyInterval.objects.order_by("start").first().start
    count = BusyInterval.objects.count()
    clock.shift(dt.timedelta(days=7))
    run("demo")
    assert BusyInterval.objects.order_by("start").first().start >= first + dt.timedelta(days=6)
    ids = list(BusyInterval.objects.values_list("external_id", flat=True))
    assert len(ids) == len(set(ids)) and abs(len(ids) - count) <= count // 5


def test_demo_admin_debug_password_and_rerun(settings):
    settings.DEBUG = True
    output = run("demo_admin")
    assert "Password: baton-demo" in output and "Username: admin" in output
    user = authenticate(username="admin", password="baton-demo")
    assert user is not None and user.is_superuser and user.is_staff
    assert "Updated" in run("demo_admin")
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_demo_admin_random_password_without_debug(settings):
    settings.DEBUG = False
    passwords = [re.search(r"Password: (\S+)", run("demo_admin")).group(1) for _ in range(2)]
    assert "baton-demo" not in passwords and passwords[0] != passwords[1]
    assert authenticate(username="admin", password=passwords[1]) is not None
    assert authenticate(username="admin", password=passwords[0]) is None


def test_landing_links_admin_and_each_active_meeting_type(client, demo):
    MeetingType.objects.filter(slug="discovery-call").update(active=False)
    page = client.get("/").content.decode()
    assert 'href="/admin/"' in page
    for mt in MeetingType.objects.filter(active=True):
        assert f'href="/book/{mt.slug}"' in page
        assert f'href="/api/v1/meeting-types/{mt.slug}/slots"' in page
    assert "/book/discovery-call" not in page
