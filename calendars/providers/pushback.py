"""Google and Microsoft pushing back: reading ``Retry-After``, backing off without one, and saying which.

* ``retry_after_seconds``: RFC 9110 §10.2.3 allows delay-seconds *or* an HTTP-date; both are read (Graph
  sends fractional seconds too). A date is taken relative to now; one already past is 0; anything else
  (empty, garbage, NaN) is ``None``: "not said", never an exception out of the provider.
* ``jittered_backoff``: the wait when the provider did not say how long. Exponential with equal jitter
  (half the step fixed, half random): the calendars of one tenant throttled together do not all come back
  at the same instants and keep the tenant throttled (a retry storm).
* ``pushback_message``: the words an admin reads in ``last_error``: "throttled" only for a rate limit
  (429, Google's 403 ``rateLimitExceeded``), "unavailable" for 5xx, "timed out" for 504, with the wait the
  provider asked for when it gave one.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Google's 403 reasons that mean "too many requests", not "forbidden" (Calendar API, usage limits)
GOOGLE_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait by a ``Retry-After`` header value, or ``None`` when it says nothing readable."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322, as HTTP-dates are
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def jittered_backoff(attempt: int, *, base: float = 1.0, cap: float = 30.0) -> float:
    """The wait before retry ``attempt`` + 1 (0-based) when the provider gave no ``Retry-After``: a step of
    ``base * 2**attempt`` (at most ``cap``), of which half is waited and the other half drawn at random."""
    step = min(cap, base * 2 ** max(attempt, 0))
    return step / 2 + random.uniform(0, step / 2)  # jitter, not a secret


def describe_wait(seconds: float) -> str:
    """``seconds`` in words short enough for an error line: "45 s", "2 min", "3 h", "12 days"."""
    if seconds < 120:
        return f"{math.ceil(seconds)} s"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} min"
    if seconds < 2 * 86400:
        return f"{math.ceil(seconds / 3600)} h"
    return f"{math.ceil(seconds / 86400)} days"


def pushback_message(
    provider: str, status: int, *, throttled: bool, retry_after: float | None, reason: str = ""
) -> str:
    """What an admin reads for a refused request: ``provider`` ("Google", "Microsoft Graph") throttled the
    request / is unavailable / timed out, the HTTP status (and the provider's reason code), and how long
    it asked to be left alone when it said so."""
    if throttled:
        what = "throttled the request"
    elif status == 504:
        what = "timed out"
    else:
        what = "is unavailable"
    detail = f"HTTP {status}" + (f" {reason}" if reason else "")
    if retry_after is not None:
        detail += f"; retry after {describe_wait(retry_after)}"
    return f"{provider} {what} ({detail})"
