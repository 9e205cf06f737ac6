"""``POST /api/v1/meeting-types/<slug>/route``: qualify and route a prospect before the slots are shown.

Thin: validate with the booking API's own field rules, call ``leads.services.lead_route``, render.
``POST /api/v1/route``: the rep free right now for a lead (``leads.instant.instant_route``).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.validators import slug_re
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from booking import selectors as booking_selectors
from booking.api import serializers as s
from booking.api.schema import idempotency_key_header
from booking.api.views import PublicAPIView, _validated, validated_as_first_sent
from booking.errors import MeetingTypeNotFound
from leads.instant import instant_replay, instant_route
from leads.services import lead_route


class RouteRequestSerializer(serializers.Serializer):
    email = s.ProspectEmailField()
    name = serializers.CharField(max_length=200, min_length=1, validators=[s.one_line])
    timezone = s.TimezoneField(help_text="The prospect's IANA zone")
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$", required=False, default="", help_text="ISO 3166 alpha-2 (default: from timezone)"
    )
    answers = serializers.DictField(required=False, default=dict, help_text="Question key → answer")
    utm = serializers.DictField(
        child=serializers.CharField(max_length=200, allow_blank=True), required=False, default=dict
    )

    def validate_utm(self, value):
        return s.BookingCreateSerializer.validate_utm(self, value)

    def validate_answers(self, value):
        return s.validate_answers(self.context["meeting_type"].questions or [], value)


class RouteResponseSerializer(serializers.Serializer):
    disqualified = serializers.BooleanField()
    route = serializers.CharField(required=False, help_text="For ?route= and the booking body")
    rule = serializers.DictField(allow_null=True, required=False)
    message = serializers.CharField(required=False, help_text="Shown to a disqualified prospect")


class LeadRoute(PublicAPIView):
    @extend_schema(
        operation_id="meeting_types_route",
        request=RouteRequestSerializer,
        responses={
            200: RouteResponseSerializer,
            400: OpenApiResponse(s.ErrorSerializer),
            404: OpenApiResponse(s.ErrorSerializer, description="Unknown or inactive meeting type"),
        },
        description="Run the meeting type's routing rules for a prospect. Qualified: an opaque signed "
        "`route` token (expires) for the slots and booking APIs. Disqualified: the message to show; the "
        "lead is kept and handed to the nurture outbox.",
    )
    def post(self, request, slug):
        meeting_type = booking_selectors.meeting_type_get(slug)
        data = _validated(RouteRequestSerializer, request.data, meeting_type=meeting_type)
        result = lead_route(meeting_type=meeting_type, **data)
        rule = result.lead.matched_rule
        body = {
            "disqualified": result.disqualified,
            "rule": None if rule is None else {"id": rule.pk, "name": rule.name},
        }
        if result.disqualified:
            body["message"] = result.message
        else:
            body["route"] = result.token
        return Response(body, headers={"Cache-Control": "no-store"})


class InstantRouteRequestSerializer(RouteRequestSerializer):
    meeting_type = serializers.SlugField(max_length=100, help_text="The meeting type whose rules apply")
    name = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True, validators=[s.one_line]
    )
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Decide only; write nothing")

    def validate_meeting_type(self, value):
        if self.context["meeting_type"] is None:  # not a slug string (the view 404s an unknown slug)
            raise serializers.ValidationError("Enter the slug of a meeting type.")
        return value

    def validate_answers(self, value):
        return value if self.context["meeting_type"] is None else super().validate_answers(value)


class InstantRepSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    pool = serializers.CharField()


class InstantRouteResponseSerializer(serializers.Serializer):
    disqualified = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    lead_id = serializers.IntegerField(allow_null=True, help_text="Null for a dry run")
    rule = serializers.DictField(allow_null=True)
    rep = InstantRepSerializer(required=False, help_text="The rep to hand the lead to now")
    message = serializers.CharField(required=False, help_text="Shown to a disqualified prospect")
    decision = serializers.DictField(help_text="Rules tried, owner, skills, fallback, candidates and why")


class HasInstantRouteKey(BasePermission):
    """Instant routing names reps and who is busy, so it is for the customer's own systems (a phone system,
    a form backend), not for browsers: ``Authorization: Bearer <key>`` with a key from
    ``INSTANT_ROUTE_API_KEYS`` (compared in constant time). With no key configured the endpoint is off."""

    def has_permission(self, request, view) -> bool:
        keys = settings.INSTANT_ROUTE_API_KEYS
        if not keys:
            raise exceptions.PermissionDenied("Instant routing is off: set INSTANT_ROUTE_API_KEYS.")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise exceptions.NotAuthenticated("Send Authorization: Bearer <key> (INSTANT_ROUTE_API_KEYS).")
        given = given.strip().encode()
        if not any(hmac.compare_digest(given, key.encode()) for key in keys):
            raise exceptions.PermissionDenied("Unknown API key.")
        return True


class InstantRoute(PublicAPIView):
    permission_classes = [HasInstantRouteKey]

    def get_authenticate_header(self, request):  # a missing key is a 401 with this challenge
        return 'Bearer realm="baton"'

    def check_permissions(self, request):
        """Count the request against the client's POST limit before its key is checked, so that guessed
        keys are rate-limited too: DRF checks permissions before throttles, and every request with a wrong
        key (403) went uncounted. Over the limit is a 429, whatever the key."""
        super().check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request):
        """Done by ``check_permissions``, before the key check (a request is counted once)."""

    @extend_schema(
        operation_id="route_instant",
        request=InstantRouteRequestSerializer,
        auth=[{"instantRouteKey": []}],  # ``Authorization: Bearer <one of INSTANT_ROUTE_API_KEYS>``
        responses={
            200: InstantRouteResponseSerializer,
            400: OpenApiResponse(s.ErrorSerializer),
            401: OpenApiResponse(s.ErrorSerializer, description="No `Authorization: Bearer <key>`"),
            403: OpenApiResponse(s.ErrorSerializer, description="Unknown key, or no key configured"),
            404: OpenApiResponse(s.ErrorSerializer, description="Unknown meeting type"),
            409: OpenApiResponse(
                s.ErrorSerializer,
                description="`no_rep_available` (with `decision`); `try_again`: the pools stayed locked "
                "(other routes, an admin's change) for longer than BOOKING_LOCK_TIMEOUT_MS, nothing stored",
            ),
            422: OpenApiResponse(
                s.ErrorSerializer, description="`idempotency_key_reused`: the key came with another body"
            ),
        },
        parameters=[
            idempotency_key_header(
                "Without `dry_run`: replays the first response (same body only, header "
                "`Idempotent-Replayed: true`) for BOOKING_IDEMPOTENCY_TTL_HOURS, default 24 h"
            )
        ],
        description="Route a lead that needs a rep NOW (inbound call, form handed straight to a rep) with "
        "the meeting type's rules: the rep free at this instant (working hours, not busy, under the daily "
        "cap) in the pool's order. Without `dry_run` the lead and a fairness ledger entry are stored; a "
        "retry with the same `Idempotency-Key` stores nothing more.",
    )
    def post(self, request):
        slug = request.data.get("meeting_type") if isinstance(request.data, dict) else None
        found = isinstance(slug, str) and len(slug) <= 100 and slug_re.match(slug)
        key = request.headers.get("Idempotency-Key")
        try:
            meeting_type = booking_selectors.meeting_type_get(slug) if found else None  # unknown: 404
            data = _validated(InstantRouteRequestSerializer, request.data, meeting_type=meeting_type)
        except (MeetingTypeNotFound, exceptions.ValidationError):
            # a retry of a lead routed before an admin deactivated the meeting type or changed its
            # questions replays the route's response (as a booking's); anything else is refused as it was
            result = None
            if key is not None and found:
                result = instant_replay(
                    slug=slug, idempotency_key=key, requests=lambda then: _as_first_sent(request, then)
                )
            if result is None:
                raise
        else:
            data.pop("meeting_type")
            result = instant_route(meeting_type=meeting_type, idempotency_key=key, **data)
        headers = {"Cache-Control": "no-store"}
        if result.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(result.body, headers=headers)


def _as_first_sent(request, meeting_type):
    """The instant route request validated as it may have been when it was first sent, for
    ``instant_replay``: as ``booking.api.views._as_first_sent`` validates a booking's (the meeting type's
    questions now, and questions that take its answers as sent)."""
    return validated_as_first_sent(request.data, meeting_type, InstantRouteRequestSerializer)


urlpatterns = [
    path("meeting-types/<slug:slug>/route", LeadRoute.as_view(), name="api-lead-route"),
    path("route", InstantRoute.as_view(), name="api-instant-route"),
]
