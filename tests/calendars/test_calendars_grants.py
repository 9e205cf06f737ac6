"""Reps connecting Google and Microsoft calendars and the secrets involved: a grant missing a permission is
refused (granular consent), disconnecting revokes the Google grant, an answer cut off mid-body is a message,
and rotate_token_keys goes on past a deleted connection and says when no key is configured."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from calendars.crypto import decrypt_secrets
from calendars.models import CalendarConnection

pytestmark = pytest.mark.django_db
FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def google_consent(rep_client, fake_google, email: str, *, untick: tuple[str, ...] = ()):
    """The rep clicks *Connect Google Calendar* and, on Google's granular consent screen, leaves the
    ``untick`` scopes unticked: Google redirects back with (and later grants) only the others."""
    fake_google.add_account(email)
    fake_google.signed_in_as = email
    start = rep_client.post("/calendars/connect/google")
    assert start.status_code == 302
    consent = requests.get(start["Location"], allow_redirects=False, timeout=5)
    back = urlsplit(consent.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    granted = " ".join(s for s in query["scope"].split() if s not in untick)
    fake_google.codes[query["code"]]["scope"] = granted  # what the token endpoint answers as "scope"
    query["scope"] = granted
    return rep_client.get(f"{back.path}?{urlencode(query)}", follow=True)


def test_a_google_grant_without_the_free_busy_scope_is_not_accepted_as_connected(rep_client, fake_google):
    """docs/calendars.md: the Google flow asks for the events *and free/busy* scopes, and "Only at booking
    time does Baton ask the provider live, for the chosen host(s) and that one slot" (``freebusy.query``,
    which needs ``calendar.freebusy``: ``calendar.events`` does not cover it). Google's granular consent lets
    the rep untick any scope; ``google_auth.exchange_code`` only requires ``calendar.events``
    (``REQUIRED_SCOPES``), so a grant without free/busy is stored as connected. From then on every live
    check of that rep fails (403, logged at INFO as "synced data decides"): the protection against a slot
    filled since the last sync is silently gone. Worse, the stored ``scopes`` are the three *requested*
    ones (``secrets_from_credentials``), and google-auth sends them on every refresh, where Google answers
    ``invalid_scope`` for a scope never granted: an hour later each sync fails with "Google token refresh
    failed" (status ``error``, never "reconnect"), until the staleness bound withholds the rep.
    Fix: require every scope Baton uses (``REQUIRED_SCOPES = set(SCOPES)``) and say which to allow."""
    page = google_consent(rep_client, fake_google, "dana@work.example", untick=(FREEBUSY,))
    assert not CalendarConnection.objects.filter(rep=rep_client.rep).exists(), (
        "a grant without calendar.freebusy was stored as a working connection"
    )
    assert b"permission" in page.content


def test_disconnecting_a_google_calendar_revokes_the_grant_at_google(
    rep_client, fake_google, settings, django_capture_on_commit_callbacks
):
    """A rep who presses *Disconnect* (or an admin deleting the connection) expects Baton to let go of the
    account. ``connection_delete`` stops the push channels and deletes the row, but never calls Google's
    revocation endpoint (``https://oauth2.googleapis.com/revoke``): the refresh token stays valid at Google,
    Baton keeps appearing under the account's "Third-party apps with access" with full access to the
    calendar's events, and every database backup holding the (encrypted) row holds a live credential for an
    account its owner believes disconnected. Google's OAuth guidance: revoke the token when the user removes
    the integration. Fix: in ``connection_delete`` (best effort, like the channel stops) POST the refresh
    token to the revocation endpoint — at ``GOOGLE_REVOKE_URI``, by default Google's, next to
    ``GOOGLE_TOKEN_URI``."""
    google_consent(rep_client, fake_google, "dana@work.example")
    conn = CalendarConnection.objects.get(rep=rep_client.rep)
    refresh_token = decrypt_secrets(conn.secret_blob)["refresh_token"]
    assert refresh_token in fake_google.refresh_tokens
    with django_capture_on_commit_callbacks(execute=True):  # revoked once the delete is committed
        assert rep_client.post(f"/calendars/{conn.pk}/disconnect").status_code == 302
    assert not CalendarConnection.objects.filter(pk=conn.pk).exists()
    assert refresh_token not in fake_google.refresh_tokens, (
        "the disconnected account's refresh token still works at Google"
    )
    assert fake_google.revoked == [refresh_token]


def test_a_connection_dropped_while_google_answers_the_connect_is_a_message_not_a_500(
    rep_client, fake_google
):
    """docs/calendars.md: a provider that fails is a message on the rep's page ("Microsoft's sign-in
    answering 5xx or not at all is a message on the page, not an error page, at the start and on the way
    back"; Google's ``_execute`` turns transport failures into ``ProviderUnavailable``). But ``_execute``
    catches only ``TransportError``, ``HttpLib2Error``, ``TimeoutError`` and ``OSError``: an answer cut
    off mid-body (the connection closed before ``Content-Length`` bytes came — a proxy or load balancer
    restarting) raises ``http.client.IncompleteRead``, an ``http.client.HTTPException``, which httplib2
    (``response.read()`` is outside its retry ``try``) and googleapiclient (``_retry_request``) both let
    through. On the way back from Google's consent (``account_email``) the rep gets a server error page, the
    code just redeemed is wasted; the same exception crashes the rep's *Refresh* and every sync of the
    calendar (``calendar_sync`` records no ``last_error``: the connection shows "connected" while nothing
    syncs). Fix: catch ``http.client.HTTPException`` with the transport errors in ``GoogleProvider._execute``
    (``ProviderUnavailable``)."""
    rep_client.raise_request_exception = False
    fake_google.add_fault(
        "GET",
        "/calendar/v3/users/me/calendarList/primary",
        status=200,
        body=b'{"kind": "calendar#calendarListEntry", "id": "dana@wo',
        headers={"Content-Length": "4000", "Connection": "close"},  # then the connection closes
        times=-1,
    )
    page = google_consent(rep_client, fake_google, "dana@work.example")
    assert page.status_code == 200, f"the rep got a server error page ({page.status_code})"
    assert not CalendarConnection.objects.exists()
    assert b"Google" in page.content


def test_rotating_keys_while_a_rep_disconnects_finishes_the_other_connections(
    make_rep, google_connection, settings, monkeypatch, capsys
):
    """docs/calendars.md: put the new key first, deploy, run ``manage.py rotate_token_keys``, then drop the
    old keys — on a running installation, where reps keep disconnecting. The command lists every connection
    id first, then re-reads each row (``select_for_update().get(pk=pk)``): a connection deleted in between
    (a rep's *Disconnect*, an admin's delete, a rep deleted) raises ``CalendarConnection.DoesNotExist`` out
    of the command. The rotation stops half-way with a traceback, every later connection is left under the
    old key, and dropping that key as the docs say next makes them unreadable. Fix: skip a row that is gone
    (``.filter(pk=pk).first()``, or iterate over the rows themselves) and go on."""
    from calendars.management.commands import rotate_token_keys

    first, second, third = (google_connection(make_rep()) for _ in range(3))
    old_key, new_key = settings.TOKEN_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]
    real_rotate = rotate_token_keys.rotate_blob

    def rotate_while_the_second_rep_disconnects(blob):
        CalendarConnection.objects.filter(pk=second.pk).delete()  # meanwhile, in a request
        return real_rotate(blob)

    monkeypatch.setattr(rotate_token_keys, "rotate_blob", rotate_while_the_second_rep_disconnects)
    call_command("rotate_token_keys")
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]  # the old key can go now
    for conn in (first, third):
        assert decrypt_secrets(CalendarConnection.objects.get(pk=conn.pk).secret_blob)["refresh_token"]


def test_rotating_keys_with_no_key_configured_says_so(make_rep, google_connection, settings):
    """``rotate_token_keys`` run where ``TOKEN_ENCRYPTION_KEYS`` is empty (a shell without the production
    environment, a typo in its name) reports every connection as "could not be decrypted with any key:
    #1 (token_key_missing)" after printing "re-encrypted 0": it sends the admin looking for a removed key
    or corrupt rows, when the setting is simply missing (``crypto._fernet`` raises ``TokenKeyMissing`` with
    exactly that explanation, which the command swallows into a code). Fix: check the keys once before the
    loop and raise ``CommandError`` with ``TokenKeyMissing``'s message."""
    google_connection(make_rep())
    settings.TOKEN_ENCRYPTION_KEYS = []
    with pytest.raises(CommandError) as raised:
        call_command("rotate_token_keys")
    assert "TOKEN_ENCRYPTION_KEYS" in str(raised.value)
