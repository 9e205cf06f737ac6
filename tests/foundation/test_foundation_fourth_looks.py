"""Fourth looks at the day's changes: no 404 mailed to the admins, account owners learned only from meetings
that took place (also by ``learn_account_owners``), the admin's logout page kept, a login linked to no rep
can sign out, a reschedule's history names the hosts it had. Each test failed before its fix."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db]


def test_a_404_is_not_mailed_to_the_admins(client, settings, mailoutbox):
    """Production (DEBUG off) with ``ADMINS`` set: every 404 a scanner asks for, every 400 of a mistyped
    booking form and every 429 is mailed to the admins ("[Django] WARNING: Not Found: /wp-login.php"), sent
    by SMTP inside the request. e22920e gave the ``django`` logger its own ``mail_admins`` handler
    (config/settings.py, LOGGING["handlers"]["mail_admins"]) without Django's ``"level": "ERROR"``, and the
    logger's level is INFO: every WARNING of ``django.request`` / ``django.security`` reaches it. Only the
    500s (ERROR) should be e-mailed, as before."""
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.DEBUG = False
    response = client.get("/wp-login.php")
    assert response.status_code == 404
    assert [m.subject for m in mailoutbox] == [], "a 404 was e-mailed to ADMINS"


# --- b74b3b2: account owners learned from a booking anyone can type ----------------------------------------


def fake_bigcorp_booking():
    """Ana works mornings, Ben afternoons (Berlin); an anonymous visitor books 15:00 as nobody@bigcorp.io,
    so Ben hosts. Returns (meeting type, Ben, the booking's API body)."""
    from rest_framework.test import APIClient

    from leads.models import RoutingRule
    from tests.booking.booking_factories import make_meeting_type, make_pool, make_rep

    ana = make_rep("Ana", hours=(9, 12))
    ben = make_rep("Ben", hours=(13, 17))
    pool = make_pool("first_available", [ana, ben])
    meeting = make_meeting_type(pool, slug="sales-demo")
    RoutingRule.objects.create(
        meeting_type=meeting, order=1, name="Owner", outcome="account_owner", pool=pool, fallback_after_days=5
    )
    fake = {
        "start": "2026-03-03T15:00:00+01:00",
        "name": "Nobody",
        "email": "nobody@bigcorp.io",
        "timezone": "Europe/Berlin",
    }
    made = APIClient().post("/api/v1/meeting-types/sales-demo/bookings", fake, format="json")
    assert made.status_code == 201, made.content
    assert [h["name"] for h in made.json()["hosts"]] == ["Ben"]
    return meeting, ben, made.json()


def test_learn_account_owners_does_not_take_an_owner_from_a_meeting_still_to_come(clock):
    """b74b3b2 stopped ``_history_owner`` from trusting bookings still to come ("anyone can type any address
    into the booking form"), but ``manage.py learn_account_owners`` (``leads/accounts.py:94-96``
    ``accounts_learn_owners``) still counts every *confirmed* booking, future ones included. The admin runs
    the command the docs recommend; the visitor's one booking as nobody@bigcorp.io for next week makes
    Ben the stored, permanent owner (``Account`` row, which wins over any history) of every bigcorp.io lead.
    It should count the same meetings that took place as ``_history_owner``."""
    from leads.accounts import accounts_learn_owners
    from leads.models import Account

    _, ben, _ = fake_bigcorp_booking()
    accounts_learn_owners()
    owners = dict(Account.objects.values_list("domain", "owner_id"))
    assert owners.get("bigcorp.io") is None, "a booking nobody attended made Ben the bigcorp.io account owner"


def test_a_fake_booking_nobody_attended_does_not_make_its_host_the_owner_once_its_time_has_passed(clock):
    """b74b3b2's fix counts a booking "confirmed and over" as a meeting that took place
    (``leads/owners.py:44-46``). Nothing moves a booking out of *confirmed* unless someone records an
    outcome, so the visitor who books as nobody@bigcorp.io and simply never shows up still makes Ben the
    owner of every real bigcorp.io lead, from the end of that fake meeting onward (the earliest slot: an
    hour or so later). The attack the commit names is delayed, not stopped; its own test's docstring asks
    for "a meeting that was held (an outcome recorded by staff or the host)": count COMPLETED only."""
    from rest_framework.test import APIClient

    from leads.models import Lead

    _, _, booking = fake_bigcorp_booking()
    clock.move_to("2026-03-03T16:00:00+01:00")  # the fake meeting's time has passed; nobody came
    real = {"email": "cfo@bigcorp.io", "name": "Real Buyer", "timezone": "Europe/Berlin"}
    routed = APIClient().post("/api/v1/meeting-types/sales-demo/route", real, format="json")
    assert routed.status_code == 200, routed.content
    owner = Lead.objects.get(email="cfo@bigcorp.io").decision["owner"]
    assert not owner.get("used"), (
        f"the real bigcorp.io lead went to the host a no-show booking chose: {owner}"
    )


# --- b74b3b2: the sign-in page and the admin's logout ------------------------------------------------------


def test_an_admin_who_logs_out_of_the_admin_can_sign_in_to_the_admin_again(admin_user):
    """An administrator clicks "Log out" in the admin. Since ``LOGOUT_REDIRECT_URL = "/accounts/login/"``
    (config/settings.py) the admin's logout redirects to the reps' sign-in page ("Sign in with the login
    your administrator linked to your rep, to connect and choose your calendars") instead of the admin's
    "Logged out / Log in again" page; signing in there (``LOGIN_REDIRECT_URL = "/calendars/"``) lands the
    admin on a 403 "Your login is not linked to a sales rep". Give the rep views their own
    ``next_page``/redirect (``LogoutView.as_view(next_page=...)``) and leave the admin's logout alone."""
    from django.test import Client

    client = Client()
    client.force_login(admin_user)
    out = client.post("/admin/logout/")
    target = out["Location"] if out.status_code == 302 else "/admin/logout/"
    assert not target.startswith("/accounts/login/"), "the admin's logout sends admins to the reps' page"
    # what the admin sees next when signing in on the page they were sent to
    signed = client.post(target, {"username": admin_user.username, "password": "password"}, follow=True)
    assert signed.status_code == 200, f"signing in again ends on HTTP {signed.status_code}"


def test_a_login_linked_to_no_rep_can_sign_out(django_user_model):
    """Someone signs in at /accounts/login/ with a login not linked to a rep (a typo'd account, an admin
    following the docs): they land on /calendars/, a 403 "Your login is not linked to a sales rep", which
    has no "Sign out" (only ``connections.html`` has the form, templates/calendars/no_rep.html has none),
    and /accounts/login/ (``redirect_authenticated_user=True``) sends them straight back to that 403: no
    way to switch to the right login short of clearing cookies. The no-rep page needs the sign-out form."""
    from django.test import Client

    django_user_model.objects.create_user("stray", "stray@example.com", "pw-stray-123")
    client = Client()
    page = client.post(
        "/accounts/login/",
        {"username": "stray", "password": "pw-stray-123", "next": "/calendars/"},
        follow=True,
    )
    assert page.status_code == 403  # "not linked to a sales rep"
    again = client.get("/accounts/login/")
    can_switch = again.status_code == 200 or 'action="/accounts/logout/"' in page.content.decode()
    assert can_switch, "a signed-in login without a rep can neither sign out nor reach the sign-in form"


# --- f3b373d: the decision panel "names the hosts it had" -------------------------------------------------


def test_a_reschedules_history_names_the_hosts_the_meeting_had():
    """f3b373d says the admin's decision panel of a rescheduled booking now "names the hosts it had": it
    fetches their names (``booking/admin_decision.py:48-56``) but never uses them: the History row still
    reads ``from: {"start": "2026-03-03T09:00:00+00:00", "hosts": [17]}``, raw JSON with a rep id (and an
    ISO time), the only place the former host of a reassigned-by-reschedule meeting is shown. The
    ``from`` dict should be rendered like a reassignment's (``Ana (#17)``, the time as ``_when``)."""
    from booking.admin_decision import render_decision
    from tests.booking.booking_factories import make_rep

    ana = make_rep("Ana")
    html = render_decision(
        {
            "strategy": "round_robin",
            "hosts": [],
            "history": [
                {
                    "at": "2026-03-02T07:00:00+00:00",
                    "action": "rescheduled",
                    "from": {"start": "2026-03-03T09:00:00+00:00", "hosts": [ana.pk]},
                    "to": "2026-03-04T09:00:00+00:00",
                    "kept_hosts": False,
                }
            ],
        }
    )
    assert f"Ana (#{ana.pk})" in html, html[html.find("History") :][:400]
