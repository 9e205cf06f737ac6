"""Leads and the rules that route them: per-meeting-type ordered rules, accounts with owners, score models."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from leads import rules_core
from routing.models import Pool, Rep


def _refuse_unstorable(value, path: str) -> None:
    """Refuse what the JSON column cannot hold as it is, as the config file does (``json_problems``): NaN
    or Infinity (Python's JSON reader, behind the admin's JSON box, takes both; the INSERT was a 500) and
    half a surrogate pair (saved, then the meeting type's admin page was a 500)."""
    from routing.configfile.checker import json_problems  # routing.configfile imports this module

    errors = json_problems(value, path)
    if errors:
        raise ValidationError(errors)


def validate_conditions(value) -> None:
    _refuse_unstorable(value, "conditions")
    errors = rules_core.validate(value)
    if errors:
        raise ValidationError(errors)


def validate_points(value) -> None:
    _refuse_unstorable(value, "score_points")
    errors = rules_core.validate_points(value)
    if errors:
        raise ValidationError(errors)


def validate_required_skills(value) -> None:
    if value in (None, {}):
        return
    _refuse_unstorable(value, "required_skills")
    if not isinstance(value, dict):
        raise ValidationError('Expected {"skill": minimum level 1-10}.')
    for skill, level in value.items():
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 10:
            raise ValidationError(f"{skill}: the minimum level must be a whole number 1-10.")


class RoutingRule(models.Model):
    class Outcome(models.TextChoices):
        ROUTE_POOL = "route_pool", "Route to a pool"
        ACCOUNT_OWNER = "account_owner", "Route to the account owner"
        DISQUALIFY = "disqualify", "Disqualify (nurture)"

    meeting_type = models.ForeignKey(
        "booking.MeetingType", on_delete=models.CASCADE, related_name="routing_rules"
    )
    order = models.PositiveIntegerField(default=0, help_text="Lower is tried first; first match wins")
    name = models.CharField(max_length=200)
    conditions = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_conditions],
        help_text='{"all": [{"field": "answers.size", "op": "in", "value": ["51-200"]}]}; empty: catch-all',
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.ROUTE_POOL)
    pool = models.ForeignKey(
        Pool,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Blank: the meeting type's pool",
    )
    required_skills = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_required_skills],
        help_text='Only members with these skills at or above the level: {"enterprise": 7}',
    )
    fallback_pool = models.ForeignKey(
        Pool,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Used (and recorded) when no skilled member / owner has a free slot within the window",
    )
    fallback_after_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    # full_clean ignores a TextField's max_length (only the admin's form checks it): the validator makes the
    # config file refuse what the admin refuses
    disqualify_message = models.TextField(blank=True, max_length=2000, validators=[MaxLengthValidator(2000)])
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["meeting_type", "order", "pk"]

    def __str__(self) -> str:
        return f"{self.order}. {self.name} → {self.get_outcome_display()}"

    def clean(self) -> None:
        if self.outcome == self.Outcome.DISQUALIFY and not self.disqualify_message.strip():
            raise ValidationError({"disqualify_message": "A disqualifying rule needs a message."})


class ScoreModel(models.Model):
    """The lead-score points model of a meeting type (computed before the rules, which may use ``score``)."""

    meeting_type = models.OneToOneField(
        "booking.MeetingType", on_delete=models.CASCADE, related_name="score_model"
    )
    points = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_points],
        help_text='[{"when": {"field": "answers.budget", "op": "gte", "value": 10000}, "points": 30}]',
    )

    def __str__(self) -> str:
        return f"Score model of {self.meeting_type}"


class Account(models.Model):
    domain = models.CharField(max_length=253, unique=True, help_text="Company e-mail domain, lower case")
    name = models.CharField(max_length=200, blank=True)
    crm_id = models.CharField(max_length=100, blank=True)
    owner = models.ForeignKey(Rep, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts")
    learned = models.BooleanField(default=False, help_text="Owner learned from booking history")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["domain"]
        constraints = [models.CheckConstraint(condition=~Q(domain=""), name="account_domain_nonempty")]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs):
        self.domain = rules_core.normalize_domain(self.domain)  # as leads' e-mail domains are compared
        super().save(*args, **kwargs)


class Lead(models.Model):
    class Outcome(models.TextChoices):
        ROUTED = "routed", "Routed"
        DISQUALIFIED = "disqualified", "Disqualified"

    meeting_type = models.ForeignKey("booking.MeetingType", on_delete=models.CASCADE, related_name="leads")
    email = models.EmailField(max_length=254, db_index=True)
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=253, db_index=True)
    timezone = models.CharField(max_length=64)
    country = models.CharField(max_length=2, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    utm = models.JSONField(default=dict, blank=True)
    score = models.FloatField(default=0.0)
    matched_rule = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    pool = models.ForeignKey(Pool, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.JSONField(default=dict, blank=True, help_text="Why: rules tried, skills, fallback")
    booking = models.OneToOneField(
        "booking.Booking", null=True, blank=True, on_delete=models.SET_NULL, related_name="lead"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.get_outcome_display()}"


class PoolPerformance(models.Model):
    """Softened performance weighting of a pool's routed leads (see ``leads.performance_core``)."""

    pool = models.OneToOneField(Pool, on_delete=models.CASCADE, related_name="performance")
    enabled = models.BooleanField(default=True)
    strength = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="0: plain fairness … 1: weight fully proportional to the (shrunk) conversion rate",
    )
    floor = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="No member's long-run share below floor × their fair share",
    )
    window_days = models.PositiveSmallIntegerField(
        default=90, validators=[MinValueValidator(7), MaxValueValidator(730)]
    )
    prior_outcomes = models.FloatField(
        default=10.0,
        validators=[MinValueValidator(0.0)],
        help_text="Pseudo-outcomes at the team rate: a rep with few outcomes stays near the team rate",
    )

    class Meta:
        verbose_name = "pool performance weighting"

    def __str__(self) -> str:
        return f"Performance weighting of {self.pool}"
