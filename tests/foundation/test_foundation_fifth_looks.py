"""Fifth looks: a stored feed whose secret cannot be read (a key retired too early) does not block adding
another feed, and LOG_LEVEL governs Django's own lines too. Each test failed before its fix."""

# ruff: noqa: F811  (the calendar fixtures are imported into this module, then requested by name)
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model

from calendars.models import CalendarConnection
from tests.calendars.conftest import (  # noqa: F401  (fixtures)
    calendar_settings,
    fake_ics,
    make_rep,
)

ROOT = Path(__file__).resolve().parents[2]
FEED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nX-WR-CALNAME:Dana private\r\nEND:VCALENDAR\r\n"
)


@pytest.mark.django_db
def test_an_undecryptable_ics_connection_does_not_block_adding_another_feed(
    client, settings, make_rep, fake_ics
):
    """A rep has an old ICS connection whose stored secret was encrypted with a key since dropped from
    TOKEN_ENCRYPTION_KEYS (the case TokenDecryptFailed exists for: "was a key removed too early?"). The rep
    adds a *different* feed: the page answers 400 "Not saved: Stored credentials cannot be decrypted …" and
    nothing is added. The duplicate check in connection_create decrypted every ICS connection of the rep
    and let TokenDecryptFailed escape. Re-adding the broken feed itself (the natural repair) fails the
    same way. A blob that cannot be decrypted is simply not the same feed (or: is the one to replace)."""
    user = get_user_model().objects.create_user("dana", "dana@example.com", "pw-dana-123")
    rep = make_rep("Dana Reyes", user=user)
    old_key = Fernet.generate_key()
    CalendarConnection.objects.create(
        rep=rep,
        provider=CalendarConnection.Provider.ICS,
        account_email="old.example.org",
        secret_blob=Fernet(old_key).encrypt(b'{"url": "https://old.example.org/x.ics"}').decode(),
    )
    client.force_login(user)
    url = fake_ics.publish(FEED)
    answer = client.post("/calendars/connect/ics", {"url": url})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert CalendarConnection.objects.filter(rep=rep, provider="ics").count() == 2


def test_log_level_governs_djangos_own_log_lines():
    """README: ``LOG_LEVEL`` is "root log level". An operator sets ``LOG_LEVEL=ERROR`` to keep only errors,
    yet every 404 / 429 / 400 ("Not Found: /wp-login.php", "Too Many Requests: …") is still printed: the
    ``django`` logger (config/settings.py LOGGING["loggers"]["django"]) has its own ``"level": "INFO"`` and
    propagates to the root's console handler, and Python does not apply the root logger's level to records
    propagated from a child. Django's WARNINGs bypass LOG_LEVEL."""
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').warning('Not Found: /wp-login.php')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Not Found" not in done.stderr, f"printed despite LOG_LEVEL=ERROR: {done.stderr!r}"
