"""Who: reps, routing pools, their members and the fairness ledger."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from routing.validators import validate_timezone


def strategy_choices() -> list[tuple[str, str]]:
    """Choices come from the strategy registry, so a new strategy module needs no model change."""
    from routing.core.strategies import STRATEGY_CHOICES

    return list(STRATEGY_CHOICES)


class Rep(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    timezone = models.CharField(
        max_length=64, validators=[validate_timezone], help_text="IANA zone, e.g. Europe/Berlin"
    )
    active = models.BooleanField(default=True)
    daily_cap = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Most meetings per local day over all pools (blank: no cap)"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="rep"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # one mailbox, one rep: Ana@X.example is ana@x.example (two reps would be two calendars and two
            # fairness standings for one person, and account owners are matched by the lower-cased address)
            models.UniqueConstraint(
                Lower("email"),
                name="rep_email_unique_any_case",
                violation_error_message="A rep with this e-mail address (in any letter case) exists already.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class RepSkill(models.Model):
    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="skills")
    skill = models.SlugField(max_length=64)
    level = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )

    class Meta:
        ordering = ["skill"]
        constraints = [
            models.UniqueConstraint(fields=["rep", "skill"], name="repskill_unique"),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=10), name="repskill_level_1_10"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.skill} ({self.level})"


class Pool(models.Model):
    class FairnessPeriod(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week"
        MONTH = "month", "Month"
        ROLLING_30D = "rolling_30d", "Rolling 30 days"
        NEVER = "never", "Never resets"

    class GroupOrder(models.TextChoices):
        NEXT_UP = "next_up", "Next up (fairness)"
        RANK = "rank", "Rank"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    strategy = models.CharField(max_length=32, choices=strategy_choices)
    fairness_period = models.CharField(
        max_length=16, choices=FairnessPeriod.choices, default=FairnessPeriod.MONTH
    )
    count_cancellations = models.BooleanField(
        default=False, help_text="Cancelled bookings still count as assigned"
    )
    count_no_shows = models.BooleanField(default=False, help_text="No-shows still count as assigned")
    group_order = models.CharField(max_length=16, choices=GroupOrder.choices, default=GroupOrder.NEXT_UP)
    reps = models.ManyToManyField(Rep, through="PoolMember", related_name="pools")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_strategy_display()})"


class PoolMember(models.Model):
    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="members")
    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="memberships")
    rank = models.PositiveIntegerField(default=0, help_text="Ranked pools: lower rank is asked first")
    # the fairness load is (count + adjustment) / weight: bounded, it stays a finite number (0.01 with an
    # adjustment of 1e308 made it infinite, and every booking of the pool a 500)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.01), MaxValueValidator(1000)])
    role = models.SlugField(max_length=32, blank=True, help_text="Group pools: e.g. ae, se")
    daily_cap = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Most of this pool's meetings per local day"
    )
    active = models.BooleanField(default=True)
    adjustment = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(-1e6), MaxValueValidator(1e6)],
        help_text="Manual fairness adjustment added to the member's count",
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pool", "role", "rank", "rep__name"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "rep"], name="poolmember_unique"),
            models.CheckConstraint(condition=models.Q(weight__gt=0), name="poolmember_weight_positive"),
        ]

    def __str__(self) -> str:
        role = f" as {self.role}" if self.role else ""
        return f"{self.rep.name} in {self.pool.name}{role}"

    def clean(self) -> None:
        """A group pool's meetings need one member of every role: a member without one would make "" a role
        of its own (the config file refuses it too)."""
        try:
            pool = self.pool  # in the pool page's inline: the pool as the form above changes it
        except Pool.DoesNotExist:
            return  # the pool field's own error says so
        if pool.strategy == "group" and not self.role:
            raise ValidationError({"role": "Required in a group pool (e.g. ae, se)."})


class LedgerEntry(models.Model):
    """An audited change to a member's fairness standing (assignment, credit back, reassignment, manual)."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "Assigned"
        CREDITED = "credited", "Credited back"
        REASSIGNED_FROM = "reassigned_from", "Reassigned away"
        REASSIGNED_TO = "reassigned_to", "Reassigned to"
        ADJUSTED = "adjusted", "Manual adjustment"
        JOINED = "joined", "Joined at mean load"

    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="ledger")
    rep = models.ForeignKey(Rep, on_delete=models.CASCADE, related_name="ledger")
    # A deleted booking takes its entries with it: with the key set to NULL an "assigned" entry would read
    # as an assignment without a booking (``routing.ledger``: an instant route) and charge its host again.
    booking = models.ForeignKey(
        "booking.Booking", null=True, blank=True, on_delete=models.CASCADE, related_name="ledger"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    delta = models.FloatField()
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["pool", "kind", "created_at"], name="ledger_pool_kind"),
            # pool_ledger reads only these few rows (assignments without a booking, reassignments, joined
            # deltas), never the one "assigned" entry every booking adds
            models.Index(
                fields=["pool", "rep"],
                condition=Q(kind="assigned", booking__isnull=True)
                | Q(kind__in=["reassigned_from", "reassigned_to", "joined"]),
                name="ledger_pool_special",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.delta:+g} {self.rep.name} in {self.pool.name}"
