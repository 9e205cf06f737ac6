"""Google Calendar through google-api-python-client (API) and google-auth-oauthlib (web OAuth flow).

* Incremental sync: events.list with singleEvents=true; the first call covers the sync window and returns
  a ``nextSyncToken`` on its last page, later calls send only the token. 410 Gone → full sync again;
  404 (the calendar deleted or unshared) → ``CalendarGone``.
* Only opaque, non-cancelled, non-declined events are busy. All-day events use local dates in the rep's
  zone with an exclusive end date.
* Events Baton writes get a client-chosen id (``baton`` + base32hex of the idempotency key), so a retried
  insert answers 409 instead of creating a duplicate; they also carry ``extendedProperties.private
  .batonBooking`` so sync ignores them (the booking itself already blocks the host).
"""

from __future__ import annotations

import base64
import http.client
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httplib2
from django.conf import settings
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from calendars.errors import (
    CalendarGone,
    ClientRefused,
    EventGone,
    GrantRevoked,
    ProviderUnavailable,
    SyncStateExpired,
)
from calendars.providers.base import (
    CalendarProvider,
    EventDraft,
    RemoteCalendar,
    SecretsCallback,
    SyncResult,
    Watch,
    WrittenEvent,
    parse_rfc3339,
    to_utc,
)
from calendars.providers.google_auth import SCOPES, secrets_from_credentials
from calendars.providers.google_events import (
    MARKER,
    busy_from_event,
    calendar_zone,
    conference_status,
    join_url,
    meet_request,
)
from calendars.providers.pushback import GOOGLE_RATE_LIMIT_REASONS, pushback_message, retry_after_seconds

LIST_FIELDS = (
    "nextPageToken,nextSyncToken,timeZone,items(id,iCalUID,status,start,end,transparency,"
    "attendees(self,responseStatus),extendedProperties/private)"
)
FREEBUSY_CHUNK = timedelta(days=90)
# Google may make an event's Meet conference asynchronously (createRequest status "pending"): re-read the
# event after these pauses (1.75 s at most), then leave the link to a later write
CONFERENCE_WAITS = (0.25, 0.5, 1.0)
logger = logging.getLogger("calendars")


def google_event_id(key: str) -> str:
    """A valid Google event id (base32hex, lowercase a-v and 0-9) derived from the idempotency key."""
    return "baton" + base64.b32hexencode(key.encode()).decode().rstrip("=").lower()


def _rfc3339(value: datetime) -> str:
    return to_utc(value).isoformat().replace("+00:00", "Z")


def _reasons(exc: HttpError) -> list[str]:
    """The ``reason`` codes of a Google error answer (``error.errors[].reason``), if it has any."""
    details = exc.error_details if isinstance(exc.error_details, list) else []
    return [str(d["reason"]) for d in details if isinstance(d, dict) and d.get("reason")]


def _refused(exc: HttpError, status: int) -> ProviderUnavailable:
    """A refused request (after the client's own retries) as ``ProviderUnavailable``, in words that tell a
    rate limit (429, 403 ``rateLimitExceeded``) from Google being down (5xx) from anything else; with the
    ``Retry-After`` Google sent, in seconds or as an HTTP-date."""
    retry_after = retry_after_seconds(exc.resp.get("retry-after"))
    reasons = _reasons(exc)
    throttled = status == 429 or (status == 403 and bool(GOOGLE_RATE_LIMIT_REASONS.intersection(reasons)))
    if throttled or status >= 500:
        reason = next(iter(reasons), "")
        message = pushback_message(
            "Google", status, throttled=throttled, retry_after=retry_after, reason=reason
        )
    else:
        message = f"Google answered HTTP {status} ({exc.reason or 'error'})"
    return ProviderUnavailable(message, status=status, retry_after=retry_after)


