"""A fake Microsoft identity platform + Microsoft Graph (v1.0) on loopback over TLS, for msal and requests.

Identity: OpenID discovery for ``/{tenant}/v2.0``, the authorize redirect, the token endpoint (auth code with
PKCE, refresh tokens, ``invalid_grant`` once revoked), id_token and client_info as MSAL expects them.
Graph: /me, /me/calendars (paged with @odata.nextLink), calendarView and calendarView/delta (nextLink pages
to a deltaLink, @removed entries, 410 SyncStateNotFound once invalidated), event get in a calendar, event
create with transactionId de-duplication and Teams links, PATCH, cancel, DELETE, and subscriptions with the
validationToken handshake, clientState, PATCH of the expiry (max 4230 minutes) and of notificationUrl
(handshake again; lifecycleNotificationUrl stays) and change notifications POSTed to the app.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import itertools
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import requests

from tests.fakes.http import FakeServer, Request, Response, json_response

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
MAX_SUBSCRIPTION = dt.timedelta(minutes=4230)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _graph_time(value: dt.datetime) -> dict:
    return {
        "dateTime": value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + ".0000000",
        "timeZone": "UTC",
    }


def _parse_graph(part: dict) -> dt.datetime:
    text = part["dateTime"].split(".")[0]
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _parse_param(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def _go_online(event: dict) -> None:
    """Graph makes a Teams meeting: a join URL, and its "meeting blob" added to the event's HTML body."""
    join_url = f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{event['id'][-12:]}"
    blob = f'<div>Microsoft Teams meeting <a href="{join_url}">Join the meeting now</a></div>'
    text = html.escape((event.get("body") or {}).get("content", "")).replace("\n", "<br>")
    event.update(onlineMeeting={"joinUrl": join_url}, _blob=blob)
    event["body"] = {"contentType": "html", "content": f"<html><body>{text}{blob}</body></html>"}


