from zoneinfo import available_timezones

from django.core.exceptions import ValidationError

# Dates and times a prospect may ask about: far beyond any bookable time on both sides, and a local date at
# either end of Python's range would overflow once turned into its day's window in UTC.
FIRST_YEAR, LAST_YEAR = 2000, 2999
OUT_OF_RANGE = f"Out of range: years {FIRST_YEAR} to {LAST_YEAR} only."


def within_years(value) -> bool:
    """Whether a date or datetime falls in the years ``FIRST_YEAR`` … ``LAST_YEAR``."""
    return FIRST_YEAR <= value.year <= LAST_YEAR


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
