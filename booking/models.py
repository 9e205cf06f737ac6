"""The transaction: meeting types, bookings and their hosts."""

from __future__ import annotations

from datetime import UTC

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Collate, StrIndex, Substr, Upper
from django.utils import timezone

from booking.ics import booking_identity, ical_uid
from routing.models import Pool, Rep
from routing.validators import validate_timezone

SLOT_INTERVALS = [
    (5, "5 min"),
    (10, "10 min"),
    (15, "15 min"),
    (20, "20 min"),
    (30, "30 min"),
    (60, "60 min"),
]


class MeetingType(models.Model):
    class LocationKind(models.TextChoices):
        VIDEO = "video", "Video call"
        PHONE = "phone", "Phone call"
        IN_PERSON = "in_person", "In person"

    slug = models.SlugField(max_length=100, unique=True, help_text="Public URL: /book/<slug>")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    duration_minutes = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(5), MaxValueValidator(720)]
    )
    slot_interval_minutes = models.PositiveSmallIntegerField(choices=SLOT_INTERVALS, default=15)
    buffer_before_minutes = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(240)])
    buffer_after_minutes = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(240)])
    # at most a year, the longest horizon: a notice past year 9999 saved, then every booking was a 500
    minimum_notice_minutes = models.PositiveIntegerField(
        default=240, validators=[MaxValueValidator(365 * 24 * 60)]
    )
    horizon_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="meeting_types")
    location_kind = models.CharField(max_length=16, choices=LocationKind.choices, default=LocationKind.VIDEO)
    location_detail = models.CharField(
        max_length=500, blank=True, help_text="Video link, phone number or address shown on the confirmation"
    )
    questions = models.JSONField(
        default=list,
        blank=True,
        help_text='Qualification questions: [{"key": "size", "label": "Company size", "type": "select", '
        '"options": ["1-10", "11-50"], "required": true}]',
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(condition=Q(duration_minutes__gt=0), name="meetingtype_duration_positive"),
            models.CheckConstraint(
                condition=Q(slot_interval_minutes__in=[value for value, _ in SLOT_INTERVALS]),
                name="meetingtype_slot_interval_valid",
            ),
            models.CheckConstraint(condition=Q(horizon_days__gt=0), name="meetingtype_horizon_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.duration_minutes} min)"


def prospect_email_key(path: str = ""):
    """The prospect's address, upper-cased: what an address is looked up by, case-insensitively (the owner
    history, ``leads.owners``), and indexed by (``booking_prospect_email``). ``path``: the relation to the
    booking, e.g. ``"booking__"`` from a host row."""
    return Upper(f"{path}prospect_email")


def prospect_domain_key(path: str = ""):
    """The domain of the prospect's address (after its first "@"), upper-cased: what a company's earlier
    bookings are looked up by (an equality an index serves, where ``iendswith`` reads every booking) and
    indexed by (``booking_prospect_domain``). Built-in functions of SQLite and PostgreSQL only."""
    email = f"{path}prospect_email"
    return Upper(Substr(email, StrIndex(email, models.Value("@")) + 1))


class Booking(models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        NO_SHOW = "no_show", "No-show"

    meeting_type = models.ForeignKey(MeetingType, on_delete=models.PROTECT, related_name="bookings")
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="bookings")
    start = models.DateTimeField(db_index=True)
    end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONFIRMED, db_index=True)
    prospect_name = models.CharField(max_length=200)
    prospect_email = models.EmailField(max_length=254)
    prospect_timezone = models.CharField(max_length=64, validators=[validate_timezone])
    answers = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True, max_length=2000)
    utm = models.JSONField(default=dict, blank=True)
    visitor_id = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Booking page's anonymous visitor cookie id"
    )
    decision = models.JSONField(default=dict, blank=True, help_text="Routing decision record")
    manage_token_hash = models.CharField(max_length=64, unique=True, editable=False)
    sequence = models.PositiveIntegerField(default=0, help_text="iCalendar SEQUENCE, raised on every change")
    cancel_reason = models.CharField(max_length=500, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Invitation(models.TextChoices):
        NONE = "", "none sent yet"
        BATON = "baton", "Baton's e-mail (.ics)"
        PROVIDER = "provider", "the lead host's calendar"

    # whose invitation of the meeting the prospect holds, as the prospect's e-mails sent it
    # (``booking.emails.send_prospect_email``): a later e-mail updates or cancels that one, even when the
    # lead host's calendar has started to invite since (a calendar connected after the booking); a default
    # in the database too, for rows written without the column (the code before it, during an upgrade)
    prospect_invitation = models.CharField(
        max_length=8,
        choices=Invitation.choices,
        default=Invitation.NONE,
        db_default=Invitation.NONE,
        blank=True,
        editable=False,
    )
    # set when the instance is made, not at its insert: the booking path builds the invitations (whose UID
    # names this instant, ``ical_uid``) before the booking's row goes in on PostgreSQL
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start"]
        indexes = [
            models.Index(prospect_email_key(), name="booking_prospect_email"),
            models.Index(prospect_domain_key(), name="booking_prospect_domain"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="booking_end_after_start")
        ]

    def __str__(self) -> str:
        start = self.start.astimezone(UTC) if self.start is not None else self.start  # a form's: in TIME_ZONE
        return f"{self.meeting_type.title} with {self.prospect_name} at {start:%Y-%m-%d %H:%M} UTC"

    @property
    def identity(self) -> str:
        """Stable for the booking's life and unique beyond this database: its key and creation instant
        (``booking.ics.booking_identity``); names it to the outside world (UIDs, providers' event keys)."""
        return booking_identity(self.pk, self.created_at)

    @property
    def ical_uid(self) -> str:
        """The identity at ``ICAL_UID_DOMAIN``, unique beyond this installation as RFC 5545 advises."""
        return ical_uid(self.pk, self.created_at)


class CodePointOrder(Collate):
    """A text column compared character by character by code point, as Python compares ``str`` (the
    routing core's ``sorted``): PostgreSQL's "C" collation (bytes of UTF-8, which order as their code
    points), SQLite's BINARY (its default, the same). Not the database's collation: a language one
    (en_US.UTF-8, the PostgreSQL image's default) puts "ae" before "SE", Python "SE" before "ae"."""

    def __init__(self, expression):
        super().__init__(expression, "C")

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, collation="BINARY", **extra_context)


