"""Microsoft 365 through msal (OAuth auth-code flow, one SerializableTokenCache per connection) and plain
requests against Microsoft Graph (msgraph-sdk is async-only; Celery workers are synchronous).

* Incremental sync: ``calendars/{id}/calendarView/delta`` over the sync window, following
  ``@odata.nextLink`` to the ``@odata.deltaLink``, which is stored whole and replayed next time.
  410 / ``syncStateNotFound`` → full sync again; 404 (the calendar deleted) → ``CalendarGone``.
* 429/503/504 answers are retried after ``Retry-After`` (seconds, fractions allowed, or an HTTP-date) up to
  a cap, or without one after a jittered exponential back-off (``providers.pushback``); a longer wait
  surfaces as ``ProviderUnavailable(retry_after=…)``: the attempt fails without blocking the worker, the
  calendar is paused that long (``Calendar.retry_not_before``: pushes meanwhile call nothing, the sweep
  syncs it once the pause is over); the last synced busy times stay in force; a
  calendar write's outbox retry waits at least that long. Only 429 is reported as throttling; 503 is
  "unavailable", 504 "timed out".
* Events Baton writes carry ``transactionId`` (``baton-`` + a UUID derived from the idempotency key), so a
  retried POST returns the event already created; sync ignores them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from django.conf import settings

from calendars.errors import (
    CalendarGone,
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
from calendars.providers.microsoft_auth import silent_token
from calendars.providers.microsoft_events import (
    TRANSACTION_PREFIX,
    as_drafted,
    busy_from_event,
    invitation_uid,
    join_url,
    online_request,
    transaction_id,
)
from calendars.providers.pushback import jittered_backoff, pushback_message, retry_after_seconds

# the event-reading helpers moved to ``microsoft_events``: still importable from here
__all__ = ["TRANSACTION_PREFIX", "MicrosoftProvider", "busy_from_event", "invitation_uid", "transaction_id"]

MAX_SUBSCRIPTION = timedelta(minutes=4230)
MAX_RETRY_WAIT_SECONDS = 30.0
ALL_DAY_SLACK = timedelta(days=1)  # see busy_in
PREFER = 'outlook.timezone="UTC", odata.maxpagesize=200'
RESYNC_CODES = {"syncStateNotFound", "resyncRequired", "SyncStateNotFound", "SyncStateInvalid"}


def _graph_time(value: datetime) -> str:
    return to_utc(value).replace(tzinfo=None).isoformat(timespec="seconds")


class MicrosoftProvider(CalendarProvider):
    name = "microsoft"
    supports_push = True

    def __init__(
        self,
        secrets: dict,
        *,
        on_secrets_changed: SecretsCallback | None = None,
        timeout: float | None = None,
        retries: int = 3,
        max_retry_wait: float = MAX_RETRY_WAIT_SECONDS,
        zone: ZoneInfo | None = None,
    ):
        self._secrets = dict(secrets)
        # the rep's zone, for all-day events in the live check: Graph gives them as midnight to midnight
        # of their dates whatever the Prefer header asks (the sync is handed the zone for the same reason)
        self._zone = zone or ZoneInfo("UTC")
        self._on_change = on_secrets_changed
        self._timeout = timeout or settings.CALENDAR_HTTP_TIMEOUT_SECONDS
        self._retries = retries
        self._max_wait = max_retry_wait
        self._token: str | None = None
        self._session = requests.Session()
        self._base = settings.MS_GRAPH_ENDPOINT

    def __repr__(self) -> str:
        return "<MicrosoftProvider>"

    # -- plumbing
    def _access_token(self, *, force_refresh: bool = False) -> str:
        if self._token and not force_refresh:
            return self._token
        self._token, cache = silent_token(self._secrets, timeout=self._timeout, force_refresh=force_refresh)
        if cache is not None:
            self._secrets["cache"] = cache
            if self._on_change is not None:
                self._on_change(dict(self._secrets))
        return self._token

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            if not path_or_url.startswith(self._base + "/"):
                raise ProviderUnavailable("Graph returned a link outside the Graph endpoint")
            return path_or_url
        return f"{self._base}/{path_or_url.lstrip('/')}"

    def _request(
        self, method: str, path: str, *, params=None, json=None, allow: tuple[int, ...] = ()
    ) -> requests.Response:
        token, refreshed = self._access_token(), False
        attempt = 0
        while True:
            headers = {"Authorization": f"Bearer {token}", "Prefer": PREFER, "Accept": "application/json"}
            try:
                resp = self._session.request(
                    method, self._url(path), params=params, json=json, headers=headers, timeout=self._timeout
                )
            except requests.RequestException as exc:
                raise ProviderUnavailable(
                    f"Microsoft Graph did not answer ({exc.__class__.__name__})"
                ) from None
            if resp.status_code in (429, 503, 504):
                asked = retry_after_seconds(resp.headers.get("Retry-After"))
                wait = asked if asked is not None else jittered_backoff(attempt, cap=self._max_wait)
                if attempt >= self._retries or wait > self._max_wait:
                    raise ProviderUnavailable(
                        pushback_message(
                            "Microsoft Graph",
                            resp.status_code,
                            throttled=resp.status_code == 429,
                            retry_after=asked,
                        ),
                        status=resp.status_code,
                        retry_after=asked,
                    )
                time.sleep(wait)
                attempt += 1
                continue
            if resp.status_code == 401 and not refreshed:
                # refused a token MSAL still holds as valid (a slow clock, a token Microsoft dropped early):
                # a forced refresh tells an intact grant (retried once) from a revoked one (GrantRevoked)
                token, refreshed = self._access_token(force_refresh=True), True
                continue
            break
        if resp.status_code < 400 or resp.status_code in allow:
            return resp
        code = _error_code(resp)
        if resp.status_code == 410 or code in RESYNC_CODES:
            raise SyncStateExpired()
        if resp.status_code == 401:  # even with a freshly refreshed token
            raise GrantRevoked("Microsoft Graph no longer accepts Baton's access; reconnect the calendar.")
        raise ProviderUnavailable(
            f"Microsoft Graph answered HTTP {resp.status_code} ({code or 'error'})", status=resp.status_code
        )

    def _pages(self, path: str, params=None):
        """Yield every page of a collection, following @odata.nextLink."""
        url, query = path, params
        while True:
            page = _json(self._request("GET", url, params=query))
            yield page
            url, query = page.get("@odata.nextLink"), None
            if not url:
                return

    # -- reading
    def list_calendars(self) -> list[RemoteCalendar]:
        select = "id,name,isDefaultCalendar,canEdit,allowedOnlineMeetingProviders"
        found = []
        for page in self._pages("me/calendars", {"$select": select}):
            for item in page.get("value", []):
                found.append(
                    RemoteCalendar(
                        external_id=item["id"],
                        name=item.get("name") or item["id"],
                        is_primary=bool(item.get("isDefaultCalendar")),
                        can_write=bool(item.get("canEdit")),
                        online_meeting_providers=tuple(item.get("allowedOnlineMeetingProviders") or ()),
                    )
                )
        return found

    def account_email(self) -> str:
        me = _json(self._request("GET", "me", params={"$select": "mail,userPrincipalName"}))
        return me.get("mail") or me.get("userPrincipalName") or ""

    def sync(
        self, calendar_id: str, state: str, *, window: tuple[datetime, datetime], zone: ZoneInfo
    ) -> SyncResult:
        if state:
            try:
                return self._delta(state, None, zone, full=False)
            except SyncStateExpired:
                pass
        params = {"startDateTime": _graph_time(window[0]) + "Z", "endDateTime": _graph_time(window[1]) + "Z"}
        return self._delta(f"me/calendars/{calendar_id}/calendarView/delta", params, zone, full=True)

    def _delta(self, url: str, params, zone: ZoneInfo, *, full: bool) -> SyncResult:
        # a round may list an event more than once, the later entry its newer state (an event moved on one
        # page and @removed on a later one): only the last entry per id counts
        latest: dict[str, dict] = {}
        while True:
            resp = self._request("GET", url, params=params, allow=(404,))
            if resp.status_code == 404:  # the calendar was deleted (ErrorItemNotFound): the caller confirms
                code = _error_code(resp) or "error"
                raise CalendarGone(f"Microsoft Graph does not find the calendar (HTTP 404 {code})")
            page = _json(resp)
            for item in page.get("value", []):
                if item.get("type") != "seriesMaster":  # occurrences come separately
                    latest.pop(item["id"], None)
                    latest[item["id"]] = item
            if page.get("@odata.nextLink"):
                url, params = page["@odata.nextLink"], None
                continue
            break
        result = SyncResult(full=full, next_state=page.get("@odata.deltaLink", ""))
        for event_id, item in latest.items():
            busy = busy_from_event(item, zone)
            if busy is None:
                result.deletions.append(event_id)
                if "@removed" in item or item.get("isCancelled"):
                    result.removed.append(event_id)
            else:
                result.upserts.append(busy)
        return result

    def confirm_removed(self, calendar_id: str, external_ids: list[str]) -> list[str]:
        """Graph reports as ``@removed`` not only deleted events but any created or changed outside the
        window of the delta link's full sync (the link keeps it until the weekly roll): each is read, and
        only the ones gone from the calendar (404/410, cancelled) are confirmed. An event a host deleted is
        moved to Deleted Items (a new id), so it is not found under its id in the calendar."""
        gone = []
        for external_id in external_ids:
            resp = self._request(
                "GET",
                f"me/calendars/{calendar_id}/events/{external_id}",
                params={"$select": "id,isCancelled"},
                allow=(404, 410),
            )
            if resp.status_code in (404, 410) or _json(resp).get("isCancelled"):
                gone.append(external_id)
        return gone

    def busy_in(
        self, calendar_ids: list[str], start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """calendarView per blocking calendar: getSchedule covers only the default calendar and no personal
        accounts, so it cannot honour the rep's choice of blocking calendars."""
        busy = []
        # a day wider each way: which all-day events Graph counts in a window depends on the zone it reads
        # their dates in; they are read here in the rep's zone and kept if they meet [start, end)
        params = {
            "startDateTime": _graph_time(start - ALL_DAY_SLACK) + "Z",
            "endDateTime": _graph_time(end + ALL_DAY_SLACK) + "Z",
            "$select": "id,iCalUId,showAs,isCancelled,isAllDay,start,end,responseStatus,transactionId,type",
        }
        for calendar_id in calendar_ids:
            for page in self._pages(f"me/calendars/{calendar_id}/calendarView", params):
                for item in page.get("value", []):
                    event = busy_from_event(item, self._zone)
                    if event is not None and event.start < end and start < event.end:
                        busy.append((event.start, event.end))
        return busy

    # -- writing
    def _body(self, draft: EventDraft, *, update: bool = False) -> dict:
        body = {
            "subject": draft.title,
            "body": {"contentType": "text", "content": draft.description},
            "start": {"dateTime": _graph_time(draft.start), "timeZone": "UTC"},
            "end": {"dateTime": _graph_time(draft.end), "timeZone": "UTC"},
            "attendees": [
                {"emailAddress": {"address": email, "name": name}, "type": "required"}
                for name, email in draft.attendees
            ],
            "allowNewTimeProposals": False,
        }
        if draft.location or update:
            body["location"] = {"displayName": draft.location}  # an update clears a stale one (a lead's link)
        return body

    def create_event(self, calendar_id: str, draft: EventDraft, *, online_provider: str = "") -> WrittenEvent:
        online = online_request(draft, online_provider)
        body = {**self._body(draft), "transactionId": transaction_id(draft.key), **online}
        created = _json(self._request("POST", f"me/calendars/{calendar_id}/events", json=body))
        if not as_drafted(created, draft, online_provider=online_provider):
            # a retry: Graph answers with the event the first create made, unchanged (event-create,
            # transactionId), and the booking may have moved since; it is rewritten as drafted, as Google's
            # create patches the event it finds
            return self.update_event(calendar_id, created["id"], draft, online_provider=online_provider)
        return WrittenEvent(external_id=created["id"], join_url=join_url(created))

    def update_event(
        self, calendar_id: str, external_id: str, draft: EventDraft, *, online_provider: str = ""
    ) -> WrittenEvent:
        # asked for a link (``online_provider``): an event without one (a co-host's, now the lead's) gets one.
        # The body of a video meeting's event is left as it is: Graph keeps the Teams join details ("meeting
        # blob") in it, and a body written without them turns the meeting off (event-update, "body property
        # and online meetings"); the description is the one written at creation (it names the booking and
        # the prospect, not the time).
        body = {**self._body(draft, update=True), **online_request(draft, online_provider)}
        if draft.video:
            del body["body"]
        resp = self._request("PATCH", f"me/events/{external_id}", json=body, allow=(404,))
        if resp.status_code == 404:  # deleted by the mailbox's owner (ErrorItemNotFound): gone for good
            raise EventGone()
        updated = _json(resp)
        return WrittenEvent(external_id=updated["id"], join_url=join_url(updated))

    def cancel_event(self, calendar_id: str, external_id: str, *, notify: bool = True) -> None:
        if notify:
            resp = self._request(
                "POST",
                f"me/events/{external_id}/cancel",
                json={"comment": "This meeting was cancelled."},
                allow=(400, 404),
            )
            if resp.status_code != 400:
                return  # cancelled, or already gone
        self._request("DELETE", f"me/events/{external_id}", allow=(404,))

    def cancel_unconfirmed(
        self, calendar_id: str, key: str, *, start: datetime, end: datetime, notify: bool = True
    ) -> None:
        # Graph chose the event's id: the event is found by its transactionId among the calendar's events at
        # the booking's time (calendarView, as ``busy_in`` reads it)
        params = {
            "startDateTime": _graph_time(start) + "Z",
            "endDateTime": _graph_time(end) + "Z",
            "$select": "id,transactionId",
        }
        wanted = transaction_id(key)
        found = [
            item["id"]
            for page in self._pages(f"me/calendars/{calendar_id}/calendarView", params)
            for item in page.get("value", [])
            if item.get("transactionId") == wanted
        ]
        for external_id in found:
            self.cancel_event(calendar_id, external_id, notify=notify)

    # -- push
    def subscribe(self, calendar_id: str, *, address: str, secret: str, ttl: timedelta) -> Watch:
        expires = datetime.now(UTC) + min(ttl, MAX_SUBSCRIPTION)
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": address,
            "lifecycleNotificationUrl": address,
            "resource": f"me/calendars/{calendar_id}/events",
            "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
            "clientState": secret,
        }
        resp = _json(self._request("POST", "subscriptions", json=body))
        return Watch(
            channel_id=resp["id"],
            resource_id=resp.get("resource", ""),
            expiration=to_utc(parse_rfc3339(resp["expirationDateTime"])),
        )

    def renew(self, calendar_id: str, watch: Watch, *, address: str, secret: str, ttl: timedelta) -> Watch:
        """PATCH the subscription's expiry. One that delivers elsewhere than ``address`` (the webhook base
        moved) is replaced by a new one there, as a Google channel is at renewal (the caller stops the old
        one): Graph can update ``notificationUrl`` but not ``lifecycleNotificationUrl``."""
        expires = datetime.now(UTC) + min(ttl, MAX_SUBSCRIPTION)
        resp = self._request(
            "PATCH",
            f"subscriptions/{watch.channel_id}",
            allow=(404,),
            json={"expirationDateTime": expires.isoformat().replace("+00:00", "Z")},
        )
        if resp.status_code == 404:  # removed by Graph: subscribe again
            return self.subscribe(calendar_id, address=address, secret=secret, ttl=ttl)
        data = _json(resp)
        delivers_to = {data.get("notificationUrl"), data.get("lifecycleNotificationUrl")} - {None, ""}
        if delivers_to - {address}:  # the webhook address moved
            return self.subscribe(calendar_id, address=address, secret=secret, ttl=ttl)
        return Watch(
            channel_id=watch.channel_id,
            resource_id=watch.resource_id,
            expiration=to_utc(parse_rfc3339(data["expirationDateTime"])),
        )

    def unsubscribe(self, watch: Watch) -> None:
        self._request("DELETE", f"subscriptions/{watch.channel_id}", allow=(404,))


def _json(resp: requests.Response) -> dict:
    """A Graph answer's JSON body; one that does not parse (ended early without a length to tell, a proxy's
    page) is Graph not answering properly, not a crash of the caller."""
    try:
        return resp.json()
    except ValueError:
        raise ProviderUnavailable("Microsoft Graph sent an unreadable answer") from None


def _error_code(resp: requests.Response) -> str:
    try:
        return (resp.json().get("error") or {}).get("code", "")
    except ValueError:
        return ""
