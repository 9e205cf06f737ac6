"""Embedding: the framing policy (booking.middleware), EMBED_ALLOWED_ORIGINS validation, the admin's
"copy embed code" box and the demo host page (booking.embed).

The framing tests route through this module's own URLconf (``urlpatterns`` below), so they do not depend
on the booking page's view: a stand-in page sits at /book/<slug>, beside the real email-snippet view.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, JsonResponse
from django.urls import path, reverse
from django.views.decorators.clickjacking import xframe_options_exempt, xframe_options_sameorigin

from booking import embed
from config.env import env_origins

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = ["https://www.example.com", "http://127.0.0.1:8080"]


def page(request, **kwargs):
    return HttpResponse("<!doctype html><title>page</title>")


def page_with_csp(request, **kwargs):
    response = page(request)
    response["Content-Security-Policy"] = "default-src 'self'; frame-ancestors *"
    return response


urlpatterns = [
    path("book/<slug:slug>", page, name="stand-in-booking-page"),
    path("book/<slug:slug>/csp", page_with_csp),
    path("book/<slug:slug>/data.json", lambda request, slug: JsonResponse({"ok": True})),
    path("book/<slug:slug>/email-snippet", embed.email_snippet, name="booking-email-snippet"),
    path("book/<slug:slug>/embed-demo", embed.embed_demo, name="booking-embed-demo"),
    path("manage/<str:token>", page),
    path("other", page),
    path("exempt", xframe_options_exempt(page)),
    path("sameorigin", xframe_options_sameorigin(page)),
]


@pytest.fixture
def framing(settings):
    settings.ROOT_URLCONF = __name__
    settings.EMBED_ALLOWED_ORIGINS = ALLOWED
    return settings


def frame_ancestors(response) -> str | None:
    for directive in response.headers.get("Content-Security-Policy", "").split(";"):
        if directive.strip().startswith("frame-ancestors"):
            return directive.strip()
    return None


def test_embed_mode_booking_page_may_be_framed_by_listed_origins_only(client, framing):
    response = client.get("/book/demo?embed=1&utm_source=x")
    assert response.status_code == 200
    assert frame_ancestors(response) == "frame-ancestors 'self' https://www.example.com http://127.0.0.1:8080"
    assert "X-Frame-Options" not in response.headers


def test_without_listed_origins_only_baton_itself_may_frame(client, framing):
    framing.EMBED_ALLOWED_ORIGINS = []
    response = client.get("/book/demo?embed=1")
    assert frame_ancestors(response) == "frame-ancestors 'self'"
    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize(
    "url",
    [
        "/book/demo",  # not in embed mode
        "/book/demo?embed=0",
        "/book/demo?embed=true",
        "/manage/abc?embed=1",
        "/other?embed=1",
        "/book/demo/email-snippet?embed=1",
        "/book/demo/embed-demo?embed=1",
        "/book/demo/data.json?embed=1",  # not a page
        "/book/nope/nothing-here?embed=1",  # no such page
    ],
)
@pytest.mark.django_db
def test_everything_else_refuses_framing(client, framing, url):
    response = client.get(url)
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert frame_ancestors(response) == "frame-ancestors 'none'"


def test_embed_mode_only_for_safe_methods(client, framing):
    response = client.post("/book/demo?embed=1")
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert frame_ancestors(response) == "frame-ancestors 'none'"


def test_existing_csp_directives_are_kept(client, framing):
    response = client.get("/book/demo/csp?embed=1")
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'self'; ")
    assert csp.count("frame-ancestors") == 1
    assert frame_ancestors(response) == "frame-ancestors 'self' https://www.example.com http://127.0.0.1:8080"
    assert frame_ancestors(client.get("/book/demo/csp")) == "frame-ancestors 'none'"


def test_views_opting_out_keep_their_choice(client, framing):
    exempt = client.get("/exempt")
    assert "X-Frame-Options" not in exempt.headers and frame_ancestors(exempt) is None
    same = client.get("/sameorigin")
    assert same.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert frame_ancestors(same) == "frame-ancestors 'self'"


@pytest.mark.django_db
def test_real_site_pages_refuse_framing(client):
    response = client.get("/", HTTP_HOST="127.0.0.1")
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert frame_ancestors(response) == "frame-ancestors 'none'"


# --- EMBED_ALLOWED_ORIGINS


def test_env_origins_accepts_and_normalises():
    raw = "https://WWW.Example.com, http://127.0.0.1:8080,https://*.example.org,http://[::1]:9000"
    assert env_origins("X_ORIGINS", environ={"X_ORIGINS": raw}) == [
        "https://www.example.com",
        "http://127.0.0.1:8080",
        "https://*.example.org",
        "http://[::1]:9000",
    ]
    assert env_origins("X_ORIGINS", environ={}) == []
    assert env_origins("X_ORIGINS", environ={"X_ORIGINS": " , "}) == []


@pytest.mark.parametrize(
    "raw",
    [
        "www.example.com",
        "ftp://example.com",
        "https://example.com/",
        "https://example.com/path",
        "https://example.com?x=1",
        "https://example.com#top",
        "https://user@example.com",
        "https://example.com:99999",
        "https://example.com:",
        "https://*",
        "https://a.*.example.com",
        "https://exa mple.com",
        "https://example.com'",
        "'self'",
        "*",
    ],
)
def test_env_origins_rejects_naming_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match=r"^X_ORIGINS: .* is not an origin"):
        env_origins("X_ORIGINS", environ={"X_ORIGINS": f"https://ok.example.com,{raw}"})


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "EMBED_ALLOWED_ORIGINS"}}
    clean.update(env, DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings")
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.EMBED_ALLOWED_ORIGINS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_settings_fail_at_start_up_on_a_bad_origin():
    bad = _load_settings(EMBED_ALLOWED_ORIGINS="https://www.example.com/landing")
    assert bad.returncode != 0
    assert "ImproperlyConfigured: EMBED_ALLOWED_ORIGINS: 'https://www.example.com/landing'" in bad.stderr
    good = _load_settings(EMBED_ALLOWED_ORIGINS="https://www.example.com,http://localhost:3000")
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "['https://www.example.com', 'http://localhost:3000']"


# --- admin box and demo page


@pytest.mark.django_db
def test_embed_codes_use_the_public_base_url(meeting_type):
    codes = embed.embed_codes(meeting_type)
    assert codes["inline"] == (
        '<div data-baton-meeting="intro"></div>\n'
        '<script src="https://book.example.com/static/baton/embed.js" async></script>'
    )
    assert codes["popup"].startswith('<button type="button" data-baton-popup="intro">')
    assert codes["link"] == "https://book.example.com/book/intro"
    assert codes["email_snippet"].startswith(
        "https://book.example.com/book/intro/email-snippet?days=3&count=6"
    )


@pytest.mark.django_db
def test_admin_change_page_has_copy_boxes(admin_client, meeting_type):
    response = admin_client.get(reverse("admin:booking_meetingtype_change", args=[meeting_type.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for key in ("inline", "popup", "link", "email_snippet"):
        assert f'<textarea id="baton-embed-{key}" readonly' in html
        assert f'data-baton-copy="baton-embed-{key}"' in html
    assert "&lt;div data-baton-meeting=&quot;intro&quot;&gt;&lt;/div&gt;" in html  # escaped into the box
    assert "baton/admin-copy.js" in html
    assert reverse("booking-embed-demo", args=["intro"]) in html


@pytest.mark.django_db
def test_admin_add_page_still_works(admin_client, meeting_type):
    response = admin_client.get(reverse("admin:booking_meetingtype_add"))
    assert response.status_code == 200
    assert "baton-embed-inline" not in response.content.decode()


@pytest.mark.django_db
def test_demo_page_is_for_staff_unless_debug(client, admin_client, meeting_type, settings):
    settings.DEBUG = False
    url = reverse("booking-embed-demo", args=["intro"])
    assert client.get(url, HTTP_HOST="127.0.0.1").status_code == 404
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-baton-meeting="intro"' in html and 'data-baton-popup="intro"' in html
    assert "/static/baton/embed.js" in html
    assert response.headers["X-Frame-Options"] == "DENY"
    settings.DEBUG = True
    assert client.get(url, HTTP_HOST="127.0.0.1").status_code == 200
    assert client.get(reverse("booking-embed-demo", args=["nope"]), HTTP_HOST="127.0.0.1").status_code == 404


@pytest.mark.django_db
def test_the_real_booking_page(client, meeting_type, settings):
    settings.EMBED_ALLOWED_ORIGINS = ALLOWED
    embedded = client.get("/book/intro?embed=1")
    assert embedded.status_code == 200
    assert frame_ancestors(embedded) == "frame-ancestors 'self' https://www.example.com http://127.0.0.1:8080"
    assert "X-Frame-Options" not in embedded.headers
    assert "baton/embed-frame.js" in embedded.content.decode()
    plain = client.get("/book/intro")
    assert plain.headers["X-Frame-Options"] == "DENY" and frame_ancestors(plain) == "frame-ancestors 'none'"
    assert "baton/embed-frame.js" not in plain.content.decode()
    manage = client.get("/manage/" + "x" * 30 + "?embed=1")
    assert manage.headers["X-Frame-Options"] == "DENY" and frame_ancestors(manage) == "frame-ancestors 'none'"
