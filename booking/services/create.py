"""Creating a booking: one durable transaction, rep locks taken late, availability re-checked inside."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone as dj_timezone

from booking import outbox
from booking.errors import InvalidInput, SlotUnavailable, TryAgain
from booking.models import Booking, MeetingType
from booking.presenters import booking_body, manage_url
from booking.selectors import alternatives, token_hash
from booking.services import idempotency, locking
from booking.services.routing import (
    blocked_range,
    choose_hosts,
    host_dicts,
    host_rows,
    invalid_start,
)
from routing import sqlwrites
from routing.core import Interval, NoHostAvailable
from routing.models import Pool
from routing.selectors import PoolCalendars, load_pool_bookings, load_pool_calendars
from routing.services import assigned_entries


@dataclass(frozen=True)
class CreateResult:
    status_code: int  # 201 (created) or the replayed status
    body: dict[str, Any]
    replayed: bool = False


def _check(start: datetime, zone: str) -> ZoneInfo:
    if start.tzinfo is None or start.utcoffset() is None:
        raise InvalidInput({"start": ["Give the time zone offset, e.g. 2026-03-10T09:00:00+01:00."]})
    try:
        return ZoneInfo(zone)
    except (ValueError, KeyError):
        raise InvalidInput({"timezone": [f"{zone!r} is not a known IANA time zone."]}) from None


def booking_create(
    *,
    meeting_type: MeetingType,
    start: datetime,
    name: str,
    email: str,
    timezone: str,
    answers: dict | None = None,
    note: str = "",
    utm: dict | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    route=None,
    visitor: str = "",
) -> CreateResult:
    """Book ``meeting_type`` at ``start`` for a prospect; returns the 201 response body.

    Before the transaction (``_plan``): the pool's members and what the locks do not guard (hours, synced
    busy time, calendar health), and the live check of the host the pool would choose now. Inside ONE
    durable transaction: claim the idempotency key (if any, where no key's turn holds it), lock every
    candidate rep (late, sorted), load the host rows and the ledger, assign (routing core; a host not asked
    before is asked live here), insert Booking and BookingHost rows, the decision record, ledger entries,
    outbox rows and the key's stored response (on PostgreSQL in one round trip with the COMMIT, which
    releases the locks: ``sqlrows.batch``). Raises ``InvalidInput`` (start not bookable),
    ``SlotUnavailable`` (taken; with alternatives), ``TryAgain`` (lock timeout) or ``IdempotencyConflict``;
    a same-key same-body request replays the first response. On PostgreSQL requests with one key take turns
    from before the planning (``idempotency.turn``: then the durable transaction opens first, and the
    planning runs inside it, still before the rep locks), so a duplicate that waited replays without reading
    the pool or asking a calendar provider; the key's row then needs no claim of its own and goes in with
    the booking's rows (``idempotency.response_writes``).
    """
    now = now or dj_timezone.now()
    zone = _check(start, timezone)
    start = start.astimezone(UTC)
    if start.second or start.microsecond:
        raise InvalidInput({"start": ["This start is not on the booking grid."]})
    answers, utm = answers or {}, utm or {}
    key = idempotency.check_key(idempotency_key)
    # what a replay must match: only a request with a key is ever compared (``turn`` takes the hash and
    # ignores it without a key)
    request_hash = (
        _fingerprint(
            meeting_type,
            start=start,
            name=name,
            email=email,
            timezone=timezone,
            answers=answers,
            note=note,
            utm=utm,
            route=route,
            visitor=visitor,
        )
        if key
        else ""
    )
    stage = "plan"
    try:
        with idempotency.turn(key, request_hash, now=now) as turn:
            if turn.stored:  # the response of an earlier request with the key (or of one we waited for)
                return CreateResult(turn.stored[0], turn.stored[1], replayed=True)
            plan = _plan(meeting_type, start=start, now=now, route=route)
            stage = "book"
            # the key's turn opened the durable transaction: book inside it
            with transaction.atomic(savepoint=False) if turn.opened else transaction.atomic(durable=True):
                # under the key's turn its row goes in with the booking's; elsewhere it is claimed first
                key_row = idempotency.begin(key, request_hash, now=now) if key and not turn.opened else None
                body = _book(
                    meeting_type,
                    plan,
                    start=start,
                    name=name,
                    email=email,
                    timezone=timezone,
                    answers=answers,
                    note=note,
                    utm=utm,
                    now=now,
                    route=route,
                    visitor=visitor,
                    claim=idempotency.Claim(key, request_hash, key_row) if key else None,
                )
    except SlotUnavailable:
        if key and stage == "plan":  # the slot may be taken by a request with this key, committed meanwhile
            stored = idempotency.replay(key, request_hash, now=now)
            if stored:
                return CreateResult(stored[0], stored[1], replayed=True)
        raise SlotUnavailable(
            alternatives=alternatives(meeting_type, after=start, zone=zone, now=now, route=route)
        ) from None
    except IntegrityError as exc:
        # the key's row refused: claimed first (``begin``) or, under the key's turn, with the booking's rows
        # (a live row whose response could not be read: sealed under another SECRET_KEY)
        if key and idempotency.is_taken(exc):
            stored = idempotency.replay(key, request_hash, now=now)
            if stored:
                return CreateResult(stored[0], stored[1], replayed=True)
            raise TryAgain() from None
        if locking.is_overlap(exc):  # the exclusion constraint: taken meanwhile, as above
            raise SlotUnavailable(
                alternatives=alternatives(meeting_type, after=start, zone=zone, now=now, route=route)
            ) from None
        raise
    except DatabaseError as exc:  # a lock timeout (the reps', or the key's turn), a deadlock, …
        if locking.is_contention(exc):
            raise TryAgain() from None
        raise
    return CreateResult(201, body)


def _fingerprint(
    meeting_type: MeetingType,
    *,
    start: datetime,
    name: str,
    email: str,
    timezone: str,
    answers: dict,
    note: str,
    utm: dict,
    route=None,
    visitor: str = "",
) -> str:
    """The hash of a keyed request that a replay must match: its fields as validated, ``start`` in UTC."""
    fields = {
        "meeting_type": meeting_type.slug,
        "start": start,
        "name": name,
        "email": email,
        "timezone": timezone,
        "answers": answers,
        "note": note,
        "utm": utm,
    }
    if visitor:
        fields["visitor"] = visitor
    return idempotency.fingerprint({**fields, "route": route.record()} if route else fields)


def booking_replay(
    *,
    slug: str,
    idempotency_key: str | None,
    requests: Callable[[MeetingType], Iterable[dict[str, Any]]],
    now: datetime | None = None,
) -> CreateResult | None:
    """The stored response of the booking made with ``idempotency_key`` on meeting type ``slug`` (active
    or not) when the request is that booking's, for a retry that would not reach ``booking_create`` any
    more: an admin deactivated the meeting type meanwhile (404 now) or changed its questions (400 now).
    ``requests(meeting_type)`` gives the request as ``booking_create``'s keyword arguments, validated each
    way it may have been when it was first sent. None when the key is malformed, nothing is stored for it,
    or not for the request: the caller answers as it would have (no ``IdempotencyConflict``: a different
    request is refused as it was). Only such failing requests read the stored row here: a booking's own
    requests go to ``booking_create``, whose key's turn replays in the round trip that takes the key's
    lock."""
    now = now or dj_timezone.now()
    try:
        key = idempotency.check_key(idempotency_key)
    except InvalidInput:
        return None

    def hashes() -> Iterator[str]:
        meeting_type = MeetingType.objects.select_related("pool").filter(slug=slug).first()
        for request in requests(meeting_type) if meeting_type else ():
            start = request.get("start")
            if start is None or start.tzinfo is None or start.utcoffset() is None:
                continue
            yield _fingerprint(
                meeting_type,
                start=start.astimezone(UTC),
                name=request["name"],
                email=request["email"],
                timezone=request["timezone"],
                answers=request.get("answers") or {},
                note=request.get("note") or "",
                utm=request.get("utm") or {},
                route=request.get("route"),
                visitor=request.get("visitor") or "",
            )

    replayed = idempotency.replay_as_first_sent(key, hashes, now=now)
    return CreateResult(replayed[0], replayed[1], replayed=True) if replayed else None


@dataclass(frozen=True)
class _Plan:
    """What a booking reads before its transaction: the pool's members and phase one of their time (which
    the rep locks do not guard), and the live calendar check of the host the pool would choose now."""

    pool: Pool
    calendars: PoolCalendars
    probe: tuple[datetime, datetime]  # the booking's buffered range
    live_free: frozenset[int] = frozenset()  # asked live just now: free
    live_busy: tuple[int, ...] = ()  # asked live just now: busy


def _plan(meeting_type: MeetingType, *, start: datetime, now: datetime, route=None) -> _Plan:
    """Read, before the rep locks, what needs no lock (outside the booking transaction, except in an
    Idempotency-Key's turn on PostgreSQL, whose transaction holds only the key's lock meanwhile). When a
    member has a Google/Microsoft calendar to ask, the pool is assigned once here and the chosen host(s)
    asked live: a provider's answer takes up to ``BOOKING_LIVE_CHECK_TIMEOUT_MS``, and under the locks it
    would hold every booking of the pool (on SQLite, every write) that long. Inside the transaction the
    same host is not asked again; a host chosen there that was not asked here (the state changed meanwhile)
    is asked under the locks.

    Its lock waits: in a key's turn the transaction's ``lock_timeout`` is set first (``idempotency.turn``), so
    a table lock held elsewhere (a migration's ``ALTER TABLE``) is ``TryAgain`` after the timeout. Without a
    key (autocommit: each read an implicit transaction of its own) such a wait is not bounded: the timeout
    would need a round trip of its own here, or to ride in the first read's batch, which
    ``load_pool_calendars`` does not take statements for."""
    pool = route.pool if route else meeting_type.pool
    end = start + timedelta(minutes=meeting_type.duration_minutes)
    probe = blocked_range(meeting_type, start)
    calendars = load_pool_calendars(pool, meeting_type, now=now, window=Interval(start, end), probe=probe)
    rep_ids = calendars.rep_ids
    if rep_ids and calendars.booked >= set(rep_ids):  # taken already: no need to queue for the locks
        raise SlotUnavailable()
    plan = _Plan(pool, calendars, probe)
    if not calendars.live:
        return plan
    state = load_pool_bookings(calendars, now=now, taken=probe)
    if state is None:
        raise SlotUnavailable()
    if route:
        state = replace(state, spec=route.restrict(state.spec))
    try:
        tentative = choose_hosts(state, meeting_type, start=start, now=now)
    except NoHostAvailable as exc:  # the transaction decides again, and says why
        return replace(plan, live_busy=tuple(exc.record.get("live_busy", ())))
    hosts = frozenset(h.rep_id for h in tentative.hosts)
    return replace(plan, live_free=hosts, live_busy=tuple(tentative.record["live_busy"]))


def _book(
    meeting_type: MeetingType,
    plan: _Plan,
    *,
    start: datetime,
    name: str,
    email: str,
    timezone: str,
    answers: dict,
    note: str,
    utm: dict,
    now: datetime,
    route=None,
    visitor: str = "",
    claim: idempotency.Claim | None = None,
) -> dict:
    """Lock, re-check, assign and write the booking (inside the transaction). ``claim``: the request's
    Idempotency-Key, whose row stores the response."""
    pool, calendars = plan.pool, plan.calendars
    end = start + timedelta(minutes=meeting_type.duration_minutes)
    token = secrets.token_urlsafe(32)  # what needs no lock is done before the locks
    sealed = outbox.seal({"manage_url": manage_url(token)})
    state, key = locking.load_locked(calendars, reserve=Booking, now=now, taken=plan.probe)
    if state is None:  # taken while we waited for the locks
        raise SlotUnavailable()
    if route:  # leads.tokens.Route: the routed pool, restricted to its candidates
        state = replace(state, spec=route.restrict(state.spec))
    try:
        assignment = choose_hosts(
            state, meeting_type, start=start, now=now, live_free=plan.live_free, live_busy=plan.live_busy
        )
    except NoHostAvailable as exc:
        message = invalid_start(exc.record)
        raise (InvalidInput({"start": [message]}) if message else SlotUnavailable()) from None
    booking = Booking(
        id=key,  # reserved with the locks on PostgreSQL; None: the insert gives it (SQLite)
        meeting_type=meeting_type,
        pool=pool,
        start=start,
        end=end,
        status=Booking.Status.CONFIRMED,
        prospect_name=name,
        prospect_email=email,
        prospect_timezone=timezone,
        answers=answers,
        note=note,
        utm=utm,
        visitor_id=visitor or "",
        decision={**assignment.record, "route": route.record()} if route else assignment.record,
        manage_token_hash=token_hash(token),
        sequence=0,
        created_at=now,  # the decision's instant, as its host rows' ``assigned_at`` (the replay reads it)
    )
    hosts = host_rows(booking, assignment.hosts, meeting_type, now=now)
    entries = assigned_entries(
        pool_id=pool.pk,
        booking=booking,
        rep_ids=[h.rep_id for h in hosts],
        reason=f"{pool.strategy} assignment",
    )
    described = host_dicts(hosts, state.members)
    # the booking, its host rows (the exclusion constraint's table), ledger entries, outbox rows and the
    # Idempotency-Key's stored response in one round trip on PostgreSQL, where the booking's key came with
    # the locks (``sqlwrites.insert_many``: the hot path, without the ORM's compiler); on SQLite the rest
    # waits for the key the booking's insert gives
    if key is None:
        sqlwrites.insert_many([[booking], hosts, entries])
    messages = outbox.messages(
        "booking.confirmed", booking, context={"hosts": described}, sealed=sealed, now=now
    )
    body = booking_body(booking, described, token=token)
    first, key_rows, then = [], [], []
    if claim:  # the Idempotency-Key's row stores the response
        first, key_rows, then = idempotency.response_writes(
            claim, booking_id=booking.pk, status_code=201, body=body, now=now
        )
    if route and route.lead_id is not None:  # the lead's link to its booking
        then.append(route.attach_statement(booking))
    if route and route.charged is not None:  # the lead's hand-routing charge goes with its booking
        then.append(route.charge_statement(booking))
    outbox.deliver_after_commit(messages)  # before the writes: a failed round trip discards it
    # the last statements of the booking's transaction: its COMMIT may go with them (``sqlrows.batch``)
    sqlwrites.insert_many(
        [messages, key_rows] if key is None else [[booking], hosts, entries, messages, key_rows],
        first=first,
        then=then,
        commit=True,
    )
    return body
