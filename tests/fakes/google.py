"""A fake Google Calendar API v3 + Google OAuth server on loopback, speaking the documented HTTP protocol.

Covers what Baton uses: the OAuth web flow (auth redirect, code → tokens with PKCE, refresh, invalid_grant),
calendarList (paged; hidden calendars only with showHidden=true), events.list with pageToken paging,
syncToken / nextSyncToken and 410 Gone, events insert (client ids, 409 duplicate, Meet via
conferenceDataVersion=1), get/patch/delete, events.watch + channels.stop with push notifications POSTed to
the channel address, and freeBusy.
Events are stored as single instances (Baton always lists with singleEvents=true).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import requests

from tests.fakes.http import FakeServer, Request, Response, json_response

API = "/calendar/v3"
BASE32HEX = re.compile(r"^[a-v0-9]{5,1024}$")


def _iso(value: dt.datetime) -> str:
    try:
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:  # no UTC instant (9999-12-31T23:00-08:00): Google sends the event's own offset
        return value.isoformat()


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _error(status: int, reason: str, message: str) -> Response:
    return json_response(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"domain": "global", "reason": reason, "message": message}],
            }
        },
    )


@dataclass
class FakeCalendar:
    id: str
    summary: str
    primary: bool = False
    access_role: str = "owner"
    time_zone: str = "UTC"
    hidden: bool = False  # hidden from the sidebar: calendarList.list leaves it out unless showHidden=true
    events: dict[str, dict] = field(default_factory=dict)
    epoch: int = 0  # bumping it invalidates every sync token (→ 410)


@dataclass
class FakeAccount:
    email: str
    calendars: dict[str, FakeCalendar] = field(default_factory=dict)


class FakeGoogle(FakeServer):
    def __init__(self):
        super().__init__()
        self.accounts: dict[str, FakeAccount] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token → (email, expires at)
        self.refresh_tokens: dict[str, str] = {}
        self.codes: dict[str, dict] = {}
        self.client_secret: str | None = None  # set: the token endpoint refuses any other (invalid_client)
        self.signed_in_as: str | None = None
        self.token_lifetime = 3600
        self.seq = itertools.count(1)
        self.channels: dict[str, dict] = {}
        self.revoked: list[str] = []  # tokens posted to /revoke
        self.notifications: list[dict] = []  # deliveries: channel id, state, answer status
        self.invitations: list[dict] = []  # sendUpdates != none with attendees
        self.deliver_push = True
        self.page_size_cap = 2500
        for method, pattern, handler in [
            ("GET", "/o/oauth2/auth", self._authorize),
            ("POST", "/token", self._token),
            ("POST", "/revoke", self._revoke),
            ("GET", f"{API}/users/me/calendarList", self._calendar_list),
            ("GET", f"{API}/users/me/calendarList/([^/]+)", self._calendar_list_get),
            ("GET", f"{API}/calendars/([^/]+)/events", self._events_list),
            ("POST", f"{API}/calendars/([^/]+)/events", self._events_insert),
            ("POST", f"{API}/calendars/([^/]+)/events/watch", self._events_watch),
            ("GET", f"{API}/calendars/([^/]+)/events/([^/]+)", self._events_get),
            ("PATCH", f"{API}/calendars/([^/]+)/events/([^/]+)", self._events_patch),
            ("PUT", f"{API}/calendars/([^/]+)/events/([^/]+)", self._events_patch),
            ("DELETE", f"{API}/calendars/([^/]+)/events/([^/]+)", self._events_delete),
            ("POST", f"{API}/channels/stop", self._channels_stop),
            ("POST", f"{API}/freeBusy", self._freebusy),
        ]:
            self.route(method, pattern, handler)

    # -- set-up helpers for tests
    @property
    def api_endpoint(self) -> str:
        return f"{self.base_url}{API}/"

    def add_account(
        self, email: str, *, extra_calendars: tuple[str, ...] = (), time_zone: str = "UTC"
    ) -> FakeAccount:
        account = FakeAccount(email)
        account.calendars[email] = FakeCalendar(email, email, primary=True, time_zone=time_zone)
        for name in extra_calendars:
            cal_id = f"{name.lower().replace(' ', '')}@group.calendar.google.com"
            account.calendars[cal_id] = FakeCalendar(cal_id, name, time_zone=time_zone)
        self.accounts[email] = account
        return account

    def calendar(self, cal_id: str) -> FakeCalendar:
        for account in self.accounts.values():
            if cal_id in account.calendars:
                return account.calendars[cal_id]
        raise KeyError(cal_id)

    def issue_tokens(self, email: str) -> dict:
        access, refresh = "ya29." + secrets.token_urlsafe(24), "1//" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (email, time.time() + self.token_lifetime)
        self.refresh_tokens[refresh] = email
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
        }

    def revoke(self, email: str) -> None:
        """The user removed Baton's access: every token of the account stops working."""
        with self.lock:
            for token, (owner, _) in list(self.access_tokens.items()):
                if owner == email:
                    del self.access_tokens[token]
            for token, owner in list(self.refresh_tokens.items()):
                if owner == email:
                    del self.refresh_tokens[token]

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token, (owner, _) in list(self.access_tokens.items()):
                self.access_tokens[token] = (owner, 0)

    def put_event(
        self,
        cal_id: str,
        *,
        start: dt.datetime | dt.date,
        end: dt.datetime | dt.date,
        event_id: str | None = None,
        notify: bool = True,
        **extra,
    ) -> dict:
        """Create or replace an event as if the user edited their calendar (notifies watchers)."""
        cal = self.calendar(cal_id)
        event_id = event_id or "ev" + secrets.token_hex(8)
        if isinstance(start, dt.datetime):
            times = {"start": {"dateTime": _iso(start)}, "end": {"dateTime": _iso(end)}}
        else:
            times = {"start": {"date": start.isoformat()}, "end": {"date": end.isoformat()}}
        with self.lock:
            event = {
                "kind": "calendar#event",
                "id": event_id,
                "status": "confirmed",
                "summary": "Busy",
                **times,
                **extra,
                "_seq": next(self.seq),
            }
            cal.events[event_id] = event
        if notify:
            self._notify(cal_id)
        return event

    def bulk_load(self, cal_id: str, events: list[dict]) -> None:
        """Load many ready-made events without notifications (benchmarks)."""
        cal = self.calendar(cal_id)
        with self.lock:
            for event in events:
                cal.events[event["id"]] = {
                    "kind": "calendar#event",
                    "status": "confirmed",
                    **event,
                    "_seq": next(self.seq),
                }

    def cancel_event(self, cal_id: str, event_id: str, *, notify: bool = True) -> None:
        cal = self.calendar(cal_id)
        with self.lock:
            cal.events[event_id] = {**cal.events[event_id], "status": "cancelled", "_seq": next(self.seq)}
        if notify:
            self._notify(cal_id)

    def invalidate_sync_tokens(self, cal_id: str) -> None:
        self.calendar(cal_id).epoch += 1

    # -- auth
    def _authorize(self, req: Request) -> Response:
        email = self.signed_in_as or next(iter(self.accounts))
        code = "4/" + secrets.token_urlsafe(16)
        self.codes[code] = {
            "email": email,
            "redirect_uri": req.query["redirect_uri"],
            "challenge": req.query.get("code_challenge"),
            "scope": req.query.get("scope", ""),
        }
        query = {"state": req.query.get("state", ""), "code": code, "scope": req.query.get("scope", "")}
        return Response(302, b"", {"Location": f"{req.query['redirect_uri']}?{urlencode(query)}"})

    def _token(self, req: Request) -> Response:
        form = req.form()
        if self.client_secret is not None and form.get("client_secret") != self.client_secret:
            return json_response(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return json_response(400, {"error": "invalid_grant", "error_description": "Bad Request"})
            if grant["challenge"]:
                digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant["challenge"]:
                    return json_response(
                        400, {"error": "invalid_grant", "error_description": "Invalid code verifier."}
                    )
            return json_response(200, {**self.issue_tokens(grant["email"]), "scope": grant["scope"]})
        if form.get("grant_type") == "refresh_token":
            email = self.refresh_tokens.get(form.get("refresh_token", ""))
            if email is None:
                return json_response(
                    400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                )
            tokens = self.issue_tokens(email)
            del self.refresh_tokens[tokens.pop("refresh_token")]
            return json_response(200, tokens)
        return json_response(400, {"error": "unsupported_grant_type"})

    def _revoke(self, req: Request) -> Response:
        """Google's revocation endpoint: a refresh or access token in the form body (or the query); every
        token of its grant stops working. An unknown token: 400 ``invalid_token``."""
        token = req.form().get("token") or req.query.get("token", "")
        with self.lock:
            email = self.refresh_tokens.get(token) or self.access_tokens.get(token, ("",))[0]
        if not email:
            return json_response(400, {"error": "invalid_token", "error_description": "Bad Request"})
        self.revoked.append(token)
        self.revoke(email)
        return json_response(200, {})

    def _account(self, req: Request) -> FakeAccount | None:
        auth = req.header("authorization")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self.lock:
            owner = self.access_tokens.get(token)
        if owner is None or owner[1] < time.time():
            return None
        return self.accounts[owner[0]]

    def _unauthorized(self) -> Response:
        return Response(
            401,
            json.dumps(
                {
                    "error": {
                        "code": 401,
                        "status": "UNAUTHENTICATED",
                        "message": "Request had invalid authentication credentials.",
                    }
                }
            ).encode(),
            {
                "Content-Type": "application/json",
                "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"',
            },
        )

    def _cal(
        self, req: Request, group: int = 1
    ) -> tuple[FakeAccount | None, FakeCalendar | None, Response | None]:
        account = self._account(req)
        if account is None:
            return None, None, self._unauthorized()
        cal_id = unquote(req.match.group(group))
        if cal_id == "primary":
            cal_id = account.email
        cal = account.calendars.get(cal_id)
        if cal is None:
            return account, None, _error(404, "notFound", "Not Found")
        return account, cal, None

    # -- calendarList
    def _calendar_list(self, req: Request) -> Response:
        account = self._account(req)
        if account is None:
            return self._unauthorized()
        show_hidden = req.query.get("showHidden") == "true"
        items = [self._list_entry(c) for c in account.calendars.values() if show_hidden or not c.hidden]
        size = int(req.query.get("maxResults", 100))
        offset = int(req.query.get("pageToken") or 0)
        page = {"kind": "calendar#calendarList", "items": items[offset : offset + size]}
        if offset + size < len(items):
            page["nextPageToken"] = str(offset + size)
        return json_response(200, page)

    def _list_entry(self, cal: FakeCalendar) -> dict:
        entry = {
            "kind": "calendar#calendarListEntry",
            "id": cal.id,
            "summary": cal.summary,
            "timeZone": cal.time_zone,
            "accessRole": cal.access_role,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }
        if cal.primary:
            entry["primary"] = True
        if cal.hidden:
            entry["hidden"] = True
        return entry

    def _calendar_list_get(self, req: Request) -> Response:
        account, cal, error = self._cal(req)
        return error or json_response(200, self._list_entry(cal))

    # -- events.list with paging and sync tokens
    def _events_list(self, req: Request) -> Response:
        account, cal, error = self._cal(req)
        if error:
            return error
        q = req.query
        if q.get("syncToken") and any(
            k in q for k in ("timeMin", "timeMax", "orderBy", "q", "updatedMin", "iCalUID")
        ):
            return _error(400, "invalid", "Sync token cannot be used with other filter parameters.")
        if q.get("singleEvents") != "true":
            return _error(400, "invalid", "This fake only serves singleEvents=true.")
        size = min(int(q.get("maxResults", 250)), self.page_size_cap)
        if q.get("pageToken"):
            state = json.loads(base64.urlsafe_b64decode(q["pageToken"]))
        else:
            state = {"offset": 0, "as_of": self._current_seq(cal)}
            if q.get("syncToken"):
                try:
                    epoch, since = json.loads(base64.urlsafe_b64decode(q["syncToken"]))
                except (ValueError, TypeError):
                    return _error(400, "invalid", "Invalid sync token value.")
                if epoch != cal.epoch:
                    return _error(
                        410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
                    )
                state["since"] = since
        with self.lock:
            events = sorted(cal.events.values(), key=lambda e: e["id"])
        if "since" in state:
            items = [e for e in events if state["since"] < e["_seq"] <= state["as_of"]]
        else:
            lo, hi = (
                _parse(q["timeMin"]) if "timeMin" in q else None,
                _parse(q["timeMax"]) if "timeMax" in q else None,
            )
            items = [
                e
                for e in events
                if e["status"] != "cancelled"
                and e["_seq"] <= state["as_of"]
                and self._overlaps(e, lo, hi, cal.time_zone)
            ]
        chunk = items[state["offset"] : state["offset"] + size]
        page = {
            "kind": "calendar#events",
            "summary": cal.summary,
            "timeZone": cal.time_zone,
            "items": [_selected(self._public(e), q.get("fields")) for e in chunk],
        }
        if state["offset"] + size < len(items):
            state["offset"] += size
            page["nextPageToken"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        else:
            page["nextSyncToken"] = base64.urlsafe_b64encode(
                json.dumps([cal.epoch, state["as_of"]]).encode()
            ).decode()
        return json_response(200, page)

    def _current_seq(self, cal: FakeCalendar) -> int:
        with self.lock:
            return max((e["_seq"] for e in cal.events.values()), default=0)

    @staticmethod
    def _bounds(event: dict, time_zone: str = "UTC") -> tuple[dt.datetime, dt.datetime]:
        """An event's instants; an all-day event's dates are days of the calendar's time zone (as Google
        reads them for timeMin/timeMax and free/busy)."""
        zone = ZoneInfo(time_zone)

        def one(part):
            if "dateTime" in part:
                return _parse(part["dateTime"])
            local = dt.datetime.combine(dt.date.fromisoformat(part["date"]), dt.time(0), tzinfo=zone)
            return local.astimezone(dt.UTC)

        return one(event["start"]), one(event["end"])

    def _overlaps(self, event: dict, lo, hi, time_zone: str = "UTC") -> bool:
        start, end = self._bounds(event, time_zone)
        return (lo is None or end > lo) and (hi is None or start < hi)

    @staticmethod
    def _public(event: dict) -> dict:
        if event["status"] == "cancelled":
            return {"kind": "calendar#event", "id": event["id"], "status": "cancelled"}
        return {k: v for k, v in event.items() if not k.startswith("_")}

    # -- events write
    def _events_insert(self, req: Request) -> Response:
        account, cal, error = self._cal(req)
        if error:
            return error
        body = req.json()
        event_id = body.get("id") or "ev" + secrets.token_hex(8)
        if not BASE32HEX.match(event_id):
            return _error(400, "invalid", "Invalid resource id value.")
        with self.lock:
            if event_id in cal.events:
                return _error(409, "duplicate", "The requested identifier already exists.")
            event = {
                **body,
                "id": event_id,
                "status": "confirmed",
                "kind": "calendar#event",
                "organizer": {"email": account.email, "self": True},
                "_seq": next(self.seq),
            }
            self._conference(event, req)
            cal.events[event_id] = event
        self._record_invitations(event, req, "created")
        self._notify(cal.id)
        return json_response(200, self._public(event))

    @staticmethod
    def _conference(event: dict, req: Request) -> None:
        create = (event.get("conferenceData") or {}).get("createRequest")
        if create and req.query.get("conferenceDataVersion") == "1":
            code = "-".join(secrets.token_hex(2)[:3] for _ in range(3)).replace("0", "a")
            uri = f"https://meet.google.com/{code}"
            event["hangoutLink"] = uri
            event["conferenceData"] = {
                "createRequest": {**create, "status": {"statusCode": "success"}},
                "entryPoints": [{"entryPointType": "video", "uri": uri}],
                "conferenceSolution": {"key": {"type": "hangoutsMeet"}},
                "conferenceId": code,
            }
        elif create:
            event.pop("conferenceData", None)  # ignored without conferenceDataVersion=1

    def _record_invitations(self, event: dict, req: Request, action: str) -> None:
        if req.query.get("sendUpdates", "none") != "none" and event.get("attendees"):
            self.invitations.append(
                {"action": action, "event_id": event["id"], "to": [a["email"] for a in event["attendees"]]}
            )

    def _events_get(self, req: Request) -> Response:
        account, cal, error = self._cal(req)
        if error:
            return error
        event = cal.events.get(unquote(req.match.group(2)))
        if event is None:
            return _error(404, "notFound", "Not Found")
        return json_response(200, {k: v for k, v in event.items() if not k.startswith("_")})

    def _events_patch(self, req: Request) -> Response:
        account, cal, error = self._cal(req)
        if error:
            return error
        event_id = unquote(req.match.group(2))
        with self.lock:
            event = cal.events.get(event_id)
            if event is None:
                return _error(404, "notFound", "Not Found")
            body = req.json()
            conference = body.pop("conferenceData", None)
            event = {**event, **body, "id": event_id, "_seq": next(self.seq)}
            if conference and "conferenceData" not in event:
                event["conferenceData"] = conference
                self._conference(event, req)
            cal.events[event_id] = event
        self._record_invitations(event, req, "updated")
        self._notify(cal.id)
        return json_response(200, self._public(event))

    def _events_delete(self, req: Request) -> Response:
        account, cal, error = self._cal(req)
        if error:
            return error
        event_id = unquote(req.match.group(2))
        with self.lock:
            event = cal.events.get(event_id)
            if event is None:
                return _error(404, "notFound", "Not Found")
            if event["status"] == "cancelled":
                return _error(410, "deleted", "Resource has been deleted")
            cal.events[event_id] = {**event, "status": "cancelled", "_seq": next(self.seq)}
        self._record_invitations(event, req, "cancelled")
        self._notify(cal.id)
        return Response(204)

    # -- free/busy
    def _freebusy(self, req: Request) -> Response:
        account = self._account(req)
        if account is None:
            return self._unauthorized()
        body = req.json()
        lo, hi = _parse(body["timeMin"]), _parse(body["timeMax"])
        answer = {}
        for item in body.get("items", []):
            cal = account.calendars.get(item["id"])
            if cal is None:
                answer[item["id"]] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            busy = []
            for event in cal.events.values():
                if event["status"] == "cancelled" or event.get("transparency") == "transparent":
                    continue
                start, end = self._bounds(event, cal.time_zone)
                if end > lo and start < hi:
                    busy.append({"start": _iso(max(start, lo)), "end": _iso(min(end, hi))})
            answer[item["id"]] = {"busy": sorted(busy, key=lambda b: b["start"])}
        return json_response(
            200,
            {
                "kind": "calendar#freeBusy",
                "timeMin": body["timeMin"],
                "timeMax": body["timeMax"],
                "calendars": answer,
            },
        )

    # -- push channels
    def _events_watch(self, req: Request) -> Response:
        account, cal, error = self._cal(req)
        if error:
            return error
        body = req.json()
        if body.get("type") != "web_hook" or not body.get("address") or not body.get("id"):
            return _error(400, "invalid", "Invalid channel.")
        if body["id"] in self.channels:
            return _error(400, "channelIdNotUnique", "Channel id not unique")
        ttl = int((body.get("params") or {}).get("ttl", 604800))
        expiration = int((time.time() + min(ttl, 604800)) * 1000)
        channel = {
            "kind": "api#channel",
            "id": body["id"],
            "resourceId": "res-" + secrets.token_hex(6),
            "resourceUri": f"{self.api_endpoint}calendars/{cal.id}/events?alt=json",
            "token": body.get("token", ""),
            "expiration": str(expiration),
            "_address": body["address"],
            "_calendar": cal.id,
            "_messages": itertools.count(1),
        }
        self.channels[body["id"]] = channel
        self._deliver(channel, "sync")
        return json_response(200, {k: v for k, v in channel.items() if not k.startswith("_")})

    def _channels_stop(self, req: Request) -> Response:
        if self._account(req) is None:
            return self._unauthorized()
        body = req.json()
        channel = self.channels.get(body.get("id"))
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            return _error(404, "notFound", "Channel not found")
        del self.channels[body["id"]]
        return Response(204)

    def _notify(self, cal_id: str) -> None:
        for channel in list(self.channels.values()):
            if channel["_calendar"] == cal_id:
                self._deliver(channel, "exists")

    def _deliver(self, channel: dict, state: str) -> None:
        if not self.deliver_push:
            return
        headers = {
            "X-Goog-Channel-ID": channel["id"],
            "X-Goog-Channel-Token": channel["token"],
            "X-Goog-Channel-Expiration": "Tue, 01 Dec 2026 00:00:00 GMT",
            "X-Goog-Resource-ID": channel["resourceId"],
            "X-Goog-Resource-URI": channel["resourceUri"],
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(next(channel["_messages"])),
        }
        record = {"channel": channel["id"], "state": state, "status": None}
        self.notifications.append(record)

        def post():
            try:
                record["status"] = requests.post(
                    channel["_address"], headers=headers, data=b"", timeout=10
                ).status_code
            except requests.RequestException as exc:
                record["status"] = repr(exc)

        if state == "sync":
            threading.Thread(target=post, daemon=True).start()
        else:
            post()


def parse_redirect(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _selected(item: dict, fields: str | None) -> dict:
    """A partial response, as Google gives for ``fields=…,items(a,b(c),d/e)``: only the item's named
    top-level fields (their own sub-selections are not applied)."""
    if not fields or "items(" not in fields:
        return item
    inner, depth = fields[fields.index("items(") + len("items(") :], 0
    names, current = set(), ""
    for char in inner:
        if char == ")" and depth == 0:
            break
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            names.add(current.split("/")[0].split("(")[0].strip())
            current = ""
        elif depth == 0 and char != ")":
            current += char
    names.add(current.split("/")[0].split("(")[0].strip())
    return {k: v for k, v in item.items() if k in names}
