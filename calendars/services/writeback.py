"""Writing bookings into hosts' calendars (create / update / cancel), idempotently.

``booking_events_sync`` reconciles: for every host of the booking it makes the host's "receives
bookings" calendar match the booking — an event while the booking is confirmed and the host active, no
event otherwise. It is safe to call any number of times (the booking outbox retries it until it
succeeds): finished hosts are skipped by ``written_sequence``, and provider-side idempotency keys (Google
client event ids, Graph transactionId) stop a retried create from duplicating an event whose id Baton
did not get to store. A create is recorded (``State.CREATING``, with its calendar and key) before it is
sent: one whose answer never came may have made the event all the same, and a booking that no longer
wants it (cancelled, reassigned, moved to another calendar) has it cancelled by that key.

Group bookings: every host gets an event in their own calendar. The lead host's event (the first active
host) invites the prospect and carries the video link (Google Meet / Teams); co-hosts' events invite nobody
and show the lead's link. When the lead has no Google/Microsoft calendar, the booking email sends the
invitation (see ``selectors.invitation_sent_by_provider``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime

from django.utils import timezone

from booking.models import HOST_ORDER, Booking, BookingHost
from booking.presenters import answer_rows
from calendars.errors import CalendarError, CalendarWriteFailed, EventGone, GrantRevoked, ProviderUnavailable
from calendars.models import BookingEvent, Calendar, CalendarConnection
from calendars.providers.base import EventDraft
from calendars.selectors import receiving_calendar
from calendars.services.connections import connection_mark_disconnected, provider_for

logger = logging.getLogger("calendars")
State = BookingEvent.State
Status = CalendarConnection.Status


RUNS = 3  # a booking changing faster than its events can be written is left to its next message


def booking_events_sync(*, booking_id: int) -> dict[int, str]:
    """Bring every host's calendar event in line with the booking. Returns {rep id: what happened}.
    Raises ``CalendarWriteFailed`` (after trying every host) if any host's write failed.

    The messages of one booking's changes are delivered by different workers, and a write takes as long as
    the provider: a write made from what the booking was (confirmed, at 11:00) can land after the write of
    what it became (cancelled; moved to 13:00) found nothing to do or wrote the newer state, leaving an event
    of a cancelled booking or the older time in the host's calendar for good. So once written, the booking
    is read again, and if it changed meanwhile (status, SEQUENCE, hosts) the hosts are brought in line
    with it again: whichever write finishes last writes the latest state."""
    for _ in range(RUNS):
        outcome, written = _sync_once(booking_id)
        if _state(booking_id) == written:
            break
    return outcome


def _state(booking_id: int) -> tuple:
    status, sequence = Booking.objects.filter(pk=booking_id).values_list("status", "sequence").get()
    hosts = BookingHost.objects.filter(booking_id=booking_id, active=True).values_list("rep_id", flat=True)
    return status, sequence, tuple(sorted(hosts))


def _sync_once(booking_id: int) -> tuple[dict[int, str], tuple]:
    """One pass over the booking's hosts; returns the outcome and the state of the booking it wrote."""
    booking = Booking.objects.select_related("meeting_type").get(pk=booking_id)
    hosts = list(BookingHost.objects.filter(booking=booking).select_related("rep").order_by(*HOST_ORDER))
    active = [h for h in hosts if h.active]
    lead = active[0] if active else None
    written = (booking.status, booking.sequence, tuple(sorted(h.rep_id for h in active)))
    outcome, errors = {}, {}
    # the lead first: co-hosts' events show the lead's video link
    for host in sorted(hosts, key=lambda h: h is not lead):
        try:
            outcome[host.rep_id] = _host_sync(booking, host, is_lead=host is lead, lead=lead)
        except CalendarError as exc:
            logger.warning(
                "calendar write for booking %s, rep %s failed: %s", booking.pk, host.rep_id, exc.message
            )
            outcome[host.rep_id] = f"failed: {exc.code}"
            errors[host.rep_id] = exc
    if errors:
        raise _write_failed(booking, errors, outcome)
    return outcome, written


HOST_ERROR_CHARS = 300  # of one host's error in ``CalendarWriteFailed``'s message
WRITE_ERROR_CHARS = 1500  # of the whole message (the outbox row's ``last_error`` keeps 2,000)


def _write_failed(booking: Booking, errors: dict[int, CalendarError], outcome: dict) -> CalendarWriteFailed:
    """The failure of a pass, for the outbox row an admin reads: each failing host's provider and error (the
    provider's words: throttled / unavailable / timed out, the HTTP status, the wait it asked for), bounded
    in length; ``retry_after`` the longest wait any of them asked for."""
    providers = dict(
        BookingEvent.objects.filter(booking=booking, rep_id__in=list(errors)).values_list(
            "rep_id", "provider"
        )
    )
    parts = []
    for rep_id, exc in errors.items():
        where = f"rep {rep_id}" + (f" ({providers[rep_id]})" if providers.get(rep_id) else "")
        parts.append(f"{where}: {exc.message[:HOST_ERROR_CHARS]}")
    message = f"calendar write failed for reps {list(errors)}: " + "; ".join(parts)
    if len(message) > WRITE_ERROR_CHARS:
        message = message[: WRITE_ERROR_CHARS - 1] + "…"
    waits = [w for exc in errors.values() if (w := getattr(exc, "retry_after", None)) is not None]
    return CalendarWriteFailed(message, outcome=outcome, retry_after=max(waits, default=None))


