"""Second looks at the day's changes (2026-12-07): SQLite's migrate without the booking triggers (a failed run
mended by the next, the tallies' own table), a rolling head start whose window deltas sum to zero, and a
short outbox lease with the e-mail timeout's default. Each test failed before its fix."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


# --- booking/triggers.py: SQLite migrate without the triggers


def _plan_rebuilding(model: str):
    """A migration plan whose one migration rebuilds ``model``'s table on SQLite (AddField with a default)."""
    from django.db import migrations, models

    future = migrations.Migration("9999_review_probe", "booking")
    future.operations = [migrations.AddField(model, "review_probe", models.BooleanField(default=False))]
    return future, [(future, False)]


@pytest.mark.django_db
def test_a_migrate_run_again_after_one_that_failed_midway_recounts_copies_and_tallies(monkeypatch):
    """README (8d69ae3): "should it fail midway, run it again before serving". The operator does exactly
    that: a ``migrate`` that rebuilds the bookings' table drops the SQLite triggers, a data migration of that
    run changes a booking's status (uncounted, the triggers are gone), a later migration fails, and the
    process exits without ``post_migrate``. The second ``migrate`` finds no triggers, so ``on_pre_migrate``
    does not mark the run as "dropped", and ``on_post_migrate`` only re-installs the triggers: the host rows
    keep the old status copy and the fairness tallies keep counting the cancelled meeting for good (every
    slot page and booking reads them), until someone runs recount_tallies by hand."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only drops the triggers around migrate")
    from booking import triggers
    from booking.models import Booking, BookingHost
    from tests.booking.booking_factories import NOW, make_meeting_type, make_pool, make_rep

    rep = make_rep()
    pool = make_pool("round_robin", [rep])
    meeting_type = make_meeting_type(pool)
    start = NOW + dt.timedelta(days=1)
    booking = Booking.objects.create(
        meeting_type=meeting_type,
        pool=pool,
        start=start,
        end=start + dt.timedelta(minutes=30),
        status="confirmed",
        prospect_name="P",
        prospect_email="p@example.org",
        prospect_timezone="UTC",
        manage_token_hash="review-" + "0" * 57,
    )
    BookingHost.objects.create(booking=booking, rep=rep, blocked_start=booking.start, blocked_end=booking.end)
    _, plan = _plan_rebuilding("booking")
    try:
        triggers.on_pre_migrate(sender=None, using="default", plan=plan)  # first run: triggers dropped
        with connection.cursor() as cursor:  # one of its data migrations
            cursor.execute("UPDATE booking_booking SET status = 'cancelled' WHERE id = %s", [booking.pk])
        # ... a later migration raises: no post_migrate; the next ``manage.py migrate`` is a new process
        # (with nothing in memory of the first: the module state the first fix kept is reset here)
        monkeypatch.setattr(triggers, "_DROPPED", set(), raising=False)
        triggers.on_pre_migrate(sender=None, using="default", plan=plan)
        triggers.on_post_migrate(sender=None, using="default")
        assert triggers.installed(connection) == triggers.NAMES["sqlite"]
        copies = set(BookingHost.objects.filter(booking=booking).values_list("booking_status", flat=True))
        kept, counted = triggers.tallies_kept_and_counted(connection)
    finally:  # leave the database as the suite's after-test check expects it
        with connection.cursor() as cursor:
            cursor.execute(triggers.BACKFILL)
        triggers.recount(connection)
    assert copies == {"cancelled"}, f"the host row still says {copies} after the re-run migrate"
    assert kept == counted, f"tallies kept {kept - counted}, the host rows give {counted - kept}"


@pytest.mark.django_db(transaction=True)
def test_sqlite_a_table_rebuild_of_the_host_tallies_runs_without_the_triggers():
    """8d69ae3 narrowed the trigger drop to migrations touching ``booking`` or ``bookinghost``. The tally
    triggers on ``booking_bookinghost`` write ``booking_hosttally`` too, so a migration that rebuilds the
    tallies' table (any AddField with a default, a type change, ...) fails on the default SQLite install the
    way 0012 had to dodge for the bookings: "error in trigger baton_host_tally_...: no such table:
    main.booking_hosttally". ``REBUILT`` misses ``hosttally``."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's table rebuild")
    from tests.foundation.test_foundation_upgrades import apply_rebuilding

    error = apply_rebuilding("hosttally")
    assert error is None, f"AddField(HostTally, default=False) on SQLite: {type(error).__name__}: {error}"


# --- routing/ledger.py: rolling_30d decay of "joined" deltas in SQL vs routing.core.ledger.head_start_expired


@pytest.mark.django_db
def test_rolling_head_start_decay_holds_when_the_window_deltas_sum_to_zero():
    """A rolling_30d member joined at the mean (+2.0) and, re-activated later, joined again at -2.0 (its
    head start was more than the mean then). ``head_start_expired`` (the simulator, and the docs) spends
    each delta by its age: 2·20/30 − 2·10/30 ≈ 0.67 of a booking. ``LedgerQuery.read`` tests ``if
    decaying:`` — the SUM of the window's deltas, 0.0 here — and skips the decay altogether, so the live
    routing counts the member 0.67 higher/lower than the simulator and the docs say (the dashboard's
    simulator then disagrees with live routing). ``decaying is not None`` is what was meant."""
    from django.utils import timezone

    from routing.core.ledger import head_start_expired
    from routing.ledger import pool_ledger
    from routing.models import LedgerEntry, Pool, PoolMember
    from tests.booking.booking_factories import make_pool, make_rep

    now = timezone.now().replace(microsecond=0)
    rep = make_rep()
    pool = make_pool("round_robin", [rep], fairness_period=Pool.FairnessPeriod.ROLLING_30D)
    PoolMember.objects.filter(pool=pool, rep=rep).update(joined_at=now - dt.timedelta(days=25))
    deltas = [(now - dt.timedelta(days=20), 2.0), (now - dt.timedelta(days=10), -2.0)]
    for at, delta in deltas:
        entry = LedgerEntry.objects.create(pool=pool, rep=rep, kind=LedgerEntry.Kind.JOINED, delta=delta)
        LedgerEntry.objects.filter(pk=entry.pk).update(created_at=at)
    start = now - dt.timedelta(days=30)
    expected = head_start_expired(deltas, start=start, now=now, rolling=True)
    assert expected == pytest.approx(2 / 3)
    live = pool_ledger(pool, [rep.pk], now=now).expired_joined.get(rep.pk, 0.0)
    assert live == pytest.approx(expected, abs=1e-6), f"live ledger spent {live}, the simulator {expected}"


# --- config/settings.py: EMAIL_TIMEOUT vs the outbox lease


def test_a_short_outbox_lease_allowed_before_still_starts_without_email_timeout_set():
    """``BOOKING_OUTBOX_LEASE_SECONDS`` accepts 30 and more (``minimum=30``), and an installation that set
    e.g. 45 ran fine before daf8c09. After the upgrade it no longer starts: the new EMAIL_TIMEOUT default
    (20 s) is more than a third of 45 s, and ImproperlyConfigured names a variable the operator never set.
    The default should follow the lease (at most a third of it), or the lease's minimum rise to 60 (and the
    README say so)."""
    unset = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "TRUST_X_FORWARDED_PROTO", "EMAIL_TIMEOUT"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(DEBUG="1", BOOKING_OUTBOX_LEASE_SECONDS="45", DJANGO_SETTINGS_MODULE="config.settings")
    code = "import django; django.setup(); from django.conf import settings; print(settings.EMAIL_TIMEOUT)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1]
