"""When: reps' working hours, date overrides, time off and synced busy intervals (UTC)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from routing.models import Rep
from routing.validators import validate_years

MIDNIGHT = dt.time(0, 0)


def utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, for labels that say "UTC" (an admin form leaves values in ``TIME_ZONE``)."""
    return moment.astimezone(dt.UTC) if moment is not None and moment.tzinfo is not None else moment


def whole_minutes(value: dt.time) -> None:
    """Hours are kept to the minute, as the config file writes them ("HH:MM"): "23:59:59" typed in the admin
    was exported as 23:59 and an unchanged export re-imported moved the rep's end of day."""
    if value is not None and (value.second or value.microsecond):
        raise ValidationError("Give the time in whole minutes (HH:MM); 00:00 as an end means midnight.")


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


# A local range may end at 00:00, meaning midnight at the end of the day.
RANGE_ORDER = Q(end__gt=F("start")) | Q(end=MIDNIGHT)
ENDS_BEFORE = "The end must be after the start (00:00 as an end means midnight)."


def _check_range(start: dt.time | None, end: dt.time | None) -> None:
    """The admin's words for a local range the constraints refuse (before Django's "Constraint … is
    violated", which names no field and nothing to fix)."""
    if start is not None and end is not None and not (end > start or end == MIDNIGHT):
        raise ValidationError({"end": ENDS_BEFORE})


class WorkingHours(models.Model):
    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField(help_text="Local time in the rep's zone", validators=[whole_minutes])
    end = models.TimeField(
        help_text="Local time; 00:00 means midnight at the end of the day", validators=[whole_minutes]
    )

    class Meta:
        ordering = ["rep", "weekday", "start"]
        verbose_name_plural = "working hours"
        constraints = [models.CheckConstraint(condition=RANGE_ORDER, name="workinghours_end_after_start")]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"

    def clean(self) -> None:
        _check_range(self.start, self.end)


class DateOverride(models.Model):
    """Replaces one local date's hours. A row with no start and end makes the date a day off."""

    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="date_overrides")
    date = models.DateField(validators=[validate_years])
    start = models.TimeField(null=True, blank=True, validators=[whole_minutes])
    end = models.TimeField(null=True, blank=True, validators=[whole_minutes])

    class Meta:
        ordering = ["rep", "date", "start"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(start__isnull=True, end__isnull=True)
                    | (Q(start__isnull=False, end__isnull=False) & RANGE_ORDER)
                ),
                name="dateoverride_day_off_or_range",
            )
        ]

    def __str__(self) -> str:
        if self.is_day_off:
            return f"{self.date}: day off"
        return f"{self.date}: {self.start:%H:%M}–{self.end:%H:%M}"

    @property
    def is_day_off(self) -> bool:
        return self.start is None

    def clean(self) -> None:
        if (self.start is None) != (self.end is None):
            missing = "end" if self.end is None else "start"
            raise ValidationError({missing: "Give both a start and an end, or neither for a day off."})
        _check_range(self.start, self.end)


class TimeOff(models.Model):
    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="time_off")
    start = models.DateTimeField(validators=[validate_years])
    end = models.DateTimeField(validators=[validate_years])
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["rep", "start"]
        verbose_name_plural = "time off"
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="timeoff_end_after_start")
        ]

    def __str__(self) -> str:
        start, end = utc(self.start), utc(self.end)  # as the admin's form left them: in TIME_ZONE
        return f"{self.rep.name} off {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"

    def clean(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValidationError({"end": "The end must be after the start."})


class BusyInterval(models.Model):
    class Source(models.TextChoices):
        CALENDAR = "calendar", "Calendar sync"
        MANUAL = "manual", "Manual"
        ICS = "ics", "ICS feed"

    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="busy_intervals")
    start = models.DateTimeField()
    end = models.DateTimeField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    external_id = models.CharField(max_length=1024, blank=True)
    synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When a calendar sync stored it (empty: entered in Baton, or older)"
    )

    class Meta:
        ordering = ["rep", "start"]
        indexes = [models.Index(fields=["rep", "end", "start"], name="busy_rep_end_start")]
        constraints = [models.CheckConstraint(condition=Q(end__gt=F("start")), name="busy_end_after_start")]

    def __str__(self) -> str:
        start, end = utc(self.start), utc(self.end)
        return f"{self.rep.name} busy {start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC ({self.source})"


