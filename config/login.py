"""The sign-in pages' limit on password guessing (``LOGIN_RATE_LIMIT``, e.g. ``10/15min``): the reps'
``/accounts/login/`` and the staff's ``/admin/login/`` count failed sign-ins per client address (the API
limits' address: ``booking.api.throttles.client_ident``, an IPv6 client by its /64) and per username, in
fixed windows in the default cache (Redis with ``CACHE_URL``, shared by every worker). Past the limit a POST
is answered 429 with ``Retry-After``, its password unchecked (a right one answered otherwise would still be
an oracle), until the window ends.

Every POST is counted before its password is checked, and a successful sign-in takes its own count back:
parallel guesses cannot all slip in under the limit, and signing in costs the other logins behind the same
address (an office) nothing. The price of the per-username count: guesses from anywhere lock that login out
for the rest of the window, its owner too.

When the cache cannot be reached (Redis restarting or down), sign-ins are not limited (logged, as the API
limits do): a lost counter must not lock every rep and admin out.
"""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

from booking.api.throttles import client_ident, count_failed, count_in_window, uncount
from config.env import windowed_rate


def parse_rate(rate: str) -> tuple[int, int] | None:
    """``LOGIN_RATE_LIMIT`` as (failed sign-ins allowed, window in seconds), None when off. Read at each
    request, so tests and operators can change it."""
    return windowed_rate("LOGIN_RATE_LIMIT", rate)


def _keys(request, window: int, now: float) -> list[str]:
    """The window's counters of the client's address and of the username tried (as the sign-in form reads
    it, letter case aside: "Dana" and "dana" are one count)."""
    slot = int(now // window)
    # NFKC, as Django's sign-in form reads a username: "ｄａｎａ" (full width) signs in as dana and must
    # count as dana
    username = unicodedata.normalize("NFKC", request.POST.get("username", "")).strip().casefold()
    return [
        f"login:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}:{window}:{slot}"
        for kind, value in (("addr", client_ident(request)), ("user", username))
    ]


def _count(keys: list[str], window: int) -> int | None:
    """The highest of the counters after one more on each (atomic in Redis: workers share one count), or
    None when the cache cannot count (logged; the sign-in is then not limited)."""
    try:
        return max(count_in_window(key, window) for key in keys)
    except Exception as exc:  # whatever the cache backend raises: fail open, logged
        count_failed("LOGIN_RATE_LIMIT", exc)
        return None


def _uncount(keys: list[str]) -> None:
    for key in keys:
        try:
            uncount(key)
        except Exception as exc:  # the cache went away since the count
            count_failed("LOGIN_RATE_LIMIT", exc)
            return


def _refused(retry_after: int) -> HttpResponse:
    minutes = math.ceil(retry_after / 60)
    response = HttpResponse(
        "Too many failed sign-ins from your network or for this username. "
        f"Please try again in {minutes} minute{'s' if minutes != 1 else ''}.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


def limit_sign_ins(view):
    """``view`` (a sign-in page) with its POSTs limited as the module says."""

    @wraps(view)
    def limited(request, *args, **kwargs):
        rate = parse_rate(settings.LOGIN_RATE_LIMIT) if request.method == "POST" else None
        if rate is None:
            return view(request, *args, **kwargs)
        allowed, window = rate
        now = time.time()
        keys = _keys(request, window, now)
        count = _count(keys, window)
        if count is not None and count > allowed:
            return _refused(math.ceil(window - now % window))
        response = view(request, *args, **kwargs)
        if count is not None and response.status_code in (301, 302, 303) and request.user.is_authenticated:
            _uncount(keys)  # signed in: this attempt was no guess
        return response

    return limited


class RepLoginView(auth_views.LoginView):
    """The reps' sign-in; a signed-in rep is sent on (``next``, else ``LOGIN_REDIRECT_URL``). A ``next``
    naming this page itself (a forwarded or bookmarked sign-in link) is no destination: Django raised
    "Redirection loop for authenticated user detected" (a 500) for it."""

    redirect_authenticated_user = True

    def get_redirect_url(self):
        url = super().get_redirect_url()
        return "" if url and urlsplit(url).path == self.request.path else url


rep_login = limit_sign_ins(RepLoginView.as_view())
admin_login = limit_sign_ins(admin.site.login)