def _host_sync(booking: Booking, host: BookingHost, *, is_lead: bool, lead: BookingHost | None) -> str:
    if booking.status in (Booking.Status.COMPLETED, Booking.Status.NO_SHOW):
        return "unchanged"  # history: leave calendars alone
    wanted = booking.status == Booking.Status.CONFIRMED and host.active
    target = receiving_calendar(host.rep_id) if wanted else None
    event = (
        BookingEvent.objects.filter(booking=booking, rep=host.rep)
        .select_related("calendar__connection")
        .first()
    )

    if (
        event is not None
        and event.state != State.CANCELLED  # written, or maybe written (a create never answered)
        and (not wanted or event.calendar_id != getattr(target, "pk", None))
    ):
        held = event.calendar
        if held is not None and held.connection.status == Status.DISCONNECTED:
            # the grant is gone: the event stays known (its id) and is removed or moved once the rep
            # reconnects (``connection_events_resync``); forgotten now, it stayed in their calendar for good
            return "pending"
        known = event.external_event_id or event.state == State.CREATING
        if held is None and not wanted and known and event.calendar_external_id:
            # the account was removed from Baton: nothing to cancel it with until the rep connects that
            # calendar again (``_store_calendars`` takes the event back, then ``connection_events_resync``)
            return "pending"
        _cancel(event, booking)
        if not wanted or target is None:
            return "cancelled"
    if not wanted:
        return "nothing"
    if target is None:
        return "no_calendar"
    if event is None:
        event = BookingEvent.objects.create(
            booking=booking,
            rep=host.rep,
            calendar=target,
            provider=target.connection.provider,
            state=State.CANCELLED,  # nothing sent yet
        )
    if event.state == State.ACTIVE and event.written_sequence == booking.sequence:
        return "unchanged"
    draft = _draft(booking, host, event, is_lead=is_lead, lead=lead)
    with _grant_watch(target.connection):
        provider = provider_for(target.connection)
        written = None
        if event.state == State.ACTIVE:
            # an event without a link (a co-host's that is now the lead's) asks the provider for one
            online = _online_provider(target) if draft.video and not event.join_url else ""
            try:
                written = provider.update_event(
                    target.external_id, event.external_event_id, draft, online_provider=online
                )
                action = "updated"
            except EventGone:  # the host deleted it (and the provider purged it): write it anew
                event.generation += 1  # a new provider idempotency key: not a retry of the first create
                draft = _draft(booking, host, event, is_lead=is_lead, lead=lead)
        if written is None:
            online = _online_provider(target) if draft.video else ""
            _create_begun(event, target, draft)
            written = provider.create_event(target.external_id, draft, online_provider=online)
            action = "created"
    event.calendar, event.provider, event.state = target, target.connection.provider, State.ACTIVE
    event.account_email, event.calendar_external_id = target.connection.account_email, target.external_id
    event.external_event_id = written.external_id
    # an update keeps the event's link if the answer leaves it out; a new event has its own (or none: an
    # Outlook calendar without Teams after a Google one must not show the cancelled Meet link)
    link_before, event.join_url = (
        event.join_url,
        written.join_url or (event.join_url if action == "updated" else ""),
    )
    if not written.link_pending:  # a link still being made: written again (an update) on the next try
        event.written_sequence = booking.sequence
    event.host_removed_at = None  # written again: in the host's calendar once more
    event.save()
    if is_lead and event.join_url != link_before:
        # co-hosts' events show the lead's link: any written without this one is written again (they come
        # after the lead in this pass; one that fails is left to the retry)
        BookingEvent.objects.filter(booking=booking, state=State.ACTIVE).exclude(pk=event.pk).update(
            written_sequence=-1
        )
    if written.link_pending:
        raise ProviderUnavailable("the provider is still creating the meeting's video link")
    return action


def connection_events_resync(*, connection_id: int, now: datetime | None = None) -> int:
    """After a rep reconnects an account: bring in line the events Baton wrote into its calendars for bookings
    not yet over (a booking cancelled, moved or reassigned while the grant was revoked left its event
    "pending"). Returns how many bookings were looked at; a failure is left to the booking's next change."""
    now = now or timezone.now()
    booking_ids = (
        BookingEvent.objects.filter(
            calendar__connection_id=connection_id,
            state__in=(State.ACTIVE, State.CREATING),
            booking__end__gt=now,
        )
        .values_list("booking_id", flat=True)
        .distinct()
    )
    ids = list(booking_ids)
    for booking_id in ids:
        try:
            booking_events_sync(booking_id=booking_id)
        except CalendarError as exc:
            logger.warning("calendar resync of booking %s failed: %s", booking_id, exc.message)
    return len(ids)


