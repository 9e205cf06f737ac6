"""The server side of the booking pages and the embed (booking/pages.py, presenters.py, snippet.py,
embed.py) at their edges: UTM keys, the visitor cookie, shared caches, a sub-path deployment, methods, an
unencoded ``+`` in a link. Django's test client only (found by a hunting helper; each test failed before its
fix)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.test.utils import override_script_prefix, override_settings

from booking.pages import VISITOR_COOKIE
from tests.booking.booking_factories import body

pytestmark = pytest.mark.django_db


def config_of(response) -> dict:
    html = response.content.decode()
    tag = '<script id="baton-config" type="application/json">'
    start = html.index(tag) + len(tag)
    return json.loads(html[start : html.index("</script>", start)])


def test_booking_page_never_hands_book_js_more_utm_than_the_api_accepts(client, api, meeting_type, clock):
    """docs/booking-page.md: ``utm_*`` are "sent as ``utm`` with the route and booking requests (stored on the
    booking); malformed keys dropped" — a bad campaign link must never stop a prospect from booking. The
    page copies every well-formed ``utm_*`` key into ``config.utm`` (``utm_params``' own "at most 10" error
    is thrown away), while the booking and route APIs refuse more than 20 keys with a 400 on ``utm``, a
    field the page has no place for. A link (or a host page passing its query through the widget) with 25
    utm_* parameters gives a booking page on which every booking fails. The page should keep no more
    than the API accepts (e.g. the first MAX_UTM) so the booking goes through."""
    query = {f"utm_k{i:02d}": "x" for i in range(25)}
    page = client.get("/book/intro", query)
    assert page.status_code == 200
    utm = config_of(page)["utm"]
    assert set(utm) <= set(query)
    response = api.post("/api/v1/meeting-types/intro/bookings", body(utm=utm), format="json")
    assert response.status_code == 201, response.json()


def test_booking_page_embedding_the_visitor_cookie_is_not_shareable_by_caches(client, meeting_type):
    """The booking page's HTML carries the visitor id read from the ``baton_visitor`` cookie
    (``config.visitor``, sent with the booking for speed-to-lead reporting), so the body depends on the
    Cookie header. The response says neither ``Vary: Cookie`` nor ``Cache-Control: private``/``no-store``:
    a caching proxy or CDN in front of Baton (nginx ``proxy_cache_valid 200``, a "cache everything" rule)
    may store one returning visitor's page and serve that visitor's id to every later prospect, merging
    their visits and bookings into one "visitor" in the insights. The page should mark itself private
    (or vary on Cookie)."""
    visitor = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    client.cookies[VISITOR_COOKIE] = visitor
    response = client.get("/book/intro")
    assert response.status_code == 200 and config_of(response)["visitor"] == visitor
    cache_control = response.headers.get("Cache-Control", "").lower()
    vary = [v.strip().lower() for v in response.headers.get("Vary", "").split(",")]
    assert "cookie" in vary or any(d in cache_control for d in ("private", "no-store", "no-cache")), dict(
        response.headers
    )


def test_utm_key_with_a_trailing_line_break_is_malformed(client, meeting_type, clock):
    """docs/embed.md: utm keys are "``utm_`` + lower-case letters, digits, ``_``"; bad parameters are a 400.
    ``snippet.UTM_KEY`` is ``^utm_[a-z0-9_]{1,40}$`` and ``$`` also matches before a final newline, so
    ``utm_source%0A`` passes: the snippet answers 200 and carries the key on every link, and the booking
    page (same helper) puts ``"utm_source\\n"`` into ``config.utm``, which is stored on the booking and the
    page visit as a key distinct from ``utm_source`` (routing rules on ``utm.utm_source`` and reports per
    source miss it). Use ``\\Z`` / ``fullmatch``."""
    key = "utm_source\n"
    snippet = client.get("/book/intro/email-snippet", {key: "mail"})
    assert snippet.status_code == 400, snippet.content[:200]
    page = client.get("/book/intro", {key: "mail"})
    assert config_of(page)["utm"] == {}


def test_a_visitor_cookie_the_api_refuses_is_replaced_not_handed_to_book_js(client, api, meeting_type, clock):
    """``pages._visitor_id`` keeps a cookie value of 16–64 ``str.isalnum()`` characters, which is true of
    any Unicode letter or digit (``é``, ``٣``), while the booking API's ``visitor`` field takes only
    ``[A-Za-z0-9_-]``. Such a cookie (written by another app on the parent domain, or a browser extension;
    it lives a year and the page never re-issues it) is put into ``config.visitor`` and every booking from
    that browser fails with a 400 on ``visitor``, a field the prospect cannot see or fix. The page should
    accept only what the API accepts (ASCII) and issue a fresh id otherwise."""
    client.cookies[VISITOR_COOKIE] = "é" * 20
    page = client.get("/book/intro")
    assert page.status_code == 200
    visitor = config_of(page)["visitor"]
    response = api.post("/api/v1/meeting-types/intro/bookings", body(visitor=visitor), format="json")
    assert response.status_code == 201, response.json()


def test_booking_page_under_a_sub_path_points_at_its_own_api_and_scripts(client, api, meeting_type, clock):
    """docs/embed.md: "Baton's origin (and a sub-path, if any) is taken from the script's own ``src``" —
    Baton may be served under a path prefix (``SCRIPT_NAME``, e.g. a proxy mapping ``/baton/``). The
    booking page, however, writes root-absolute URLs: ``config.api`` is built from f-strings
    (``/api/v1/meeting-types/<slug>/…``) instead of ``reverse()``, and ``STATIC_URL = "/static/"`` is
    absolute, so Django does not prefix it. Under ``/baton`` the page (and the embedded widget) loads
    its scripts and asks for slots and bookings outside Baton: nothing can be booked. The same holds for
    the manage page's ``ics_url``/``manage_path`` and book-page.js's ``/manage/…/confirmation``.

    (Django's test client, unlike its WSGI handler, does not set the script prefix from ``SCRIPT_NAME``;
    ``STATIC_URL`` is the one the settings make of ``BASE_URL`` ``…/baton``: see
    ``test_static_files_are_under_base_urls_path``.)"""
    with override_script_prefix("/baton/"), override_settings(STATIC_URL="/baton/static/"):
        response = client.get("/book/intro", SCRIPT_NAME="/baton")
        assert response.status_code == 200
        config = config_of(response)
        urls = config["api"]
        assert urls["slots"] == "/baton/api/v1/meeting-types/intro/slots", urls
        assert urls["bookings"] == "/baton/api/v1/meeting-types/intro/bookings", urls
        assert config["confirmation"] == "/baton/manage/__token__/confirmation", config
        assert 'src="/baton/static/baton/book.js"' in response.content.decode()
        booked = api.post("/api/v1/meeting-types/intro/bookings", body(), format="json", SCRIPT_NAME="/baton")
        token = booked.json()["manage_token"]
        manage = client.get(f"/manage/{token}", SCRIPT_NAME="/baton")
        confirmation = client.get(f"/manage/{token}/confirmation", SCRIPT_NAME="/baton").content.decode()
    html = manage.content.decode()
    assert f'href="/baton/manage/{token}/ics"' in html and 'src="/baton/static/baton/manage.js"' in html
    assert config_of(manage)["api"]["cancel"] == f"/baton/api/v1/bookings/{token}/cancel"
    assert f'href="/baton/manage/{token}"' in confirmation


@pytest.mark.parametrize("method", ["PUT", "DELETE", "TRACE"])
def test_landing_page_refuses_unsupported_methods(method, meeting_type):
    """Every other page of booking/pages.py is ``@require_safe`` ("Only GET/HEAD", docs/booking-page.md),
    but ``landing`` takes any method: ``TRACE /`` and (without CSRF enforcement) ``PUT``/``DELETE /``
    answer 200 with the page; with the CSRF check on, ``PUT``/``DELETE`` get a 403 "CSRF verification
    failed" page. An unsupported method should be a 405 with ``Allow: GET, HEAD``.

    (Fixer's note: with the CSRF check on, an unsafe method is refused by ``CsrfViewMiddleware`` before any
    view runs, as on every page of the project (``/book/<slug>``'s POST too); a 405 there would need the
    GET-only views marked ``csrf_exempt``. TRACE, which the CSRF check lets through, must be a 405.)"""
    response = Client().generic(method, "/")
    assert response.status_code == 405, (method, response.status_code)
    assert "GET" in response.headers.get("Allow", "")
    refused = Client(enforce_csrf_checks=True).generic(method, "/").status_code
    assert refused == 405 if method == "TRACE" else refused in (403, 405), (method, refused)


def test_preselected_start_written_with_a_plain_plus_is_kept(client, meeting_type):
    """docs/booking-page.md: ``start=<ISO with offset>`` preselects that start "in any offset". A CRM or an
    email tool that pastes ``2026-03-03T10:00:00+01:00`` into a link without percent-encoding it (merge
    fields are not URL-encoded) sends a ``+``, which the query string turns into a space;
    ``_clean_prefill`` then fails to parse ``2026-03-03T10:00:00 01:00`` and drops the start silently, so
    the prospect who clicked a specific time lands on a bare picker. A space can never precede an offset
    in a valid value, so the page can read it back as the ``+`` it was (only ``Z`` links survive today)."""
    response = client.get("/book/intro?start=2026-03-03T10:00:00+01:00&timezone=Europe/Berlin")
    assert response.status_code == 200
    assert config_of(response)["prefill"]["start"] == "2026-03-03T10:00:00+01:00"