# The order of a booking's hosts everywhere (API, e-mails, calendar write-back, the manage page and .ics):
# the lead first. A booking's hosts are chosen role by role in the order of Python's ``sorted`` (a group
# pool's "SE" before its "ae", "ae" before "se"; every other pool has one host), so this is the order they
# were chosen in, and it stays so when a reassignment or a reschedule gives a seat a new row: ordered by
# key, the new AE came after the SE, and the write-back, the API and the e-mails named different leads (the
# prospect lost or doubled its invite). Roles compare as Python compares them (``CodePointOrder``), not by
# the database's collation: the confirmation and the cancellation named different organizers.
HOST_ORDER = (CodePointOrder("role"), "pk")


class BookingHost(models.Model):
    """A rep hosting a booking. ``blocked_*`` is the booking widened by its buffers; on PostgreSQL an
    exclusion constraint keeps the blocked ranges of one rep's active bookings from overlapping.
    ``booking_pool_id`` and ``booking_status`` are copies of the booking's, kept by database triggers
    (``booking.triggers``) for the fairness ledger's count; the application never writes them."""

    class Released(models.TextChoices):
        NO = "", "Not released"
        CANCELLED = "cancelled", "Booking cancelled"
        REASSIGNED = "reassigned", "Reassigned to another rep"

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="hosts")
    rep = models.ForeignKey(Rep, on_delete=models.PROTECT, related_name="hosted")
    role = models.SlugField(max_length=32, blank=True)
    blocked_start = models.DateTimeField()
    blocked_end = models.DateTimeField()
    active = models.BooleanField(default=True, help_text="False once the booking is cancelled")
    assigned_at = models.DateTimeField(
        default=timezone.now, help_text="When this rep got the booking (fairness)"
    )
    released = models.CharField(
        max_length=16,
        choices=Released.choices,
        default=Released.NO,
        blank=True,
        help_text="Why an inactive host stopped hosting: a reassigned host no longer counts for fairness",
    )

    class Invitation(models.TextChoices):
        NONE = "", "none sent yet"
        BATON = "baton", "Baton's e-mail (.ics)"
        PROVIDER = "provider", "the event Baton writes into their calendar"

    # which copy of the meeting the host holds, as the host's e-mails sent it (``booking.emails.
    # send_host_email``): a later e-mail cancels or withdraws Baton's invitation where that is the one they
    # hold, even when their calendar receives bookings by now (connected after the booking: the write-back
    # never had this meeting there); a default in the database too, for rows written without the column
    invitation = models.CharField(
        max_length=8,
        choices=Invitation.choices,
        default=Invitation.NONE,
        db_default=Invitation.NONE,
        blank=True,
        editable=False,
    )
    DATABASE_FILLED = ("booking_pool_id", "booking_status")  # routing.sqlrows leaves them out of INSERTs
    booking_pool_id = models.BigIntegerField(
        null=True, editable=False, help_text="The booking's pool (copied by a database trigger)"
    )
    booking_status = models.CharField(
        max_length=16,
        null=True,
        editable=False,
        help_text="The booking's status (copied by a database trigger)",
    )

    class Meta:
        ordering = ["booking", "role"]
        indexes = [
            models.Index(fields=["rep", "blocked_end", "blocked_start"], name="host_rep_blocked"),
            # the fairness ledger: per rep, the pool's host rows of the current period (counted from the
            # index alone) and the newest one (a backward step)
            models.Index(
                fields=["booking_pool_id", "rep", "assigned_at", "released", "booking_status"],
                name="host_ledger",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["booking", "rep"], name="bookinghost_unique"),
            models.CheckConstraint(
                condition=Q(blocked_end__gt=F("blocked_start")), name="bookinghost_range_valid"
            ),
        ]

    def __str__(self) -> str:
        role = f" ({self.role})" if self.role else ""
        return f"{self.rep.name}{role}"


