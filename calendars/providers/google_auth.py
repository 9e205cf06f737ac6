"""Google OAuth web flow (google-auth-oauthlib): consent URL with offline access and PKCE, code exchange,
the credentials dict stored (encrypted) on the connection, and handing the grant back on disconnect."""

from __future__ import annotations

import os
from datetime import UTC

import requests
from django.conf import settings
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow

from calendars.errors import CalendarError, ProviderNotConfigured, ProviderUnavailable

SCOPES = [
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
]
# Every scope asked for is used: the calendar list (and the account's address), event writes and the sync,
# the live free/busy check at booking time. Google's granular consent lets the rep untick any of them.
REQUIRED_SCOPES = frozenset(SCOPES)
SCOPE_PURPOSES = {
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly": "see the list of your calendars",
    "https://www.googleapis.com/auth/calendar.events": "see and edit the events in your calendars",
    "https://www.googleapis.com/auth/calendar.freebusy": "see when you are busy (free/busy)",
}
# include_granted_scopes may return more scopes than asked, granular consent fewer: compare them ourselves.
os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


def _client_config(redirect_uri: str) -> dict:
    if not (settings.GOOGLE_CLIENT_ID and settings.GOOGLE_CLIENT_SECRET):
        raise ProviderNotConfigured(
            "Google Calendar is not configured (GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET)."
        )
    return {
        "web": {
            "client_id": settings.GOOGLE_CLIENT_ID,
            "client_secret": settings.GOOGLE_CLIENT_SECRET,
            "auth_uri": settings.GOOGLE_AUTH_URI,
            "token_uri": settings.GOOGLE_TOKEN_URI,
            "redirect_uris": [redirect_uri],
        }
    }


def authorization_url(redirect_uri: str) -> tuple[str, str, str]:
    """Start the web flow: (URL to send the rep to, state, PKCE code verifier) — keep both in the session."""
    flow = Flow.from_client_config(_client_config(redirect_uri), scopes=SCOPES, redirect_uri=redirect_uri)
    url, state = flow.authorization_url(
        access_type="offline", include_granted_scopes="true", prompt="consent"
    )
    return url, state, flow.code_verifier


def exchange_code(redirect_uri: str, *, state: str, code_verifier: str, code: str) -> dict:
    """Trade the callback's code for tokens; return the secrets dict stored (encrypted) on the connection."""
    flow = Flow.from_client_config(
        _client_config(redirect_uri),
        scopes=SCOPES,
        redirect_uri=redirect_uri,
        state=state,
        code_verifier=code_verifier,
    )
    try:
        token = flow.fetch_token(code=code)
    except requests.RequestException as exc:  # no answer, or one cut off mid-body: the code may be spent
        raise ProviderUnavailable(
            f"Google's sign-in service did not answer ({exc.__class__.__name__}); please try again later."
        ) from None
    except Exception as exc:  # oauthlib raises many types; none may leak the code into messages we keep
        error = getattr(exc, "error", "") or exc.__class__.__name__
        raise CalendarError(f"Google refused the authorisation ({error}). Please try again.") from None
    granted = _scope_set(token.get("scope")) or set(SCOPES)  # Google always answers "scope"; else as asked
    missing = REQUIRED_SCOPES - granted
    if missing:
        needs = "; ".join(SCOPE_PURPOSES[scope] for scope in SCOPES if scope in missing)
        raise CalendarError(
            f"Baton needs your permission to {needs}. Please connect again and allow every permission "
            "Google asks for."
        )
    if not token.get("refresh_token"):
        raise CalendarError(
            "Google sent no refresh token; remove Baton's access in your Google account and retry."
        )
    # the scopes GRANTED are stored: google-auth sends the stored ones with every refresh, and Google answers
    # invalid_scope for one never granted
    return secrets_from_credentials(flow.credentials, scopes=granted)


def _scope_set(scope) -> set[str]:
    """The token response's ``scope``: a space-separated string, or the list oauthlib makes of it."""
    return set(scope.split()) if isinstance(scope, str) else set(scope or ())


def secrets_from_credentials(creds: Credentials, *, scopes: set[str] | None = None) -> dict:
    expiry = creds.expiry.replace(tzinfo=UTC).isoformat() if creds.expiry else None
    return {
        "token": creds.token,
        "refresh_token": creds.refresh_token,
        "expiry": expiry,
        "scopes": sorted(scopes) if scopes is not None else list(creds.scopes or SCOPES),
    }


def revoke_grant(token: str, *, timeout: float | None = None) -> None:
    """Hand the account's grant back to Google (its OAuth 2.0 revocation endpoint, ``GOOGLE_REVOKE_URI``):
    revoking the refresh token ends the grant, every access token of it included, and Baton leaves the
    account's "Third-party apps with access". A token Google no longer knows (the grant was revoked or
    expired already) is nothing to revoke. Raises ``ProviderUnavailable`` when Google does not confirm it."""
    try:
        resp = requests.post(
            settings.GOOGLE_REVOKE_URI,
            data={"token": token},  # in the form body, never in the URL (logged by proxies)
            timeout=timeout or settings.CALENDAR_HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise ProviderUnavailable(
            f"Google's revocation endpoint did not answer ({exc.__class__.__name__})"
        ) from None
    if resp.status_code == 200:
        return
    try:
        error = resp.json().get("error")
    except (ValueError, AttributeError):  # no JSON object: an outage page
        error = None
    error = error if isinstance(error, str) else ""
    if resp.status_code == 400 and error == "invalid_token":
        return
    raise ProviderUnavailable(
        f"Google did not revoke the grant (HTTP {resp.status_code}, {error or 'error'})",
        status=resp.status_code,
    )
