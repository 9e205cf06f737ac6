"""Request validation and response shapes of the booking API (responses also document the schema)."""

from __future__ import annotations

import math
import re
import threading
from decimal import Decimal
from functools import cached_property

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

# the field types (``leads.api`` takes ``ProspectEmailField`` and ``TimezoneField`` from here)
from booking.api.fields import (
    AwareDateTimeField,
    ProspectEmailField,
    QueryDateField,
    QueryTimezoneField,
    TimezoneField,
)
from booking.models import BookingOutcome, MeetingType
from routing.validators import SURROGATE


@extend_schema_field(OpenApiTypes.STR)
class RouteField(serializers.Field):
    """The opaque token of the route API (``leads.tokens``), resolved to a ``Route`` for the meeting type in
    the serializer context; a bad, expired or tampered token is a field error. With ``replay`` true in the
    context an expired token is resolved too: only to match a keyed retry to its stored booking."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        from leads.tokens import RouteInvalid, route_resolve

        try:
            return route_resolve(
                data, meeting_type=self.context["meeting_type"], expired_too=self.context.get("replay", False)
            )
        except RouteInvalid as exc:
            raise serializers.ValidationError(str(exc)) from None


NUL_MESSAGE = "Null characters are not allowed."  # DRF's own wording for its CharFields
SURROGATE_MESSAGE = "Surrogate characters are not allowed: U+{:X}."
CONTROL_MESSAGE = "Line breaks and other control characters are not allowed."


# Unicode's control characters (Cc) and line and paragraph separators (Zl, Zp), all 66 of them but NUL,
# which is left to DRF's own check so that it keeps the one message every other field gives it. A
# character class: 2 µs for a 200-character name, where asking unicodedata per character took 48 µs.
CONTROL = re.compile("[\x01-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(value: str) -> str:
    """A name is one line: it goes into e-mail subjects and invitations (``\n`` made the host's
    confirmation fail with BadHeaderError on every retry)."""
    if CONTROL.search(value):
        raise serializers.ValidationError(CONTROL_MESSAGE)
    return value


def unstorable_error(value) -> str | None:
    """The message for a string anywhere in ``value`` (a key, an item, a nested value) that PostgreSQL
    cannot store: a NUL (jsonb and text refuse U+0000) or a lone surrogate (jsonb refuses it; SQLite stored
    it, so only production answered 500). DRF's own wording, as its CharFields give it; None: storable."""
    if isinstance(value, str):
        if "\x00" in value:
            return NUL_MESSAGE
        surrogate = SURROGATE.search(value)
        return None if surrogate is None else SURROGATE_MESSAGE.format(ord(surrogate.group()))
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        error = unstorable_error(key) or unstorable_error(item)
        if error:
            return error
    return None


def finite_number(value) -> bool:
    """A JSON number (not true/false) that is finite as a float: ``math.isfinite`` raises OverflowError for
    a whole number beyond a float's range (a 400-digit answer was a 500)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _answer_error(question: dict, value) -> str | None:
    unstorable = unstorable_error(value)
    if unstorable:
        return unstorable
    kind = question.get("type") or "text"
    options = [str(o) for o in question.get("options") or []]
    if kind in ("text", "textarea", "phone", "email"):
        limit = {"textarea": 5000, "phone": 50}.get(kind, 1000)
        if not isinstance(value, str):
            return "Expected text."
        if len(value) > limit:
            return f"At most {limit} characters."
        if kind == "email" and value:
            try:
                validate_email(value)
            except DjangoValidationError:
                return "Enter a valid email address."
        return None
    if kind == "number":
        if not finite_number(value):
            return "Expected a number."
        return None
    if kind == "select":
        return (
            None if isinstance(value, str) and value in options else f"Choose one of: {', '.join(options)}."
        )
    if kind == "multiselect":
        if not isinstance(value, list) or not all(isinstance(v, str) and v in options for v in value):
            return f"Choose any of: {', '.join(options)}."
        return None
    if kind in ("checkbox", "boolean"):
        return None if isinstance(value, bool) else "Expected true or false."
    return None if isinstance(value, str) and len(value) <= 1000 else "Expected text."


def _blank(value) -> bool:
    return value is None or value == "" or value == [] or value is False


def validate_answers(questions: list, answers: dict) -> dict:
    """Check ``answers`` against a meeting type's ``questions``; returns the cleaned answers."""
    errors: dict[str, list[str]] = {}
    known = {q["key"]: q for q in questions if isinstance(q, dict) and isinstance(q.get("key"), str)}
    for key in answers:
        if key not in known:
            errors[str(key)[:100]] = ["Unknown question."]
    cleaned = {}
    for key, question in known.items():
        value = answers.get(key)
        if _blank(value):
            if question.get("required"):  # a required box (consent) must be ticked
                errors[key] = ["This question is required."]
            elif value is False and question.get("type") in ("checkbox", "boolean"):
                cleaned[key] = False  # an answer ("no"), which routing rules may ask for (equals false)
            continue
        message = _answer_error(question, value)
        if message:
            errors[key] = [message]
        else:
            cleaned[key] = value.strip() if isinstance(value, str) else value
    if errors:
        raise serializers.ValidationError(errors)
    return cleaned


_thread = threading.local()


class ThreadFieldsSerializer(serializers.Serializer):
    """DRF deep-copies every declared field for each serializer instance (``Serializer.get_fields``), about
    5 % of a booking request's CPU. Bound fields keep no per-request state but their parent (through which a
    field reaches the context), so each thread builds the fields once per class and hands them to the next
    instance with the parent set to it. Only for serializers that are never nested in another one."""

    @cached_property
    def fields(self):
        built = _thread.__dict__.setdefault("fields", {})
        fields = built.get(type(self))
        if fields is None:
            fields = built[type(self)] = super().fields
        fields.serializer = self
        for field in fields.values():
            field.parent = self
        return fields


