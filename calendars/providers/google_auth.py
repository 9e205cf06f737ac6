"""Google OAuth web flow (google-auth-oauthlib): consent URL with offline access and PKCE, code exchange,
and the credentials dict stored (encrypted) on the connection."""

from __future__ import annotations

import os
from datetime import UTC

from django.conf import settings
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow

from calendars.errors import CalendarError, ProviderNotConfigured

SCOPES = [
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.freebusy",
]
REQUIRED_SCOPES = {"https://www.googleapis.com/auth/calendar.events"}
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
    except Exception as exc:  # oauthlib raises many types; none may leak the code into messages we keep
        error = getattr(exc, "error", "") or exc.__class__.__name__
        raise CalendarError(f"Google refused the authorisation ({error}). Please try again.") from None
    granted = set(token.get("scope") or [])
    if isinstance(token.get("scope"), str):
        granted = set(token["scope"].split())
    if granted and not granted >= REQUIRED_SCOPES:
        raise CalendarError("Baton needs permission to see and edit your calendar events; please allow it.")
    if not token.get("refresh_token"):
        raise CalendarError(
            "Google sent no refresh token; remove Baton's access in your Google account and retry."
        )
    return secrets_from_credentials(flow.credentials)


def secrets_from_credentials(creds: Credentials) -> dict:
    expiry = creds.expiry.replace(tzinfo=UTC).isoformat() if creds.expiry else None
    return {
        "token": creds.token,
        "refresh_token": creds.refresh_token,
        "expiry": expiry,
        "scopes": list(creds.scopes or SCOPES),
    }