class BookingOutcome(models.Model):
    """What came of a held (or missed) meeting, recorded by staff or a host after its start.

    One per booking (recording again replaces it; the replaced outcome is kept in the booking's decision
    history). ``amount`` is the deal value: required for ``won``, empty for every other kind.
    """

    class Kind(models.TextChoices):
        HELD = "held", "Held"
        NO_SHOW = "no_show", "No-show"
        QUALIFIED = "qualified", "Qualified"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    booking = models.OneToOneField(Booking, on_delete=models.CASCADE, related_name="outcome")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, help_text="Deal value; only for won"
    )
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-recorded_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["held", "no_show", "qualified", "won", "lost"]),
                name="bookingoutcome_kind_valid",
            ),
            models.CheckConstraint(
                condition=(Q(kind="won") & Q(amount__isnull=False) & Q(amount__gte=0))
                | (~Q(kind="won") & Q(amount__isnull=True)),
                name="bookingoutcome_amount_only_for_won",
            ),
        ]

    def __str__(self) -> str:
        amount = f" {self.amount}" if self.amount is not None else ""
        return f"{self.get_kind_display()}{amount} (booking {self.booking_id})"


class ManageLink(models.Model):
    """A further manage token of a booking, for an e-mail sent after the confirmation (a reassignment's):
    the first token is known only by its hash, so such an e-mail carries a new one, and every link the
    prospect was given keeps working. Stored, like the first, only as its SHA-256."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"manage link {self.token_hash[:12]}… (booking {self.booking_id})"


class IdempotencyKey(models.Model):
    """A booking request's ``Idempotency-Key`` (or an instant route's, in its own key space without a
    booking: ``booking.services.idempotency.scoped``): the first successful response, replayed for 24 hours.

    Only hashes of the key are stored; the response (it contains the manage token) is sealed with a Fernet
    key derived from the client's key and SECRET_KEY, so the database alone cannot reveal the token.
    The unique ``key_hash`` makes concurrent duplicates wait for, then replay, the first.
    """

    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    request_hash = models.CharField(max_length=64, editable=False)
    booking = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status_code = models.PositiveSmallIntegerField(default=0)
    sealed_response = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"idempotency key {self.key_hash[:12]}… (booking {self.booking_id})"


class OutboxMessage(models.Model):
    """A side effect of a booking change (email, calendar write), written in the booking's transaction and
    delivered afterwards by ``booking.tasks`` (one row per registered handler, see ``booking.outbox``)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Gave up"

    event = models.CharField(
        max_length=64, help_text="booking.confirmed / booking.rescheduled / booking.cancelled"
    )
    handler = models.CharField(max_length=200)
    booking = models.ForeignKey(
        Booking, null=True, blank=True, on_delete=models.SET_NULL, related_name="outbox"
    )
    payload = models.JSONField(default=dict, blank=True)
    sealed = models.TextField(
        blank=True, editable=False, help_text="Encrypted secrets (manage link), wiped once delivered"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    result = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.handler} ({self.status})"


class HostTally(models.Model):
    """How many of a pool's host rows count for fairness, per rep and booking status, in each bucket of their
    ``assigned_at`` (UTC): its day, its week (from Monday), its month, and all time. Written only by database
    triggers (``booking.triggers``) as host rows come, change and go, so that the fairness ledger
    (``routing.ledger``) reads one row per rep and status for a period where it counted the period's host
    rows under the booking locks (growing with the pool's bookings). A host row counts when it has a pool
    and was not reassigned away. Plain ids, no foreign keys: a pool's deletion leaves its tallies behind."""

    class Kind(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week (from Monday)"
        MONTH = "month", "Month"
        ALL = "all", "All time"

    pool_id = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    start = models.DateField(help_text="The bucket's first day (UTC); all time: 1970-01-01")
    rep_id = models.BigIntegerField()
    status = models.CharField(max_length=16)
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # the triggers' upsert target, and the ledger's index: a pool's buckets of one kind from a start
            models.UniqueConstraint(
                fields=["pool_id", "kind", "start", "rep_id", "status"], name="hosttally_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"pool {self.pool_id} rep {self.rep_id} {self.status} {self.kind} {self.start}: {self.n}"
