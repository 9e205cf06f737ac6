"""Provider push endpoints. They answer at once: the work is a queued sync (see services.watches)."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calendars.services import watches

MAX_VALIDATION_TOKEN = 4096


@csrf_exempt
@require_POST
def google(request: HttpRequest) -> HttpResponse:
    status = watches.google_notification(
        channel_id=request.headers.get("X-Goog-Channel-ID", ""),
        token=request.headers.get("X-Goog-Channel-Token", ""),
        state=request.headers.get("X-Goog-Resource-State", ""),
    )
    return HttpResponse(status=status)


@csrf_exempt
@require_POST
def microsoft(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("validationToken")
    if token is not None:  # subscription handshake: echo the decoded token as plain text, right away
        if len(token) > MAX_VALIDATION_TOKEN:
            return HttpResponse(status=400)
        return HttpResponse(token, content_type="text/plain; charset=utf-8", status=200)
    try:
        payload = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: brackets nested past the parser's depth
        return HttpResponse("invalid JSON", status=400, content_type="text/plain")
    if not isinstance(payload, dict) or not isinstance(payload.get("value", []), list):
        return HttpResponse("invalid payload", status=400, content_type="text/plain")
    watches.microsoft_notifications(payload=payload)
    return HttpResponse(status=202)
