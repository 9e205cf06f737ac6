import datetime as dt
import re
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError

# A lone surrogate (U+D800-U+DFFF: half of a UTF-16 pair, an emoji cut in two): valid in JSON (``"\ud83d"``)
# and in Python text, yet no character: it has no UTF-8, and PostgreSQL's jsonb refuses it.
SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\udc00``, as JSON writes it): a lone
    surrogate has no UTF-8, so a page, a message or an API answer showing it as it is was a 500."""
    return SURROGATE.sub(lambda found: ascii(found[0])[1:-1], text)


# Dates and times a prospect may ask about: far beyond any bookable time on both sides, and a local date at
# either end of Python's range would overflow once turned into its day's window in UTC.
FIRST_YEAR, LAST_YEAR = 2000, 2999
OUT_OF_RANGE = f"Out of range: years {FIRST_YEAR} to {LAST_YEAR} only."


def within_years(value) -> bool:
    """Whether a date or datetime falls in the years ``FIRST_YEAR`` … ``LAST_YEAR``."""
    return FIRST_YEAR <= value.year <= LAST_YEAR


def stored_within_years(value) -> bool:
    """``within_years`` for a value as the database stores it: an aware datetime also as its UTC instant,
    which is what an export writes (2999-12-31T20:00-08:00 is 3000-01-01T04:00Z). The value's own year is
    tested first: year 1 at +14:00 would not even turn into UTC."""
    if not within_years(value):
        return False
    aware = isinstance(value, dt.datetime) and value.utcoffset() is not None
    return not aware or within_years(value.astimezone(dt.UTC))


def validate_years(value) -> None:
    """Model field validator of the dates and instants the config file holds: the file's range
    (``stored_within_years``), so the admin saves nothing that an export then cannot import."""
    if value is not None and not stored_within_years(value):
        raise ValidationError(OUT_OF_RANGE, code="years")


_ZONES: frozenset[str] | None = None
# Names the system's zoneinfo directory holds that are no IANA zone of a place: the server's own zone (a
# symlink), tzdata's "Factory" (no time zone at all) and the POSIX rules file; the booking page offered them.
NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


def known_timezones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) - NOT_ZONES
    return _ZONES


def validate_timezone(value: str) -> None:
    if value not in known_timezones():
        raise ValidationError(
            "%(value)s is not a known IANA time zone", params={"value": value}, code="timezone"
        )
