"""A new admin's and a new rep's first run, following the README ("The two commands", docs/config.md "Demo
data" and "The admin"): rows the rep page refuses say why in words, the demo's re-import leaves an admin's
changes alone, the sign-in page sends a signed-in rep on, and ``make run HOST=…`` serves the URL it prints."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from routing.models import Pool, PoolMember, Rep
from tests.foundation.conftest import run
from tests.foundation.test_foundation_admin_inputs import form_data
from tests.foundation.test_foundation_settings import ROOT

pytestmark = pytest.mark.django_db


def rep_page_errors(client, rows: dict[str, dict[str, str]]) -> list[str]:
    """Add a rep "Zed" on the admin's rep page with one row in each inline of ``rows`` (prefix: fields);
    the error texts the refused page shows."""
    url = reverse("admin:routing_rep_add")
    data = form_data(client.get(url))
    data.update(name="Zed", email="zed@example.com", timezone="Europe/Berlin", active="on")
    for prefix, fields in rows.items():
        data[f"{prefix}-TOTAL_FORMS"] = "1"
        data.update({f"{prefix}-0-{name}": value for name, value in fields.items()})
    response = client.post(url, data)
    assert response.status_code == 200, "the page should refuse the row"
    assert not Rep.objects.filter(email="zed@example.com").exists()
    return [str(error) for error in response.context["errors"]]


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(
            {"working_hours": {"weekday": "0", "start": "17:00", "end": "09:00"}}, id="hours-backwards"
        ),
        pytest.param(
            {"date_overrides": {"date": "2026-03-05", "start": "10:00", "end": ""}}, id="override-half"
        ),
        pytest.param(
            {
                "time_off": {
                    "start_0": "2026-03-09",
                    "start_1": "10:00",
                    "end_0": "2026-03-06",
                    "end_1": "10:00",
                    "reason": "Holiday",
                }
            },
            id="time-off-backwards",
        ),
    ],
)
def test_the_rep_pages_odd_rows_are_refused_in_words_not_by_constraint_name(admin_client, clock, rows):
    """A new admin types a rep's Monday hours the wrong way round (17:00 to 09:00), a date override with a
    start but no end, or time off that ends before it starts. The page is refused, but the only thing it
    says is ``Constraint “workinghours_end_after_start” is violated.`` (``…dateoverride_day_off_or_range…``,
    ``…timeoff_end_after_start…``): a database constraint's internal name, not which row or what to fix.
    The config file says the same mistake in words (``the range ends before it starts: '17:00-09:00'``,
    docs/config.md), and the rep's e-mail constraint already has a message of its own. Cause: the
    CheckConstraints of ``calendars.models`` (WorkingHours, DateOverride, TimeOff) have no
    ``violation_error_message``, and no form check runs before Django's constraint validation."""
    errors = " ".join(rep_page_errors(admin_client, rows))
    assert "is violated" not in errors and "Constraint" not in errors, errors
    assert "The end must be after the start" in errors or "Give both a start and an end" in errors, errors


def test_an_admins_changes_to_the_demo_survive_the_next_make_run(admin_client, demo, clock):
    """docs/config.md: running ``manage.py demo`` again "changes no configuration", and ``make run`` runs it
    at every start. A new admin tries Baton on the demo: adds their own rep to the demo's ``fast-lane`` pool
    in the admin (the pool page's member inline), stops the server and runs ``make run`` again the next day.
    The re-import treats demo/baton.yaml as the truth for every pool it names: the new member is removed
    from the pool without a word (its upcoming bookings then need attention) and the admin's work is gone.
    Cause: ``routing/management/commands/demo.py`` ``handle`` calls ``import_file`` on every run, not only
    when the demo is not loaded yet."""
    newcomer = Rep.objects.create(name="Zed", email="zed@example.com", timezone="Europe/Berlin")
    pool = Pool.objects.get(slug="fast-lane")
    url = reverse("admin:routing_pool_change", args=[pool.pk])
    data = form_data(admin_client.get(url))
    n = int(data["members-TOTAL_FORMS"])
    data["members-TOTAL_FORMS"] = str(n + 1)
    row = {"rep": newcomer.pk, "rank": "0", "weight": "1", "active": "on", "adjustment": "0"}
    data.update({f"members-{n}-{name}": value for name, value in row.items()})
    assert admin_client.post(url, data).status_code == 302
    assert PoolMember.objects.filter(pool=pool, rep=newcomer).exists()

    output = run("demo")  # the next `make run`

    assert PoolMember.objects.filter(pool=pool, rep=newcomer).exists(), output