class VisitorField(serializers.RegexField):
    """A ``RegexField`` whose pattern takes "" itself, so not "blankable": for a blankable field with a
    pattern drf-spectacular writes ``oneOf`` [the pattern, ``maxLength: 0``], both matching "", and by
    ``oneOf``'s "exactly one" the schema refused the empty id the API takes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_blank=False, **kwargs)

    def run_validation(self, data=serializers.empty):
        return "" if data == "" else super().run_validation(data)


class BookingCreateSerializer(ThreadFieldsSerializer):
    """A booking: one of the offered starts, the prospect, and the answers to the meeting type's questions."""

    start = AwareDateTimeField(help_text="Start with offset, e.g. 2026-03-10T09:00:00+01:00")
    name = serializers.CharField(max_length=200, min_length=1, validators=[one_line])
    email = ProspectEmailField()
    timezone = TimezoneField(help_text="The prospect's IANA zone; times in the response are given in it")
    answers = serializers.DictField(required=False, default=dict, help_text="Question key → answer")
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    utm = serializers.DictField(
        child=serializers.CharField(max_length=200, allow_blank=True), required=False, default=dict
    )
    route = RouteField(help_text="Token from POST …/route: book within the routed pool and candidates")
    visitor = VisitorField(
        r"^[A-Za-z0-9_-]*\Z",
        max_length=64,
        required=False,
        trim_whitespace=False,
        error_messages={"invalid": "Only letters, digits, '_' and '-'."},
        help_text="The booking page's anonymous visitor id (speed-to-lead reporting)",
    )

    def validate_utm(self, value):
        if len(value) > 20 or any(len(k) > 64 for k in value):
            raise serializers.ValidationError("At most 20 keys of at most 64 characters.")
        unstorable = unstorable_error(value)  # the values are CharFields (checked already); the keys are not
        if unstorable:
            raise serializers.ValidationError(unstorable)
        return value

    def validate_answers(self, value):
        meeting_type: MeetingType = self.context["meeting_type"]
        return validate_answers(meeting_type.questions or [], value)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class RescheduleSerializer(serializers.Serializer):
    start = AwareDateTimeField(help_text="New start with offset")
    timezone = TimezoneField(
        required=False, help_text="Zone for the response times (default: the prospect's)"
    )


class OutcomeSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=BookingOutcome.Kind.choices)
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Deal value: required for won, absent or null otherwise",
    )
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        won = attrs["kind"] == BookingOutcome.Kind.WON
        if won and attrs.get("amount") is None:
            raise serializers.ValidationError({"amount": ["The deal amount is required for a won outcome."]})
        if not won and attrs.get("amount") is not None:
            raise serializers.ValidationError({"amount": ["Only a won outcome has an amount."]})
        return attrs


class OutcomeResponseSerializer(serializers.Serializer):
    booking_id = serializers.IntegerField()
    booking_status = serializers.CharField()
    kind = serializers.CharField()
    amount = serializers.CharField(allow_null=True, help_text='Decimal as a string, e.g. "1200.00"')
    note = serializers.CharField()
    recorded_by = serializers.CharField(allow_null=True)
    recorded_at = serializers.DateTimeField()
    replaced = serializers.CharField(allow_null=True, help_text="The kind this recording replaced, if any")


class SlotsQuerySerializer(serializers.Serializer):
    start = QueryDateField(required=False, help_text="First local date (default: today in `timezone`)")
    end = QueryDateField(required=False, help_text="Last local date, inclusive (default: start + 6 days)")
    timezone = QueryTimezoneField(required=False, default="UTC")
    route = RouteField(help_text="Token from POST …/route: slots of the routed pool and candidates only")


class RescheduleSlotsQuerySerializer(serializers.Serializer):
    start = QueryDateField(required=False, help_text="First local date (default: today in `timezone`)")
    end = QueryDateField(required=False, help_text="Last local date, inclusive (default: start + 6 days)")
    timezone = QueryTimezoneField(
        required=False, help_text="Default: the prospect's time zone of the booking"
    )


class BookingTimezoneQuerySerializer(serializers.Serializer):
    timezone = QueryTimezoneField(required=False)


# --- response shapes (schema documentation)


class MeetingTypeSerializer(serializers.ModelSerializer):
    duration = serializers.IntegerField(source="duration_minutes", help_text="Minutes")
    slot_interval = serializers.IntegerField(source="slot_interval_minutes", help_text="Minutes")

    class Meta:
        model = MeetingType
        fields = ["slug", "title", "description", "duration", "slot_interval", "location_kind", "questions"]


class SlotSerializer(serializers.Serializer):
    start = serializers.CharField()
    end = serializers.CharField()


class SlotsResponseSerializer(serializers.Serializer):
    timezone = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    slots = SlotSerializer(many=True)


class HostSerializer(serializers.Serializer):
    name = serializers.CharField()
    email = serializers.EmailField()
    role = serializers.CharField()


class BookingResponseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    start = serializers.CharField()
    end = serializers.CharField()
    timezone = serializers.CharField()
    meeting_type = serializers.DictField()
    location = serializers.DictField()
    hosts = HostSerializer(many=True)
    sequence = serializers.IntegerField()
    cancel_reason = serializers.CharField(required=False)
    can_cancel = serializers.BooleanField(required=False)
    can_reschedule = serializers.BooleanField(required=False)
    manage_url = serializers.URLField(required=False, help_text="Only in the creation response")
    manage_token = serializers.CharField(required=False, help_text="Only in the creation response")


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(required=False)
    alternatives = serializers.ListField(child=serializers.CharField(), required=False)
    retry_after = serializers.IntegerField(required=False)