class BusyHistory(models.Model):
    """A synced busy interval that a later sync removed (event deleted, moved or made free), kept for
    ``BUSY_HISTORY_DAYS`` so the routing simulator can replay a past period with the calendars as they were
    synced then: visible from ``synced_at`` (empty: since ever) until ``removed_at``."""

    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    source = models.CharField(max_length=16, choices=BusyInterval.Source.choices)
    synced_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["rep", "start"]
        verbose_name_plural = "busy history"
        indexes = [models.Index(fields=["rep", "end", "start"], name="busyhistory_rep_end_start")]

    def __str__(self) -> str:
        start, removed = utc(self.start), utc(self.removed_at)
        return f"{self.rep.name} was busy {start:%Y-%m-%d %H:%M} UTC, removed {removed:%Y-%m-%d}"


# --- Calendar connections (provider accounts), their calendars and the events Baton wrote into them.


class CalendarConnection(models.Model):
    """A rep's link to one calendar account: Google, Microsoft 365 or a secret ICS feed URL.

    ``secret_blob`` holds the OAuth tokens / MSAL cache / feed URL, encrypted with MultiFernet
    (``calendars.crypto``). It is never shown: not in ``__str__``, admin pages, logs or API responses.
    Status ``disconnected`` means the grant was revoked or expired: the rep must reconnect and is withheld
    from offering until then. ``error`` means the last sync failed (provider down, slow or refusing);
    the last synced busy times stay in force until the staleness bound.
    ``account_key`` is the provider's lasting id of the account (Microsoft's ``home_account_id``,
    ``oid.tid``): a connect is matched to the account's connection by it, so a changed sign-in name is the
    same account and two accounts sharing an address are two. Empty (Google, whose flow has no id_token; an
    ICS feed) the account is known by ``account_email`` (``connections.connection_create``).
    """

    class Provider(models.TextChoices):
        GOOGLE = "google", "Google Calendar"
        MICROSOFT = "microsoft", "Microsoft 365"
        ICS = "ics", "ICS feed"

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        DISCONNECTED = "disconnected", "Disconnected (reconnect needed)"
        ERROR = "error", "Sync failing"

    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="calendar_connections")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONNECTED, db_index=True)
    account_email = models.CharField(max_length=254, blank=True, help_text="Account, or the feed's host")
    account_key = models.CharField(
        max_length=255,
        blank=True,
        editable=False,
        help_text="The provider's lasting id of the account (Microsoft: home_account_id); empty: known by "
        "its address",
    )
    secret_blob = models.TextField(editable=False, help_text="Encrypted credentials (never displayed)")
    last_sync_at = models.DateTimeField(null=True, blank=True, help_text="Last sync attempt")
    last_success_at = models.DateTimeField(null=True, blank=True, help_text="Last sync that succeeded")
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["rep", "provider", "account_email"]

    def __str__(self) -> str:
        label = self.account_email or self.get_provider_display()
        return f"{self.get_provider_display()}: {label}"

    def __repr__(self) -> str:
        return f"<CalendarConnection {self.pk} {self.provider} rep={self.rep_id} {self.status}>"