class GoogleProvider(CalendarProvider):
    name = "google"
    supports_push = True

    def __init__(
        self,
        secrets: dict,
        *,
        on_secrets_changed: SecretsCallback | None = None,
        timeout: float | None = None,
        retries: int = 3,
    ):
        self._secrets = dict(secrets)
        self._on_change = on_secrets_changed
        self._timeout = timeout or settings.CALENDAR_HTTP_TIMEOUT_SECONDS
        self._retries = retries
        expiry = self._secrets.get("expiry")
        self._creds = Credentials(
            token=self._secrets.get("token"),
            refresh_token=self._secrets.get("refresh_token"),
            token_uri=settings.GOOGLE_TOKEN_URI,
            client_id=settings.GOOGLE_CLIENT_ID,
            client_secret=settings.GOOGLE_CLIENT_SECRET,
            scopes=self._secrets.get("scopes") or SCOPES,
            expiry=parse_rfc3339(expiry).astimezone(UTC).replace(tzinfo=None) if expiry else None,
        )
        self._service = None

    def __repr__(self) -> str:
        return "<GoogleProvider>"

    # -- plumbing
    def _api(self):
        if self._service is None:
            http = AuthorizedHttp(self._creds, http=httplib2.Http(timeout=self._timeout))
            self._service = build(
                "calendar",
                "v3",
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": settings.GOOGLE_API_ENDPOINT},
            )
        return self._service

    def _execute(self, request, *, allow: tuple[int, ...] = ()):
        token_before = self._creds.token
        try:
            result = request.execute(num_retries=self._retries)
        except HttpError as exc:
            status = int(exc.resp.status)
            if status in allow:
                return {"_status": status}
            if status == 410:
                raise SyncStateExpired() from None
            if status == 401:
                raise GrantRevoked(
                    "Google no longer accepts Baton's access; reconnect the calendar."
                ) from None
            raise _refused(exc, status) from None
        except RefreshError as exc:
            if "invalid_client" in str(exc) or "unauthorized_client" in str(exc):
                raise ClientRefused(
                    "Google refuses Baton's OAuth client (invalid_client): check GOOGLE_CLIENT_ID and "
                    "GOOGLE_CLIENT_SECRET."
                ) from None
            if "invalid_grant" in str(exc):
                raise GrantRevoked(
                    "Google says the grant was revoked or expired (invalid_grant); reconnect."
                ) from None
            if "invalid_scope" in str(exc):  # a connection stored with scopes the rep never granted
                raise GrantRevoked(
                    "Google does not grant every permission Baton needs (invalid_scope); reconnect and "
                    "allow them all."
                ) from None
            raise ProviderUnavailable("Google token refresh failed") from None
        except (TransportError, httplib2.HttpLib2Error, TimeoutError, OSError) as exc:
            raise ProviderUnavailable(f"Google did not answer ({exc.__class__.__name__})") from None
        except http.client.HTTPException as exc:  # an answer cut off mid-body (IncompleteRead): httplib2
            # and googleapiclient retry only what fails before the body is read
            raise ProviderUnavailable(f"Google's answer was cut off ({exc.__class__.__name__})") from None
        finally:
            if self._creds.token != token_before and self._on_change is not None:
                self._secrets = secrets_from_credentials(self._creds)
                self._on_change(dict(self._secrets))
        if isinstance(result, str):  # googleapiclient hands a body that is no JSON back as it is: one ended
            if result.strip():  # early without a length to tell, a proxy's page
                raise ProviderUnavailable("Google sent an unreadable answer")
            return {}
        return result

    # -- reading
    def list_calendars(self) -> list[RemoteCalendar]:
        calendars, page = [], None
        while True:
            # showHidden: a calendar the user hid from Google Calendar's sidebar is still theirs (and blocks)
            request = self._api().calendarList().list(pageToken=page, maxResults=250, showHidden=True)
            resp = self._execute(request)
            for item in resp.get("items", []):
                solutions = (item.get("conferenceProperties") or {}).get(
                    "allowedConferenceSolutionTypes"
                ) or []
                calendars.append(
                    RemoteCalendar(
                        external_id=item["id"],
                        name=item.get("summaryOverride") or item.get("summary") or item["id"],
                        is_primary=bool(item.get("primary")),
                        can_write=item.get("accessRole") in ("writer", "owner"),
                        timezone=item.get("timeZone", ""),
                        online_meeting_providers=tuple(solutions),
                    )
                )
            page = resp.get("nextPageToken")
            if not page:
                return calendars

    def account_email(self) -> str:
        return self._execute(self._api().calendarList().get(calendarId="primary")).get("id", "")

    def sync(
        self, calendar_id: str, state: str, *, window: tuple[datetime, datetime], zone: ZoneInfo
    ) -> SyncResult:
        if state:
            try:
                return self._list_events(calendar_id, zone, sync_token=state)
            except SyncStateExpired:
                pass  # the token is gone: fall through to a full sync of the window
        return self._list_events(calendar_id, zone, window=window)

    def _list_events(self, calendar_id, zone, *, sync_token: str = "", window=None) -> SyncResult:
        params = {"calendarId": calendar_id, "singleEvents": True, "maxResults": 2500, "fields": LIST_FIELDS}
        if sync_token:
            params["syncToken"] = sync_token
        else:
            params["timeMin"], params["timeMax"] = _rfc3339(window[0]), _rfc3339(window[1])
        result = SyncResult(full=not sync_token)
        page = None
        while True:
            # 404 notFound: the calendar was deleted or unshared; 410 to a full list: deleted (a 410 to a
            # sync token is the token expiring: ``_execute`` raises ``SyncStateExpired``)
            gone = (404,) if sync_token else (404, 410)
            resp = self._execute(self._api().events().list(pageToken=page, **params), allow=gone)
            if resp.get("_status") in gone:
                raise CalendarGone(f"Google does not find the calendar (HTTP {resp['_status']})")
            days_in = calendar_zone(resp, zone)
            for item in resp.get("items", []):
                busy = busy_from_event(item, days_in)
                if busy is None:
                    result.deletions.append(item["id"])
                    if item.get("status") == "cancelled":  # deleted (a sync token lists deletions)
                        result.removed.append(item["id"])
                else:
                    result.upserts.append(busy)
            page = resp.get("nextPageToken")
            if not page:
                result.next_state = resp.get("nextSyncToken", "")
                return result

    def busy_in(
        self, calendar_ids: list[str], start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        busy, cursor = [], start
        while cursor < end:
            chunk_end = min(end, cursor + FREEBUSY_CHUNK)
            body = {
                "timeMin": _rfc3339(cursor),
                "timeMax": _rfc3339(chunk_end),
                "timeZone": "UTC",
                "items": [{"id": cid} for cid in calendar_ids],
            }
            resp = self._execute(self._api().freebusy().query(body=body))
            for data in (resp.get("calendars") or {}).values():
                if data.get("errors"):
                    reason = data["errors"][0].get("reason", "error")
                    raise ProviderUnavailable(f"Google free/busy failed for a calendar ({reason})")
                for item in data.get("busy", []):
                    busy.append((to_utc(parse_rfc3339(item["start"])), to_utc(parse_rfc3339(item["end"]))))
            cursor = chunk_end
        return busy

    # -- writing
    def _body(self, draft: EventDraft, *, update: bool = False) -> dict:
        body = {
            "summary": draft.title,
            "description": draft.description,
            "start": {"dateTime": _rfc3339(draft.start), "timeZone": draft.timezone or "UTC"},
            "end": {"dateTime": _rfc3339(draft.end), "timeZone": draft.timezone or "UTC"},
            "attendees": [{"email": email, "displayName": name} for name, email in draft.attendees],
            "extendedProperties": {"private": {MARKER: str(draft.booking_id or ""), "batonKey": draft.key}},
            "status": "confirmed",
        }
        if draft.location or update:
            body["location"] = draft.location  # a patch leaves out nothing: no stale location (a lead's link)
        return body

    def create_event(self, calendar_id: str, draft: EventDraft, *, online_provider: str = "") -> WrittenEvent:
        event_id = google_event_id(draft.key)
        body = {"id": event_id, **self._body(draft)}
        if draft.video:
            body["conferenceData"] = meet_request(event_id)
        send = "all" if draft.notify else "none"
        created = self._execute(
            self._api()
            .events()
            .insert(calendarId=calendar_id, body=body, conferenceDataVersion=1, sendUpdates=send),
            allow=(409,),
        )
        if created.get("_status") == 409:  # a retry: the event exists already
            existing = self._execute(self._api().events().get(calendarId=calendar_id, eventId=event_id))
            same = (
                existing.get("status") != "cancelled"
                and parse_rfc3339(existing["start"]["dateTime"]) == to_utc(draft.start)
                and parse_rfc3339(existing["end"]["dateTime"]) == to_utc(draft.end)
            )
            created = existing if same else self._patch(calendar_id, event_id, draft)
        return self._written(calendar_id, created)

    def _patch(self, calendar_id: str, event_id: str, draft: EventDraft, allow=(), conference=None) -> dict:
        send = "all" if draft.notify else "none"
        body = self._body(draft, update=True) | ({"conferenceData": conference} if conference else {})
        return self._execute(
            self._api()
            .events()
            .patch(
                calendarId=calendar_id, eventId=event_id, body=body, conferenceDataVersion=1, sendUpdates=send
            ),
            allow=allow,
        )

    def update_event(
        self, calendar_id: str, external_id: str, draft: EventDraft, *, online_provider: str = ""
    ) -> WrittenEvent:
        # an event its owner deleted is kept as cancelled for a while, and the patch (status confirmed)
        # restores it with its id and conference; once purged, the patch answers 404 or 410
        conference = None
        if draft.video and online_provider:
            # asked for a link (e.g. a co-host's event that now is the lead's): only if the event has no
            # conference yet, made or still being made; a new requestId, as a new request to create one
            current = self._execute(
                self._api().events().get(calendarId=calendar_id, eventId=external_id), allow=(404, 410)
            )
            if current.get("_status") in (404, 410):
                raise EventGone()
            if not join_url(current) and conference_status(current) not in ("pending", "success"):
                conference = meet_request(uuid.uuid4().hex)
        updated = self._patch(calendar_id, external_id, draft, allow=(404, 410), conference=conference)
        if updated.get("_status") in (404, 410):
            raise EventGone()
        return self._written(calendar_id, updated)

    def _written(self, calendar_id: str, event: dict) -> WrittenEvent:
        """The written event and its Meet link; a conference still being made is waited for briefly."""
        for pause in CONFERENCE_WAITS:
            if conference_status(event) != "pending" or join_url(event):
                break
            time.sleep(pause)
            event = self._execute(self._api().events().get(calendarId=calendar_id, eventId=event["id"]))
        link, status = join_url(event), conference_status(event)
        if status == "failure" and not link:
            logger.warning("Google could not create the Meet conference of event %s", event["id"])
        return WrittenEvent(
            external_id=event["id"], join_url=link, link_pending=status == "pending" and not link
        )

    def cancel_event(self, calendar_id: str, external_id: str, *, notify: bool = True) -> None:
        self._execute(
            self._api()
            .events()
            .delete(calendarId=calendar_id, eventId=external_id, sendUpdates="all" if notify else "none"),
            allow=(404, 410),
        )

    def cancel_unconfirmed(
        self, calendar_id: str, key: str, *, start: datetime, end: datetime, notify: bool = True
    ) -> None:
        # the event's id is Baton's own choice (``google_event_id``): one the insert never made answers 404
        self.cancel_event(calendar_id, google_event_id(key), notify=notify)

    # -- push
    def subscribe(self, calendar_id: str, *, address: str, secret: str, ttl: timedelta) -> Watch:
        body = {
            "id": str(uuid.uuid4()),
            "type": "web_hook",
            "address": address,
            "token": secret,
            "params": {"ttl": str(int(ttl.total_seconds()))},
        }
        resp = self._execute(self._api().events().watch(calendarId=calendar_id, body=body), allow=(404,))
        if resp.get("_status") == 404:  # the calendar was deleted or unshared
            raise CalendarGone("Google does not find the calendar (HTTP 404)")
        expiration = datetime.fromtimestamp(int(resp["expiration"]) / 1000, UTC)
        return Watch(channel_id=resp["id"], resource_id=resp["resourceId"], expiration=expiration)

    def renew(self, calendar_id: str, watch: Watch, *, address: str, secret: str, ttl: timedelta) -> Watch:
        """Channels cannot be extended: open a new one. The old one stays open until the caller has recorded
        the new one (``watch_ensure`` stops it then): stopped first, a change pushed on the new channel
        before it was recorded was answered 404 and waited for the next poll."""
        return self.subscribe(calendar_id, address=address, secret=secret, ttl=ttl)

    def unsubscribe(self, watch: Watch) -> None:
        body = {"id": watch.channel_id, "resourceId": watch.resource_id}
        self._execute(self._api().channels().stop(body=body), allow=(404,))
