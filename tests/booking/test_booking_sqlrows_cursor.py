"""``routing.sqlrows`` runs its statements on one cursor per connection (a cursor per statement cost more
than the hot path's small selects). Django's own steps must survive the reuse: logged queries, a connection
that was closed, and the per-request health check that replaces a dropped connection."""

from __future__ import annotations

import psycopg
import pytest
from django.db import close_old_connections, connection

from routing import sqlrows


@pytest.mark.django_db
def test_statements_share_one_cursor_per_connection():
    assert sqlrows.rows("SELECT 1", []) == [(1,)]
    first = connection._sqlrows_cursor
    assert sqlrows.rows("SELECT 2", []) == [(2,)]
    assert connection._sqlrows_cursor is first


@pytest.mark.django_db
def test_logged_queries_still_see_every_statement(django_assert_num_queries):
    sqlrows.rows("SELECT 1", [])  # a plain cursor is kept
    with django_assert_num_queries(2):  # queries are logged now: the debug cursor replaces it
        sqlrows.rows("SELECT 1", [])
        sqlrows.rows("SELECT 2", [])
    sqlrows.rows("SELECT 3", [])
    assert type(connection._sqlrows_cursor).__name__ == "CursorWrapper"


@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_gets_a_new_cursor():
    sqlrows.rows("SELECT 1", [])
    old, before = connection._sqlrows_cursor, connection.connection
    connection.close()  # (SQLite keeps an in-memory test database open)
    assert sqlrows.rows("SELECT 1", []) == [(1,)]
    assert (connection._sqlrows_cursor is old) == (connection.connection is before)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dropped_connection_is_replaced_by_the_next_requests_health_check():
    connection.ensure_connection()
    connection.health_check_enabled, connection.close_at = True, None  # CONN_HEALTH_CHECKS, kept alive
    (pid,) = sqlrows.rows("SELECT pg_backend_pid()", [])[0]
    params = connection.get_connection_params()
    dsn = {k: params[k] for k in ("host", "port", "user", "dbname") if params.get(k)}
    with psycopg.connect(**dsn, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    close_old_connections()  # what Django does when the next request starts
    assert sqlrows.rows("SELECT 1", []) == [(1,)]
    assert sqlrows.rows("SELECT pg_backend_pid()", [])[0][0] != pid


ROW_SQL = (
    "SELECT 7::int, 9000000000::bigint, 2.50::numeric, 'x'::text, true, DATE '2026-03-29', TIME '09:30', "
    "TIMESTAMPTZ '2026-03-29 01:30:00+00', NULL::timestamptz"
)


@pytest.mark.postgres
@pytest.mark.django_db
def test_rows_come_in_binary_format_with_the_same_values_as_in_text():
    with connection.cursor() as cursor:
        server_binding = not isinstance(cursor.cursor, psycopg.ClientCursor)
    if not server_binding:
        pytest.skip("needs server-side binding (…?server_side_binding=true, as in CI and production)")
    binary = sqlrows.rows(ROW_SQL, [])
    assert connection._sqlrows_cursor.cursor.pgresult.fformat(0) == psycopg.pq.Format.BINARY
    text = sqlrows.rows(ROW_SQL, [], text=True)
    assert connection._sqlrows_cursor.cursor.pgresult.fformat(0) == psycopg.pq.Format.TEXT
    assert binary == text
    assert [type(v) for v in binary[0]] == [type(v) for v in text[0]]
    assert binary[0][7].utcoffset().total_seconds() == 0  # aware, in UTC, as Django's loader gives
    # JSON is where the formats differ: parsed in binary, a string for the ORM's converters in text
    assert sqlrows.rows("""SELECT '{"a": 1}'::jsonb""", []) == [({"a": 1},)]
    assert sqlrows.rows("""SELECT '{"a": 1}'::jsonb""", [], text=True) == [('{"a": 1}',)]


@pytest.mark.postgres
@pytest.mark.django_db
def test_only_a_server_binding_cursor_is_asked_for_binary_results():
    connection.ensure_connection()
    raw = connection.connection
    assert sqlrows._binary_capable(psycopg.Cursor(raw))
    assert not sqlrows._binary_capable(psycopg.ClientCursor(raw))  # psycopg refuses binary results there
    assert not sqlrows._binary_capable(object())
