"""OpenAPI schema additions (drf-spectacular postprocessing hook and components)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter

RATE_LIMITED = {
    "description": "Too many requests from this address: `BOOKING_RATE_LIMIT` counts the POSTs, "
    "`API_READ_RATE_LIMIT` the GETs. `Retry-After` (and `retry_after` in the body) says when to ask again.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
}
UNTHROTTLED = ("/outcome",)  # the staff endpoint (session login) is not rate-limited


def rate_limit_responses(result, generator, request, public):
    """Every rate-limited operation of the public API lists its 429 (each view's throttles apply to every
    method, so listing it per operation by hand drifted: no GET had it)."""
    error = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path.endswith(UNTHROTTLED):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "429" not in responses:
                responses["429"] = {**RATE_LIMITED, "content": {"application/json": {"schema": error}}}
    return result


def idempotency_key_header(description: str) -> OpenApiParameter:
    """The optional ``Idempotency-Key`` request header (the booking POST's, the instant route's)."""
    return OpenApiParameter(
        "Idempotency-Key",
        {"type": "string", "minLength": 1, "maxLength": 255},  # printable characters (400 otherwise)
        OpenApiParameter.HEADER,
        required=False,
        description=description,
    )
