"""``POST /api/v1/meeting-types/<slug>/route``: qualify and route a prospect before the slots are shown.

Thin: validate with the booking API's own field rules, call ``leads.services.lead_route``, render.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from booking import selectors as booking_selectors
from booking.api import serializers as s
from booking.api.views import PublicAPIView, _validated
from leads.services import lead_route


class RouteRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200)
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
        responses={200: RouteResponseSerializer, 400: OpenApiResponse(s.ErrorSerializer)},
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


urlpatterns = [path("meeting-types/<slug:slug>/route", LeadRoute.as_view(), name="api-lead-route")]