def test_a_signed_in_rep_opening_the_sign_in_page_with_next_pointing_at_it_gets_no_500(clock):
    """A rep who is signed in opens ``/accounts/login/?next=/accounts/login/`` (a bookmarked or forwarded
    sign-in link, or the sign-in page reached again from such a link after signing in in another tab).
    The answer is a 500 (``ValueError: Redirection loop for authenticated user detected``), mailed to
    ADMINS, instead of the rep's calendar page. Cause: ``config/login.py`` builds the reps' sign-in with
    ``LoginView.as_view(redirect_authenticated_user=True)``, and Django raises when the ``next`` it would
    redirect a signed-in user to is the sign-in page itself; a ``next`` naming the login page should fall
    back to ``LOGIN_REDIRECT_URL`` (the calendars page)."""
    user = User.objects.create_user("ana", password="Tr1cky-pass-word")
    Rep.objects.create(name="Ana", email="ana@example.com", timezone="Europe/Berlin", user=user)
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    response = browser.get("/accounts/login/", {"next": "/accounts/login/"})
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        assert response["Location"] != "/accounts/login/?next=/accounts/login/"


def test_make_run_with_another_host_serves_the_url_it_prints():
    """The Makefile takes ``HOST`` (``make run HOST=0.0.0.0`` to reach the demo from another machine or
    a VM's host) and sets ``BASE_URL=http://$(HOST):$(PORT)``: it prints "Baton is serving on
    http://0.0.0.0:8000/", and the admin and landing links follow it. Every request to that address is
    a 400 Bad Request (DisallowedHost): with DEBUG the settings allow only 127.0.0.1 and localhost,
    whatever BASE_URL says. Cause: ``config/settings.py`` line 37, the DEBUG default of ``ALLOWED_HOSTS``
    leaves out BASE_URL's own host."""
    for host in ("0.0.0.0", "192.168.1.5"):
        clean = {
            k: v for k, v in os.environ.items() if k not in {"ALLOWED_HOSTS", "DATABASE_URL", "BASE_URL"}
        }
        clean.update(DEBUG="1", BASE_URL=f"http://{host}:8000", DJANGO_SETTINGS_MODULE="config.settings")
        code = (
            "import django; django.setup(); from django.conf import settings; "
            "from django.http.request import validate_host; "
            f"print(validate_host({host!r}, settings.ALLOWED_HOSTS))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "True", f"{host}: the URL make run prints answers 400"


def test_make_run_on_an_ipv6_address_serves_the_url_it_prints():
    """``make run HOST=[::1]`` (runserver takes a bracketed IPv6 address) prints "Baton is serving on
    http://[::1]:8000/" and sets ``BASE_URL`` to it. The DEBUG default of ``ALLOWED_HOSTS`` added BASE_URL's
    host as ``urlsplit(BASE_URL).hostname``: ``::1`` without brackets, which Django never matches (a
    request's host is ``[::1]``): every request to the printed URL was a 400 DisallowedHost."""
    root = ROOT
    clean = {k: v for k, v in os.environ.items() if k not in {"ALLOWED_HOSTS", "DATABASE_URL", "BASE_URL"}}
    clean.update(DEBUG="1", BASE_URL="http://[::1]:8000", DJANGO_SETTINGS_MODULE="config.settings")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "from django.http.request import split_domain_port, validate_host; "
        "print(validate_host(split_domain_port('[::1]:8000')[0], settings.ALLOWED_HOSTS))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=clean, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True", "http://[::1]:8000/ answers 400 DisallowedHost"
