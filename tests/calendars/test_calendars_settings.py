"""The calendar settings block fails loudly on bad values (checked in a fresh interpreter each time)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "MS_", "CALENDAR_"))}
    environ.update(DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings", **env)
    code = "import django; django.setup(); "
    code += "from django.conf import settings as s; print(s.CALENDAR_PUSH_ENABLED)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GOOGLE_CLIENT_ID": "only-the-id"},
            "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET: set both or neither",
        ),
        ({"MS_AUTHORITY": "http://login.example/common"}, "MS_AUTHORITY: must be https://host/tenant"),
        ({"CALENDAR_POLL_MINUTES": "240"}, "CALENDAR_STALENESS_MINUTES: must exceed CALENDAR_POLL_MINUTES"),
        ({"CALENDAR_SYNC_HORIZON_DAYS": "3"}, "CALENDAR_SYNC_HORIZON_DAYS: must be at least 14"),
        ({"GOOGLE_API_ENDPOINT": "www.googleapis.com"}, "GOOGLE_API_ENDPOINT: must be an http(s) URL"),
    ],
)
def test_bad_values_fail_at_start_up(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_push_follows_the_webhook_address_scheme():
    assert load_settings().stdout.strip() == "False"  # http://127.0.0.1:8000 cannot receive provider pushes
    assert load_settings(BASE_URL="https://book.example.com").stdout.strip() == "True"
    assert (
        load_settings(BASE_URL="https://book.example.com", CALENDAR_PUSH_ENABLED="0").stdout.strip()
        == "False"
    )
