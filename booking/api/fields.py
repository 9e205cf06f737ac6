"""Field types of the booking and route APIs: instants with an offset, local dates, IANA zones, the
fields of optional query parameters (given empty: refused, not their default) and prospects' addresses
(a domain that leads and accounts can store)."""

from __future__ import annotations

from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils import html

from leads.rules_core import email_domain
from routing.validators import OUT_OF_RANGE, known_timezones, within_years

NAIVE = "Give the time zone offset, e.g. 2026-03-10T09:00:00+01:00."


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """An ISO 8601 instant WITH a UTC offset (``Z`` or ``+01:00``); naive times are refused."""

    default_error_messages = {
        "invalid": "Expected an ISO 8601 date-time with offset, e.g. 2026-03-10T09:00:00+01:00."
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > 40:
            self.fail("invalid")
        try:
            value = datetime.fromisoformat(data.strip())
        except ValueError:
            self.fail("invalid")
        if value.tzinfo is None or value.utcoffset() is None:
            raise serializers.ValidationError(NAIVE)
        if not within_years(value):
            raise serializers.ValidationError(OUT_OF_RANGE)
        return value

    def to_representation(self, value):
        return value.isoformat()


class LocalDateField(serializers.DateField):
    """A local date (``YYYY-MM-DD``) within the years ``AwareDateTimeField`` accepts."""

    def to_internal_value(self, value):
        value = super().to_internal_value(value)
        if not within_years(value):
            raise serializers.ValidationError(OUT_OF_RANGE)
        return value


class TimezoneField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("min_length", 1)  # blank is refused anyway; this says so in the schema
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value not in known_timezones():
            raise serializers.ValidationError(f"{value!r} is not a known IANA time zone, e.g. Europe/Berlin.")
        return value


BLANK_MESSAGE = "This field may not be blank."  # DRF's own wording for its CharFields


class QueryParameterMixin:
    """For the field of an optional query parameter: one given empty (``?timezone=``) is "" and refused as
    blank, not its default. DRF's ``Field.get_value`` reads an optional field's "" in a QueryDict as absent
    (HTML forms send their blank inputs), so ``?timezone=`` answered in UTC (or the booking's zone): the
    times of a client whose zone variable was empty showed as local. Only query strings (QueryDicts)."""

    def get_value(self, dictionary):
        if html.is_html_input(dictionary) and self.field_name in dictionary:
            return dictionary[self.field_name]  # the last value, as DRF takes it; "" stays ""
        return super().get_value(dictionary)

    def validate_empty_values(self, data):
        if data == "":
            raise serializers.ValidationError(BLANK_MESSAGE, code="blank")
        return super().validate_empty_values(data)


class QueryTimezoneField(QueryParameterMixin, TimezoneField):
    pass


class QueryDateField(QueryParameterMixin, LocalDateField):
    pass


class QueryIntegerField(QueryParameterMixin, serializers.IntegerField):
    pass


# The longest domain name DNS allows (in its ASCII form), and the length of ``Lead.domain`` and
# ``Account.domain``, which store a prospect's domain in that form.
DOMAIN_MAX_LENGTH = 253
DOMAIN_TOO_LONG = (
    f"The domain of this address is too long: at most {DOMAIN_MAX_LENGTH} characters in its DNS (ASCII) form."
)


def storable_email_domain(value: str) -> str:
    """A prospect's address whose domain, as leads and accounts store it (``rules_core.email_domain``:
    NFKC, then IDNA), is one DNS could hold. Normalised, a domain may be far longer than typed (``ﬃ`` is
    ``ffi``): a 247-character address the e-mail check takes had a 707-character domain, and PostgreSQL
    refused the lead's INSERT (a 500; later the owner learning's, for a booking)."""
    if len(email_domain(value)) > DOMAIN_MAX_LENGTH:
        raise serializers.ValidationError(DOMAIN_TOO_LONG, code="max_length")
    return value


class ProspectEmailField(serializers.EmailField):
    """A prospect's e-mail address (booking and route APIs): at most 254 characters, and a domain that
    ``storable_email_domain`` takes, checked once the address is valid (one message for a bad one)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 254)
        super().__init__(**kwargs)

    def run_validators(self, value):
        super().run_validators(value)
        storable_email_domain(value)
