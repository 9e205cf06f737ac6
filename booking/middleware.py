"""Framing policy: nothing Baton serves may be framed, except the booking page in embed mode.

Django's ``XFrameOptionsMiddleware`` sends ``X-Frame-Options: DENY``; this middleware (listed after it, so
it sees the response first) adds the matching CSP ``frame-ancestors 'none'`` to every response, and for
``/book/…?embed=1`` HTML pages sends ``frame-ancestors 'self' <EMBED_ALLOWED_ORIGINS…>`` instead and marks
the response exempt from X-Frame-Options (which cannot express a list of origins).
"""

from __future__ import annotations

from django.conf import settings

CSP = "Content-Security-Policy"
EMBED_PREFIX = "/book/"
# Pages under /book/ that are never framed even with ?embed=1 (URL names).
NOT_EMBEDDABLE = {"booking-email-snippet", "booking-embed-demo"}


def is_embed_request(request) -> bool:
    """A GET/HEAD of a booking page asking for embed mode (``?embed=1``)."""
    match = getattr(request, "resolver_match", None)
    return (
        request.method in ("GET", "HEAD")
        and request.path_info.startswith(EMBED_PREFIX)
        and request.GET.get("embed") == "1"
        and match is not None
        and match.url_name not in NOT_EMBEDDABLE
    )


def frame_ancestors_for_embed() -> str:
    return " ".join(["'self'", *settings.EMBED_ALLOWED_ORIGINS])


def set_frame_ancestors(response, sources: str) -> None:
    """Set (or replace) the ``frame-ancestors`` directive of the response's CSP, keeping other directives.

    Only ASCII goes into the header: Django MIME-encodes a header value with any other character
    (``=?utf-8?b?…?=``), which no browser reads as a policy, and an embed page has no X-Frame-Options to
    fall back on. A source or directive that is not ASCII (an origin in Unicode set in the settings directly;
    ``env_origins`` writes hosts in their IDNA form) is left out rather than lose the whole policy."""
    directives = [
        d.strip()
        for d in response.headers.get(CSP, "").split(";")
        if d.strip() and d.isascii() and not d.strip().lower().startswith("frame-ancestors")
    ]
    ascii_sources = " ".join(source for source in sources.split() if source.isascii()) or "'none'"
    response.headers[CSP] = "; ".join([*directives, f"frame-ancestors {ascii_sources}"])


class FramingPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        html = response.headers.get("Content-Type", "").startswith("text/html")
        if html and is_embed_request(request):
            response.xframe_options_exempt = True
            response.headers.pop("X-Frame-Options", None)
            set_frame_ancestors(response, frame_ancestors_for_embed())
        elif getattr(response, "xframe_options_exempt", False):
            pass  # a view opted out of framing protection on purpose
        elif response.headers.get("X-Frame-Options", "").upper() == "SAMEORIGIN":
            set_frame_ancestors(response, "'self'")
        else:
            set_frame_ancestors(response, "'none'")
        return response