def _create_begun(event: BookingEvent, target: Calendar, draft: EventDraft) -> None:
    """Record, before it is sent, that a create of the event (under the key of its ``generation``) goes to
    ``target`` for the draft's time: if its answer never comes (a timeout, a killed worker), the provider may
    hold the event all the same, and ``_cancel`` must know where to look for it and by which key. A provider
    that finds it by its time (Graph) looks at the times the creates were sent for, not the booking's: it
    may have moved since. A retry of a create never answered (same calendar, same key) keeps the times the
    earlier ones were sent for: the event, if made, is at one of them."""
    start, end = draft.start, draft.end
    if event.state == State.CREATING:
        start, end = min(start, event.sent_start or start), max(end, event.sent_end or end)
    event.sent_start, event.sent_end = start, end
    event.calendar, event.provider, event.state = target, target.connection.provider, State.CREATING
    event.account_email, event.calendar_external_id = target.connection.account_email, target.external_id
    event.external_event_id = ""  # an event gone at the provider (``EventGone``) is no event to update
    event.save(
        update_fields=[
            "calendar",
            "provider",
            "state",
            "account_email",
            "calendar_external_id",
            "external_event_id",
            "generation",
            "sent_start",
            "sent_end",
            "updated_at",
        ]
    )


def _cancel(event: BookingEvent, booking: Booking) -> None:
    cal = event.calendar
    if cal is not None and cal.connection.status != Status.DISCONNECTED:
        with _grant_watch(cal.connection):
            provider = provider_for(cal.connection)
            if event.state == State.CREATING:  # maybe made: the provider finds it by the key, if it is there
                provider.cancel_unconfirmed(
                    cal.external_id,
                    _key(booking, event.rep_id, event.generation),
                    # where the creates were sent for; a record from before these were kept: the booking's
                    start=event.sent_start or booking.start,
                    end=event.sent_end or booking.end,
                    notify=True,
                )
            elif event.external_event_id:
                provider.cancel_event(cal.external_id, event.external_event_id, notify=True)
    # a calendar that is gone (disconnected and removed) has nothing left to cancel
    event.state = State.CANCELLED
    event.generation += 1
    event.external_event_id = ""
    event.join_url = ""  # the cancelled event's meeting link is no link to show
    event.save(update_fields=["state", "generation", "external_event_id", "join_url", "updated_at"])


@contextmanager
def _grant_watch(connection: CalendarConnection):
    """A revoked grant found while writing disconnects the connection (and withholds the rep) too."""
    try:
        yield
    except GrantRevoked as exc:
        connection_mark_disconnected(connection_id=connection.pk, reason=exc.message)
        raise


def _online_provider(calendar: Calendar) -> str:
    providers = calendar.online_meeting_providers or []
    if calendar.connection.provider == CalendarConnection.Provider.GOOGLE:
        return "hangoutsMeet" if not providers or "hangoutsMeet" in providers else ""
    return "teamsForBusiness" if "teamsForBusiness" in providers else ""


def _key(booking: Booking, rep_id: int, generation: int) -> str:
    return f"b{booking.identity}r{rep_id}g{generation}"


def _draft(booking: Booking, host: BookingHost, event: BookingEvent, *, is_lead: bool, lead) -> EventDraft:
    meeting = booking.meeting_type
    wants_video = meeting.location_kind == meeting.LocationKind.VIDEO and not meeting.location_detail
    location = meeting.location_detail
    if not is_lead and wants_video and lead is not None:
        lead_event = BookingEvent.objects.filter(booking=booking, rep_id=lead.rep_id).first()
        location = lead_event.join_url if lead_event else ""
    lines = [
        f"Booked through Baton: {meeting.title}",
        "",
        f"With: {booking.prospect_name} <{booking.prospect_email}> (time zone {booking.prospect_timezone})",
    ]
    for label, value in answer_rows(meeting.questions, booking.answers):
        lines.append(f"{label}: {value}")
    if booking.note:
        lines += ["", booking.note]
    return EventDraft(
        # the provider's idempotency key: unique beyond this database, so that a booking of the same key in
        # another (a reset one, or another installation writing into the same calendar) never takes this
        # booking's event for its own retry and rewrites it
        key=_key(booking, host.rep_id, event.generation),
        title=f"{meeting.title}: {booking.prospect_name}",
        description="\n".join(lines),
        start=booking.start,
        end=booking.end,
        timezone=host.rep.timezone,
        attendees=((booking.prospect_name, booking.prospect_email),) if is_lead else (),
        location=location,
        video=wants_video and is_lead,
        notify=is_lead,
        booking_id=booking.pk,
    )
