"""Microsoft sign-in with msal: the ConfidentialClientApplication (custom authorities allowed for tests and
sovereign clouds), the auth-code flow (PKCE, state, nonce) and one SerializableTokenCache per connection."""

from __future__ import annotations

import json
import warnings

import msal
import requests
from django.conf import settings
from msal.exceptions import MsalError

from calendars.errors import (
    CalendarError,
    ClientRefused,
    GrantRevoked,
    ProviderNotConfigured,
    ProviderUnavailable,
)

SCOPES = ["https://graph.microsoft.com/Calendars.ReadWrite", "https://graph.microsoft.com/User.Read"]
_HTTP_CACHE: dict = {}  # MSAL caches the authority's discovery documents here, shared by the process
# Microsoft's sign-in not answering: requests' errors (an answer cut off mid-body included:
# ChunkedEncodingError), MSAL's own MsalServiceError ("HTTP Error: 503"), which its raise_for_status throws
# for an answer outside the OAuth error protocol (an outage page, a 5xx), and a token answer that is no JSON
# (ended early without a length to tell, a proxy's page), which MSAL's json.loads lets through
SIGN_IN_DOWN = (requests.RequestException, MsalError, json.JSONDecodeError)
GRANT_ERRORS = {
    "invalid_grant",
    "interaction_required",
    "consent_required",
    "login_required",
}


def sign_in_unavailable(exc: Exception) -> ProviderUnavailable:
    return ProviderUnavailable(f"Microsoft sign-in service unavailable ({exc.__class__.__name__})")


def msal_app(cache: msal.SerializableTokenCache | None = None, *, timeout: float | None = None):
    if not (settings.MS_CLIENT_ID and settings.MS_CLIENT_SECRET):
        raise ProviderNotConfigured("Microsoft 365 is not configured (MS_CLIENT_ID / MS_CLIENT_SECRET).")
    extra = (
        {} if settings.MS_VALIDATE_AUTHORITY else {"instance_discovery": False, "validate_authority": False}
    )
    try:
        return msal.ConfidentialClientApplication(
            settings.MS_CLIENT_ID,
            client_credential=settings.MS_CLIENT_SECRET,
            authority=settings.MS_AUTHORITY,
            token_cache=cache,
            http_cache=_HTTP_CACHE,
            timeout=timeout or settings.CALENDAR_HTTP_TIMEOUT_SECONDS,
            **extra,
        )
    except (*SIGN_IN_DOWN, ValueError) as exc:  # ValueError: an unreadable discovery document
        raise sign_in_unavailable(exc) from None


def silent_token(secrets: dict, *, timeout: float, force_refresh: bool = False) -> tuple[str, str | None]:
    """An access token for the connection's account from its token cache (``secrets``), refreshed with the
    refresh token when it is near expiry, or always with ``force_refresh`` (Graph refused the cached one).
    Returns the token and the cache serialized again when it changed (else None), for the caller to store."""
    cache = msal.SerializableTokenCache()
    cache.deserialize(secrets.get("cache") or "{}")
    app = msal_app(cache, timeout=timeout)
    home = secrets.get("home_account_id")
    account = next((a for a in app.get_accounts() if a.get("home_account_id") == home), None)
    if account is None:
        raise GrantRevoked("The Microsoft sign-in is missing; reconnect the calendar.")
    try:
        result = app.acquire_token_silent_with_error(SCOPES, account=account, force_refresh=force_refresh)
    except SIGN_IN_DOWN as exc:  # a 5xx page comes as MSAL's MsalServiceError, not a requests error
        raise ProviderUnavailable(f"Microsoft sign-in did not answer ({exc.__class__.__name__})") from None
    if not result:
        raise GrantRevoked("Microsoft has no valid token for this account; reconnect the calendar.")
    if "error" in result:
        if result["error"] in ("invalid_client", "unauthorized_client"):
            raise ClientRefused(
                f"Microsoft refuses Baton's app registration ({result['error']}): check MS_CLIENT_ID and "
                "MS_CLIENT_SECRET."
            )
        if result["error"] in GRANT_ERRORS:
            raise GrantRevoked(
                f"Microsoft says the grant was revoked or expired ({result['error']}); reconnect."
            )
        raise ProviderUnavailable(f"Microsoft token refresh failed ({result['error']})")
    return result["access_token"], (cache.serialize() if cache.has_state_changed else None)


def start_flow(redirect_uri: str) -> dict:
    """Start the auth-code flow; the returned dict (state, PKCE verifier, nonce, auth_uri) goes in the
    session."""
    with warnings.catch_warnings():
        # MSAL suggests response_mode=form_post; a cross-site POST carries no SameSite=Lax session cookie,
        # so the flow kept in the session would be lost. The query response mode plus PKCE and state is used.
        warnings.filterwarnings("ignore", message="response_mode='form_post'", category=UserWarning)
        return msal_app().initiate_auth_code_flow(SCOPES, redirect_uri=redirect_uri, prompt="select_account")


def finish_flow(flow: dict, query: dict) -> tuple[dict, str]:
    """Redeem the callback; return (secrets to store, account email)."""
    cache = msal.SerializableTokenCache()
    app = msal_app(cache)
    try:
        result = app.acquire_token_by_auth_code_flow(flow, query)
    except SIGN_IN_DOWN as exc:  # the code cannot be redeemed now; the rep starts again later
        raise ProviderUnavailable(
            f"Microsoft sign-in service unavailable ({exc.__class__.__name__}); please try again later."
        ) from None
    except ValueError:  # state mismatch or a flow from another session (JSON errors are caught above)
        raise CalendarError(
            "This Microsoft sign-in does not match the one started here; please try again."
        ) from None
    if "error" in result:
        raise CalendarError(f"Microsoft refused the authorisation ({result['error']}). Please try again.")
    claims = result.get("id_token_claims") or {}
    accounts = app.get_accounts()
    if not accounts:
        raise CalendarError("Microsoft returned no account; please try again.")
    email = claims.get("preferred_username") or claims.get("email") or accounts[0].get("username", "")
    return {"cache": cache.serialize(), "home_account_id": accounts[0]["home_account_id"]}, email