def _error(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    return json_response(
        status,
        {"error": {"code": code, "message": message, "innerError": {"request-id": str(uuid.uuid4())}}},
        headers,
    )


@dataclass
class FakeMsCalendar:
    id: str
    name: str
    is_default: bool = False
    can_edit: bool = True
    online_providers: tuple[str, ...] = ("teamsForBusiness",)
    events: dict[str, dict] = field(default_factory=dict)
    epoch: int = 0


@dataclass
class FakeMsUser:
    email: str
    oid: str
    calendars: dict[str, FakeMsCalendar] = field(default_factory=dict)


class FakeMicrosoft(FakeServer):
    def __init__(self, *, tls: tuple[str, str]):
        super().__init__(tls=tls)
        self.users: dict[str, FakeMsUser] = {}
        self.access_tokens: dict[str, tuple[str, float]] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.codes: dict[str, dict] = {}
        self.client_secret: str | None = None  # set: the token endpoint refuses any other (invalid_client)
        self.signed_in_as: str | None = None
        self.seq = itertools.count(1)
        self.subscriptions: dict[str, dict] = {}
        self.notifications: list[dict] = []
        self.invitations: list[dict] = []
        self.transactions: dict[str, str] = {}  # transactionId → event id
        self.page_size_cap = 1000
        routes = [
            ("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration", self._discovery),
            ("GET", f"/{TENANT}/oauth2/v2.0/authorize", self._authorize),
            ("POST", f"/{TENANT}/oauth2/v2.0/token", self._token),
            ("GET", "/v1.0/me", self._me),
            ("GET", "/v1.0/me/calendars", self._calendars),
            ("GET", "/v1.0/me/calendars/([^/]+)/calendarView/delta", self._delta),
            ("GET", "/v1.0/me/calendars/([^/]+)/calendarView", self._calendar_view),
            ("POST", "/v1.0/me/calendars/([^/]+)/events", self._create),
            ("GET", "/v1.0/me/calendars/([^/]+)/events/([^/]+)", self._get),
            ("PATCH", "/v1.0/me/events/([^/]+)", self._patch),
            ("POST", "/v1.0/me/events/([^/]+)/cancel", self._cancel),
            ("DELETE", "/v1.0/me/events/([^/]+)", self._delete),
            ("POST", "/v1.0/subscriptions", self._subscribe),
            ("PATCH", "/v1.0/subscriptions/([^/]+)", self._renew),
            ("DELETE", "/v1.0/subscriptions/([^/]+)", self._unsubscribe),
        ]
        for method, pattern, handler in routes:
            self.route(method, pattern, handler)

    # -- set-up helpers
    @property
    def authority(self) -> str:
        return f"{self.base_url}/{TENANT}"

    @property
    def graph(self) -> str:
        return f"{self.base_url}/v1.0"

    def add_user(
        self, email: str, *, extra_calendars: tuple[str, ...] = (), teams: bool = True
    ) -> FakeMsUser:
        user = FakeMsUser(email, str(uuid.uuid4()))
        providers = ("teamsForBusiness",) if teams else ()
        default_id = "AAMkAD" + secrets.token_hex(10)
        user.calendars[default_id] = FakeMsCalendar(
            default_id, "Calendar", is_default=True, online_providers=providers
        )
        for name in extra_calendars:
            cal_id = "AAMkAD" + secrets.token_hex(10)
            user.calendars[cal_id] = FakeMsCalendar(cal_id, name, online_providers=providers)
        self.users[email] = user
        return user

    def default_calendar(self, email: str) -> FakeMsCalendar:
        return next(c for c in self.users[email].calendars.values() if c.is_default)

    def calendar(self, cal_id: str) -> tuple[FakeMsUser, FakeMsCalendar]:
        for user in self.users.values():
            if cal_id in user.calendars:
                return user, user.calendars[cal_id]
        raise KeyError(cal_id)

    def revoke(self, email: str) -> None:
        with self.lock:
            for store in (self.access_tokens, self.refresh_tokens):
                for token, value in list(store.items()):
                    owner = value[0] if isinstance(value, tuple) else value
                    if owner == email:
                        del store[token]

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token, (owner, _) in list(self.access_tokens.items()):
                self.access_tokens[token] = (owner, 0)

    def put_event(
        self,
        cal_id: str,
        *,
        start: dt.datetime,
        end: dt.datetime,
        event_id: str | None = None,
        show_as: str = "busy",
        all_day: bool = False,
        notify: bool = True,
        **extra,
    ) -> dict:
        user, cal = self.calendar(cal_id)
        event_id = event_id or "AAMkAGI" + secrets.token_hex(12)
        with self.lock:
            event = {
                "id": event_id,
                "subject": "Busy",
                "start": _graph_time(start),
                "end": _graph_time(end),
                "isAllDay": all_day,
                "showAs": show_as,
                "isCancelled": False,
                "type": "singleInstance",
                **extra,
                "_seq": next(self.seq),
            }
            cal.events[event_id] = event
        if notify:
            self._notify(user, cal, event_id, "updated")
        return event

    def delete_event(self, cal_id: str, event_id: str, *, notify: bool = True) -> None:
        user, cal = self.calendar(cal_id)
        with self.lock:
            cal.events[event_id] = {**cal.events[event_id], "_deleted": True, "_seq": next(self.seq)}
        if notify:
            self._notify(user, cal, event_id, "deleted")

    def invalidate_delta(self, cal_id: str) -> None:
        self.calendar(cal_id)[1].epoch += 1

    # -- identity platform
    def _discovery(self, req: Request) -> Response:
        base = f"{self.base_url}/{TENANT}"
        return json_response(
            200,
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code"],
                "scopes_supported": ["openid", "profile", "offline_access"],
            },
        )

    def _authorize(self, req: Request) -> Response:
        email = self.signed_in_as or next(iter(self.users))
        code = "0.AX" + secrets.token_urlsafe(24)
        self.codes[code] = {
            "email": email,
            "redirect_uri": req.query["redirect_uri"],
            "challenge": req.query.get("code_challenge"),
            "nonce": req.query.get("nonce"),
        }
        query = urlencode(
            {"code": code, "state": req.query.get("state", ""), "session_state": str(uuid.uuid4())}
        )
        return Response(302, b"", {"Location": f"{req.query['redirect_uri']}?{query}"})

    def _tokens_for(self, email: str, nonce: str | None, scope: str) -> dict:
        granted = " ".join(x for x in scope.split() if x not in ("openid", "profile", "offline_access"))
        user = self.users[email]
        access, refresh = "eyJ0eXAi." + secrets.token_urlsafe(32), "0.AR" + secrets.token_urlsafe(32)
        self.access_tokens[access] = (email, time.time() + 3600)
        self.refresh_tokens[refresh] = email
        now = int(time.time())
        claims = {
            "iss": f"{self.base_url}/{TENANT}/v2.0",
            "sub": user.oid,
            "aud": "baton-test-client",
            "exp": now + 3600,
            "iat": now,
            "nbf": now,
            "tid": TENANT,
            "oid": user.oid,
            "preferred_username": email,
            "name": email,
        }
        if nonce:
            claims["nonce"] = nonce
        id_token = f"{_b64({'typ': 'JWT', 'alg': 'none'})}.{_b64(claims)}.sig"
        return {
            "token_type": "Bearer",
            "scope": granted,
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": id_token,
            "client_info": _b64({"uid": user.oid, "utid": TENANT}),
        }

    def _token(self, req: Request) -> Response:
        form = req.form()
        if self.client_secret is not None and form.get("client_secret") != self.client_secret:
            description = "AADSTS7000215: Invalid client secret provided."
            return json_response(401, {"error": "invalid_client", "error_description": description})
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                return json_response(
                    400, {"error": "invalid_grant", "error_description": "AADSTS70000: bad code"}
                )
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if (
                grant["challenge"]
                and base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant["challenge"]
            ):
                return json_response(
                    400, {"error": "invalid_grant", "error_description": "AADSTS501481: verifier"}
                )
            return json_response(200, self._tokens_for(grant["email"], grant["nonce"], form.get("scope", "")))
        if form.get("grant_type") == "refresh_token":
            email = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if email is None:
                return json_response(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_codes": [700082],
                        "error_description": "AADSTS700082: The refresh token has expired due to "
                        "inactivity or was revoked.",
                    },
                )
            return json_response(200, self._tokens_for(email, None, form.get("scope", "")))
        return json_response(400, {"error": "unsupported_grant_type"})

    # -- graph plumbing
    def _user(self, req: Request) -> FakeMsUser | None:
        auth = req.header("authorization")
        owner = self.access_tokens.get(auth[7:] if auth.startswith("Bearer ") else "")
        if owner is None or owner[1] < time.time():
            return None
        return self.users[owner[0]]

    def _auth_error(self) -> Response:
        return _error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")

    def _cal(self, req: Request):
        user = self._user(req)
        if user is None:
            return None, None, self._auth_error()
        cal = user.calendars.get(req.match.group(1))
        if cal is None:
            return (
                user,
                None,
                _error(404, "ErrorItemNotFound", "The specified object was not found in the store."),
            )
        return user, cal, None

    def _page_size(self, req: Request, default: int = 10) -> int:
        for part in req.header("prefer").split(","):
            if part.strip().startswith("odata.maxpagesize="):
                return int(part.strip().split("=")[1])
        return default

    @staticmethod
    def _public(event: dict) -> dict:
        return {k: v for k, v in event.items() if not k.startswith("_")}

    @staticmethod
    def _overlaps(event: dict, lo: dt.datetime, hi: dt.datetime) -> bool:
        return _parse_graph(event["end"]) > lo and _parse_graph(event["start"]) < hi

    # -- graph: reading
    def _me(self, req: Request) -> Response:
        user = self._user(req)
        if user is None:
            return self._auth_error()
        return json_response(200, {"id": user.oid, "mail": user.email, "userPrincipalName": user.email})

    def _calendars(self, req: Request) -> Response:
        user = self._user(req)
        if user is None:
            return self._auth_error()
        items = [
            {
                "id": c.id,
                "name": c.name,
                "isDefaultCalendar": c.is_default,
                "canEdit": c.can_edit,
                "allowedOnlineMeetingProviders": list(c.online_providers),
                "defaultOnlineMeetingProvider": c.online_providers[0] if c.online_providers else "none",
            }
            for c in user.calendars.values()
        ]
        offset = int(req.query.get("$skip", 0))
        size = self._page_size(req, 1)
        page = {"value": items[offset : offset + size]}
        if offset + size < len(items):
            page["@odata.nextLink"] = f"{self.graph}/me/calendars?$skip={offset + size}"
        return json_response(200, page)

    def _calendar_view(self, req: Request) -> Response:
        user, cal, error = self._cal(req)
        if error:
            return error
        lo, hi = _parse_param(req.query["startDateTime"]), _parse_param(req.query["endDateTime"])
        # $select: only the named properties (and the id), as Graph answers
        named = set(req.query["$select"].split(",")) | {"id"} if req.query.get("$select") else None
        with self.lock:
            items = [
                {k: v for k, v in self._public(e).items() if named is None or k in named}
                for e in cal.events.values()
                if not e.get("_deleted") and not e.get("isCancelled") and self._overlaps(e, lo, hi)
            ]
        return json_response(200, {"value": items})

    def _get(self, req: Request) -> Response:
        user, cal, error = self._cal(req)
        if error:
            return error
        with self.lock:
            event = cal.events.get(req.match.group(2))
            # a deleted event goes to Deleted Items with a new id: not found in the calendar under its own
            if event is None or event.get("_deleted"):
                return _error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            named = set(req.query["$select"].split(",")) | {"id"} if req.query.get("$select") else None
            return json_response(
                200, {k: v for k, v in self._public(event).items() if named is None or k in named}
            )

    def _delta(self, req: Request) -> Response:
        user, cal, error = self._cal(req)
        if error:
            return error
        q = req.query
        if "$skiptoken" in q:
            state = _unb64(q["$skiptoken"])
        elif "$deltatoken" in q:
            state = _unb64(q["$deltatoken"])
            if state["epoch"] != cal.epoch:
                return _error(410, "SyncStateNotFound", "The sync state generation is not found.")
            state = {**state, "since": state["as_of"], "as_of": self._current_seq(cal), "offset": 0}
        else:
            if "startDateTime" not in q or "endDateTime" not in q:
                return _error(400, "ErrorInvalidParameter", "startDateTime and endDateTime are required.")
            state = {
                "lo": q["startDateTime"],
                "hi": q["endDateTime"],
                "as_of": self._current_seq(cal),
                "offset": 0,
                "epoch": cal.epoch,
            }
        lo, hi = _parse_param(state["lo"]), _parse_param(state["hi"])
        with self.lock:
            events = sorted(cal.events.values(), key=lambda e: e["id"])
        items = []
        for event in events:
            if event["_seq"] > state["as_of"]:
                continue
            if "since" in state:
                if event["_seq"] <= state["since"]:
                    continue
                if event.get("_deleted") or not self._overlaps(event, lo, hi):
                    items.append(
                        {
                            "@odata.type": "#microsoft.graph.event",
                            "id": event["id"],
                            "@removed": {"reason": "deleted"},
                        }
                    )
                else:
                    items.append(self._public(event))
            elif not event.get("_deleted") and self._overlaps(event, lo, hi):
                items.append(self._public(event))
        size = min(self._page_size(req), self.page_size_cap)
        chunk = items[state["offset"] : state["offset"] + size]
        base = f"{self.graph}/me/calendars/{cal.id}/calendarView/delta"
        page = {"@odata.context": f"{self.graph}/$metadata#Collection(event)", "value": chunk}
        if state["offset"] + size < len(items):
            page["@odata.nextLink"] = f"{base}?$skiptoken={_b64({**state, 'offset': state['offset'] + size})}"
        else:
            token = {"lo": state["lo"], "hi": state["hi"], "as_of": state["as_of"], "epoch": cal.epoch}
            page["@odata.deltaLink"] = f"{base}?$deltatoken={_b64(token)}"
        return json_response(200, page)

    def _current_seq(self, cal: FakeMsCalendar) -> int:
        with self.lock:
            return max((e["_seq"] for e in cal.events.values()), default=0)

    # -- graph: writing
    def _create(self, req: Request) -> Response:
        user, cal, error = self._cal(req)
        if error:
            return error
        body = req.json()
        with self.lock:
            txn = body.get("transactionId")
            if txn and txn in self.transactions and self.transactions[txn] in cal.events:
                return json_response(201, self._public(cal.events[self.transactions[txn]]))
            if body.get("isOnlineMeeting") and body.get("onlineMeetingProvider") not in cal.online_providers:
                return _error(400, "ErrorInvalidRequest", "The online meeting provider is not allowed.")
            event_id = "AAMkAGI" + secrets.token_hex(12)
            event = {
                **body,
                "id": event_id,
                "isCancelled": False,
                "showAs": "busy",
                "type": "singleInstance",
                "isAllDay": False,
                "organizer": {"emailAddress": {"address": user.email}},
                "_seq": next(self.seq),
            }
            if body.get("isOnlineMeeting"):
                _go_online(event)
            cal.events[event_id] = event
            if txn:
                self.transactions[txn] = event_id
        if body.get("attendees"):
            self.invitations.append(
                {
                    "action": "created",
                    "event_id": event_id,
                    "to": [a["emailAddress"]["address"] for a in body["attendees"]],
                }
            )
        self._notify(user, cal, event_id, "created")
        return json_response(201, self._public(event))

    def _find(self, req: Request):
        user = self._user(req)
        if user is None:
            return None, None, None, self._auth_error()
        for cal in user.calendars.values():
            event = cal.events.get(req.match.group(1))
            if event is not None and not event.get("_deleted"):
                return user, cal, event, None
        return (
            user,
            None,
            None,
            _error(404, "ErrorItemNotFound", "The specified object was not found in the store."),
        )

    def _patch(self, req: Request) -> Response:
        user, cal, event, error = self._find(req)
        if error:
            return error
        body = req.json()
        if body.get("isOnlineMeeting") and body.get("onlineMeetingProvider") not in cal.online_providers:
            return _error(400, "ErrorInvalidRequest", "The online meeting provider is not allowed.")
        with self.lock:
            blob = event.get("_blob")
            event = {**event, **body, "id": event["id"], "_seq": next(self.seq)}
            if blob and "body" in body and blob not in (body["body"] or {}).get("content", ""):
                # Graph: "inadvertently removing the meeting blob from the body would disable meeting online"
                event.update(isOnlineMeeting=False, onlineMeeting=None, _blob="")
            if body.get("isOnlineMeeting") and not event.get("onlineMeeting"):  # made an online meeting
                _go_online(event)
            cal.events[event["id"]] = event
        if event.get("attendees"):
            self.invitations.append(
                {
                    "action": "updated",
                    "event_id": event["id"],
                    "to": [a["emailAddress"]["address"] for a in event["attendees"]],
                }
            )
        self._notify(user, cal, event["id"], "updated")
        return json_response(200, self._public(event))

    def _cancel(self, req: Request) -> Response:
        user, cal, event, error = self._find(req)
        if error:
            return error
        if not event.get("attendees"):
            return _error(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. You can't cancel a "
                "meeting that has no attendees; delete it instead.",
            )
        with self.lock:
            cal.events[event["id"]] = {**event, "_deleted": True, "_seq": next(self.seq)}
        self.invitations.append(
            {
                "action": "cancelled",
                "event_id": event["id"],
                "to": [a["emailAddress"]["address"] for a in event["attendees"]],
            }
        )
        self._notify(user, cal, event["id"], "deleted")
        return Response(202)

    def _delete(self, req: Request) -> Response:
        user, cal, event, error = self._find(req)
        if error:
            return error
        with self.lock:
            cal.events[event["id"]] = {**event, "_deleted": True, "_seq": next(self.seq)}
        self._notify(user, cal, event["id"], "deleted")
        return Response(204)

    # -- subscriptions
    def _subscribe(self, req: Request) -> Response:
        user = self._user(req)
        if user is None:
            return self._auth_error()
        body = req.json()
        expires = _parse_param(body["expirationDateTime"])
        if expires > dt.datetime.now(dt.UTC) + MAX_SUBSCRIPTION:
            return _error(
                400, "InvalidRequest", "Subscription expiration can only be 4230 minutes in the future."
            )
        if len(body.get("clientState", "")) > 128:
            return _error(400, "InvalidRequest", "clientState is longer than 128 characters.")
        cal_id = body["resource"].split("/")[2]
        if cal_id not in user.calendars:
            return _error(404, "ResourceNotFound", "Resource not found for the segment 'calendars'.")
        for url in {body["notificationUrl"], body.get("lifecycleNotificationUrl") or body["notificationUrl"]}:
            refused = self._validate_endpoint(url)
            if refused is not None:
                return refused
        sub = {
            "id": str(uuid.uuid4()),
            "resource": body["resource"],
            "changeType": body["changeType"],
            "notificationUrl": body["notificationUrl"],
            "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
            "expirationDateTime": expires.isoformat().replace("+00:00", "Z"),
            "clientState": body.get("clientState"),
            "_user": user.email,
            "_calendar": cal_id,
        }
        self.subscriptions[sub["id"]] = sub
        return json_response(
            201, {k: v for k, v in sub.items() if not k.startswith("_") and k != "clientState"}
        )

    def _renew(self, req: Request) -> Response:
        sub = self.subscriptions.get(req.match.group(1))
        if self._user(req) is None:
            return self._auth_error()
        if sub is None:
            return _error(404, "ResourceNotFound", "The object was not found.")
        # Graph updates the expiry and/or notificationUrl (validated as at creation), not the lifecycle URL
        body = req.json()
        expires = _parse_param(body.get("expirationDateTime") or sub["expirationDateTime"])
        if expires > dt.datetime.now(dt.UTC) + MAX_SUBSCRIPTION:
            return _error(
                400, "InvalidRequest", "Subscription expiration can only be 4230 minutes in the future."
            )
        if body.get("notificationUrl") and body["notificationUrl"] != sub["notificationUrl"]:
            refused = self._validate_endpoint(body["notificationUrl"])
            if refused is not None:
                return refused
            sub["notificationUrl"] = body["notificationUrl"]
        sub["expirationDateTime"] = expires.isoformat().replace("+00:00", "Z")
        return json_response(
            200, {k: v for k, v in sub.items() if not k.startswith("_") and k != "clientState"}
        )

    @staticmethod
    def _validate_endpoint(url: str) -> Response | None:
        """Graph's validationToken handshake with a notification endpoint: None when it answered as it
        must (200, the token echoed as text/plain), else Graph's 400."""
        token = "Validation: Testing client application reachability for subscription Request-Id: "
        token += str(uuid.uuid4())
        try:
            answer = requests.post(
                f"{url}?validationToken={quote(token)}",
                data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=10,
            )
        except requests.RequestException:
            return _error(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Notification endpoint "
                "must respond with 200 OK to validation request.",
            )
        if (
            answer.status_code != 200
            or answer.text != token
            or not answer.headers.get("Content-Type", "").startswith("text/plain")
        ):
            return _error(
                400,
                "InvalidRequest",
                "Subscription validation request failed. Response must exactly "
                "match validationToken query parameter.",
            )
        return None

    def _unsubscribe(self, req: Request) -> Response:
        if self._user(req) is None:
            return self._auth_error()
        if self.subscriptions.pop(req.match.group(1), None) is None:
            return _error(404, "ResourceNotFound", "The object was not found.")
        return Response(204)

    def _notify(self, user: FakeMsUser, cal: FakeMsCalendar, event_id: str, change: str) -> None:
        for sub in list(self.subscriptions.values()):
            if sub["_calendar"] != cal.id:
                continue
            payload = {
                "value": [
                    {
                        "subscriptionId": sub["id"],
                        "subscriptionExpirationDateTime": sub["expirationDateTime"],
                        "changeType": change,
                        "resource": f"Users/{user.oid}/Events/{event_id}",
                        "clientState": sub["clientState"],
                        "tenantId": TENANT,
                        "resourceData": {
                            "@odata.type": "#Microsoft.Graph.Event",
                            "@odata.id": f"Users/{user.oid}/Events/{event_id}",
                            "id": event_id,
                        },
                    }
                ]
            }
            self.post_notification(sub["notificationUrl"], payload)

    def post_notification(self, url: str, payload: dict, *, wait: bool = True) -> dict:
        record = {"payload": payload, "status": None, "seconds": None}
        self.notifications.append(record)

        def post():
            started = time.monotonic()
            try:
                record["status"] = requests.post(url, json=payload, timeout=10).status_code
            except requests.RequestException as exc:
                record["status"] = repr(exc)
            record["seconds"] = time.monotonic() - started

        if wait:
            post()
        else:
            threading.Thread(target=post, daemon=True).start()
        return record