class Calendar(models.Model):
    """One calendar of a connection. Blocking calendars feed BusyInterval rows; at most one calendar per
    rep receives bookings (the event is written there, with a video link).

    ``sync_state`` is the provider's cursor: a Google syncToken, a Microsoft deltaLink, or the ICS
    feed's validators (JSON), after ``zone=<the rep's zone>`` and a newline, the zone it was read in
    (``calendars.services.sync.cursor_read``). ``window_end`` is the end of the time window the last full
    sync covered.
    ``retry_not_before``: the provider throttled the last sync and asked to be left alone until then
    (``Retry-After``, at most an hour): syncs asked for before it are deferred (``calendars.services.sync``).
    ``watch_*`` describe the push channel (Google) or subscription (Microsoft); ``watch_secret_hash`` is
    the SHA-256 of the channel token / clientState, compared in constant time.
    """

    connection = models.ForeignKey(CalendarConnection, on_delete=models.CASCADE, related_name="calendars")
    external_id = models.CharField(max_length=1024)
    name = models.CharField(max_length=300, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    is_primary = models.BooleanField(default=False)
    can_write = models.BooleanField(default=False)
    online_meeting_providers = models.JSONField(default=list, blank=True)
    blocks_availability = models.BooleanField(default=False)
    receives_bookings = models.BooleanField(default=False)
    sync_state = models.TextField(blank=True, editable=False)
    window_end = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="Last successful sync")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    sync_requested_at = models.DateTimeField(null=True, blank=True, help_text="A sync is queued")
    sync_lease_until = models.DateTimeField(null=True, blank=True, help_text="A sync is running")
    retry_not_before = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The provider asked Baton to wait (Retry-After): no sync is sent before this",
    )
    watch_channel_id = models.CharField(max_length=200, blank=True, db_index=True)
    watch_resource_id = models.CharField(max_length=500, blank=True)
    watch_secret_hash = models.CharField(max_length=64, blank=True, editable=False)
    watch_expiration = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["connection", "-is_primary", "name"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="calendar_unique_external")
        ]

    def __str__(self) -> str:
        return self.name or self.external_id[:60]

    @property
    def busy_prefix(self) -> str:
        """BusyInterval.external_id prefix of this calendar's rows: ``"<pk>:"``."""
        return f"{self.pk}:"


class BookingEvent(models.Model):
    """The event Baton wrote for one host of one booking, so updates and cancellations find it.

    ``generation`` changes the provider idempotency key after a cancellation, so re-creating the event
    later is not mistaken for a retry of the cancelled one. ``creating``: a create was sent to ``calendar``
    under the key of ``generation`` and its answer never came (a timeout): the provider may hold the event
    (and have invited the prospect) without Baton knowing its id; the retry's create finds it by that key,
    and a booking that no longer wants it has it removed by that key. ``written_sequence`` is the booking's
    SEQUENCE last written; a retry with the same sequence is a no-op. ``account_email`` and
    ``calendar_external_id`` say where it was written: they outlive the ``calendar`` row when the rep
    removes the account, so that connecting it again takes the event back (``_store_calendars``).
    ``sent_start``/``sent_end`` span the times the creates under the current key were sent for: the booking
    may have moved since, and a provider that finds an unconfirmed event by its time (Graph) looks there.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "In the calendar"
        CREATING = "creating", "Being created (not confirmed by the provider)"
        CANCELLED = "cancelled", "Cancelled"

    booking = models.ForeignKey("booking.Booking", on_delete=models.CASCADE, related_name="calendar_events")
    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="booking_events")
    calendar = models.ForeignKey(
        Calendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="booking_events"
    )
    provider = models.CharField(max_length=16, choices=CalendarConnection.Provider.choices)
    external_event_id = models.CharField(max_length=1024, blank=True)
    account_email = models.CharField(max_length=254, blank=True)
    calendar_external_id = models.CharField(max_length=1024, blank=True)
    join_url = models.URLField(max_length=1000, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    generation = models.PositiveIntegerField(default=0)
    written_sequence = models.IntegerField(default=-1)
    sent_start = models.DateTimeField(
        null=True, blank=True, help_text="Start of the times the creates under the current key were sent for"
    )
    sent_end = models.DateTimeField(
        null=True, blank=True, help_text="End of the times the creates under the current key were sent for"
    )
    host_removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a sync found that the host deleted or cancelled this event"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["booking", "rep"]
        constraints = [models.UniqueConstraint(fields=["booking", "rep"], name="bookingevent_unique_host")]

    def __str__(self) -> str:
        return f"booking {self.booking_id} → rep {self.rep_id} ({self.state})"
