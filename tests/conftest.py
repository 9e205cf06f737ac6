"""Suite-wide test set-up.

* ``@pytest.mark.postgres`` tests run only on PostgreSQL; elsewhere they are skipped, unless
  ``REQUIRE_POSTGRES=1``, which turns the skip into a failure (CI sets it).
"""

from __future__ import annotations

import os

import pytest


def on_postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


@pytest.fixture
def _postgres_required():
    pytest.fail("REQUIRE_POSTGRES=1 but the test database is not PostgreSQL (set DATABASE_URL=postgres://…)")


def pytest_collection_modifyitems(config, items):
    require = os.environ.get("REQUIRE_POSTGRES") == "1"
    for item in items:
        if item.get_closest_marker("postgres") and not on_postgres():
            if require:
                item.add_marker(pytest.mark.usefixtures("_postgres_required"))
            else:
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://…)"))


OVERLAP_SQL = """
SELECT a.id, b.id, a.rep_id FROM booking_bookinghost a
JOIN booking_bookinghost b ON a.rep_id = b.rep_id AND a.id < b.id
WHERE a.active AND b.active AND a.blocked_start < b.blocked_end AND b.blocked_start < a.blocked_end
LIMIT 5
"""


@pytest.fixture(autouse=True)
def no_double_booked_rep(request):
    """After every test that used the database: no two active BookingHost rows of one rep overlap, and the
    fairness tallies are what the host rows count.

    Tests that do not use the database are left alone (no DB is forced on them)."""
    marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if "transactional_db" in names or "live_server" in names or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in names or marker is not None:
        request.getfixturevalue("db")
    else:
        yield
        return
    yield
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(OVERLAP_SQL)
        overlaps = cursor.fetchall()
    assert not overlaps, f"double-booked rep: overlapping active BookingHost rows (a, b, rep) {overlaps}"
    from booking.triggers import tallies_kept_and_counted

    kept, counted = tallies_kept_and_counted(connection)
    assert kept == counted, (
        f"tallies not as the host rows count: kept only {kept - counted}, counted only {counted - kept}"
    )
