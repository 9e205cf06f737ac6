"""Microsoft sign-in with msal: the ConfidentialClientApplication (custom authorities allowed for tests and
sovereign clouds), the auth-code flow (PKCE, state, nonce) and one SerializableTokenCache per connection."""

from __future__ import annotations

import warnings

import msal
import requests
from django.conf import settings
from msal.exceptions import MsalError

from calendars.errors import CalendarError, ProviderNotConfigured, ProviderUnavailable

SCOPES = ["https://graph.microsoft.com/Calendars.ReadWrite", "https://graph.microsoft.com/User.Read"]
_HTTP_CACHE: dict = {}  # MSAL caches the authority's discovery documents here, shared by the process
# Microsoft's sign-in not answering: requests' errors, or MSAL's own MsalServiceError ("HTTP Error: 503"),
# which its raise_for_status throws for an answer outside the OAuth error protocol (an outage page, a 5xx)
SIGN_IN_DOWN = (requests.RequestException, MsalError)


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
    except ValueError:  # state mismatch or a flow from another session
        raise CalendarError(
            "This Microsoft sign-in does not match the one started here; please try again."
        ) from None
    except SIGN_IN_DOWN as exc:  # the code cannot be redeemed now; the rep starts again later
        raise ProviderUnavailable(
            f"Microsoft sign-in service unavailable ({exc.__class__.__name__}); please try again later."
        ) from None
    if "error" in result:
        raise CalendarError(f"Microsoft refused the authorisation ({result['error']}). Please try again.")
    claims = result.get("id_token_claims") or {}
    accounts = app.get_accounts()
    if not accounts:
        raise CalendarError("Microsoft returned no account; please try again.")
    email = claims.get("preferred_username") or claims.get("email") or accounts[0].get("username", "")
    return {"cache": cache.serialize(), "home_account_id": accounts[0]["home_account_id"]}, email
