"""The one DRF exception handler: every API error is ``{"code": …, "detail": …, …}``.

Field validation errors are ``400 {"code": "invalid", "detail": "Invalid input.", "errors": {field: [msg]}}``
(nested objects such as ``answers`` nest the same way). The database gone away or taking no writes for now
(a terminated connection, a failover to a read-only replica, a full disk: ``locking.is_unavailable``) is
``503 {"code": "unavailable", …}`` with ``Retry-After`` (``unavailable``). Any other unexpected exception is
``500 {"code": "server_error", …}``, logged as Django logs one (``server_error``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, JsonResponse
from django.utils.log import log_response
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from booking.errors import BookingError, ServiceUnavailable
from booking.services import locking
from routing.validators import SURROGATE, escape_surrogates

logger = logging.getLogger(__name__)

SERVER_ERROR = {"code": "server_error", "detail": "Something went wrong on the server."}

CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotAuthenticated: "not_authenticated",
}


def encodable(errors):
    """``errors`` with every lone surrogate in a key or message written as its escape (``\\ud83d``): the
    errors are keyed by the request's own keys (an unknown answer's, a UTM key's), and a lone surrogate,
    valid in JSON, cannot be encoded as UTF-8, so the answer to the request was a 500, not its 400."""
    if isinstance(errors, str):
        if not SURROGATE.search(errors):
            return errors  # as it is (an ``ErrorDetail`` keeps its code)
        return escape_surrogates(errors)
    if isinstance(errors, dict):
        return {encodable(key): encodable(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [encodable(item) for item in errors]
    return errors


def exception_handler(exc, context):
    if isinstance(exc, BookingError):
        return booking_error(exc)
    if locking.is_unavailable(exc):
        return unavailable(exc, context)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"code": "request_too_large", "detail": str(exc)}, status=413)
    elif isinstance(exc, SuspiciousOperation):
        return Response({"code": "malformed_request", "detail": str(exc) or "Bad request."}, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return server_error(exc, context)
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"code": "invalid", "detail": "Invalid input.", "errors": encodable(errors)}
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    code = next((c for cls, c in CODES.items() if isinstance(exc, cls)), "error")
    data = {"code": code, "detail": str(getattr(exc, "detail", "")) or "Error."}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        data["retry_after"] = int(response.get("Retry-After", exc.wait))  # as the header (was one more)
    response.data = data
    return response


def booking_error(exc: BookingError) -> Response:
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Response(exc.as_dict(), status=exc.status, headers=headers)


def unavailable(exc, context):
    """The answer to a database that went away or takes no writes for now (``locking.is_unavailable``):
    ``503 unavailable`` with ``Retry-After``, nothing having been written (the transaction is rolled back;
    a booking's retry with its Idempotency-Key books once). Logged once per request on this module's logger
    at ERROR, one line with the SQLSTATE and the database's message, no traceback: not through
    ``django.request``, whose ERRORs are mailed to ADMINS (a report per attempt of every client for as long
    as a failover lasts), and ``got_request_exception`` is not sent (an error tracker's report per attempt
    too); ``/readyz`` says meanwhile that the database cannot serve. With DEBUG as without: it is an answer
    of the API, not a crash."""
    set_rollback()
    request = getattr(context.get("request"), "_request", None)
    where = f"{request.method} {request.path}" if request is not None else "?"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    logger.error(
        "database unavailable, answered 503: %s (SQLSTATE %s, %s): %s",
        where,
        locking.sqlstate(exc) or "none",
        type(exc).__name__,
        first,
    )
    response = booking_error(ServiceUnavailable())
    response._has_been_logged = True  # Django would log the 503 again on django.request: mailed to ADMINS
    return response


def server_error(exc, context):
    """The answer to an exception nothing above knows (a database gone away): DRF re-raised it, and Django
    answered its HTML "Server Error (500)" page to clients that parse JSON. Logged first as Django logs
    one (``django.request``, ERROR, with the traceback), so ADMINS still get the redacted report
    (``config.logfilters``), and ``got_request_exception`` is sent as Django sends it (error trackers
    listen to it; the test client re-raises the exception). With DEBUG it is re-raised, for Django's debug
    page."""
    request = getattr(context.get("request"), "_request", None)
    if settings.DEBUG or request is None:
        return None
    set_rollback()  # as DRF does for the errors it answers (ATOMIC_REQUESTS)
    response = Response(SERVER_ERROR, status=500)
    log_response(
        "%s: %s", response.reason_phrase, request.path, response=response, request=request, exception=exc
    )
    got_request_exception.send(sender=None, request=request)
    return response


def _api(request) -> bool:
    return request.path_info.startswith("/api/")


def server_error_page(request):
    """Django's ``handler500``: for an exception raised around the API's views (a middleware: a session
    store gone away), where DRF's handler above does not run, API paths answer the same JSON; pages keep
    Django's HTML page."""
    if _api(request):
        return JsonResponse(SERVER_ERROR, status=500)
    return defaults.server_error(request)


# Django's other error handlers, for requests refused before (or outside) a DRF view: API paths answer
# JSON as DRF's handler above would, with its codes; pages keep Django's pages. The exception's own text is
# not echoed (Django's page does not show it either: "Invalid HTTP_HOST header: …" names the settings).


def bad_request_page(request, exception):
    """``handler400``: a ``SuspiciousOperation`` raised before the view (a Host not in ``ALLOWED_HOSTS``,
    too many fields, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``). Was Django's HTML "Bad Request (400)"."""
    if not _api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"code": "request_too_large", "detail": str(exception)}, status=413)
    return JsonResponse({"code": "malformed_request", "detail": "Bad request."}, status=400)


def permission_denied_page(request, exception):
    """``handler403``: a ``PermissionDenied`` raised outside a DRF view (a middleware)."""
    if not _api(request):
        return defaults.permission_denied(request, exception)
    detail = str(exceptions.PermissionDenied.default_detail)
    return JsonResponse({"code": "forbidden", "detail": detail}, status=403)


def page_not_found_page(request, exception):
    """``handler404``: a path under /api/ that no URL matches (``/api/v2/…``; /api/v1/'s own catch-all
    answers the same), or an ``Http404`` raised outside a DRF view."""
    if not _api(request):
        return defaults.page_not_found(request, exception)
    detail = str(exceptions.NotFound.default_detail)
    return JsonResponse({"code": "not_found", "detail": detail}, status=404)
