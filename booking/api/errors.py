"""The one DRF exception handler: every API error is ``{"code": …, "detail": …, …}``.

Field validation errors are ``400 {"code": "invalid", "detail": "Invalid input.", "errors": {field: [msg]}}``
(nested objects such as ``answers`` nest the same way).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from booking.errors import BookingError

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


def exception_handler(exc, context):
    if isinstance(exc, BookingError):
        return Response(exc.as_dict(), status=exc.status)
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
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"code": "invalid", "detail": "Invalid input.", "errors": errors}
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response
    code = next((c for cls, c in CODES.items() if isinstance(exc, cls)), "error")
    data = {"code": code, "detail": str(getattr(exc, "detail", "")) or "Error."}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        data["retry_after"] = int(response.get("Retry-After", exc.wait))  # as the header (was one more)
    response.data = data
    return response
