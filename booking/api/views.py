"""Booking API views (thin: validate, call a selector or service, render)."""

from __future__ import annotations

import copy
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from booking import selectors
from booking.api import serializers as s
from booking.api.parsers import SafeJSONParser
from booking.api.schema import idempotency_key_header
from booking.api.throttles import BookingRateThrottle, ReadRateThrottle
from booking.errors import InvalidInput, MeetingTypeNotFound
from booking.models import HOST_ORDER, BookingHost
from booking.presenters import booking_body
from booking.services import (
    booking_cancel,
    booking_create,
    booking_outcome_record,
    booking_replay,
    booking_reschedule,
)

E = OpenApiResponse(s.ErrorSerializer)
TOKEN = OpenApiParameter(
    "token", str, OpenApiParameter.PATH, description="The manage token from the creation"
)


class PublicAPIView(APIView):
    parser_classes = [SafeJSONParser]
    throttle_classes = [BookingRateThrottle, ReadRateThrottle]


def _validated(serializer_class, data, **context):
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class MeetingTypeList(PublicAPIView):
    @extend_schema(operation_id="meeting_types_list", responses={200: s.MeetingTypeSerializer(many=True)})
    def get(self, request):
        return Response(s.MeetingTypeSerializer(selectors.meeting_types_active(), many=True).data)


class MeetingTypeDetail(PublicAPIView):
    @extend_schema(operation_id="meeting_types_retrieve", responses={200: s.MeetingTypeSerializer, 404: E})
    def get(self, request, slug):
        return Response(s.MeetingTypeSerializer(selectors.meeting_type_get(slug)).data)


class SlotList(PublicAPIView):
    @extend_schema(
        operation_id="meeting_types_slots",
        parameters=[s.SlotsQuerySerializer],
        responses={200: s.SlotsResponseSerializer, 400: E, 404: E},
        description="Offered start times on the local dates `start` … `end` (inclusive, at most "
        f"{selectors.MAX_SLOT_DAYS} days) in `timezone`; default: today and the next 6 days.",
    )
    def get(self, request, slug):
        meeting_type = selectors.meeting_type_get(slug)
        query = _validated(s.SlotsQuerySerializer, request.query_params, meeting_type=meeting_type)
        zone = ZoneInfo(query["timezone"])
        now = timezone.now()
        first, last = _days(query, zone, now)
        starts = selectors.slots_for_days(
            meeting_type, start=first, end=last, zone=zone, now=now, route=query.get("route")
        )
        return _slots(starts, meeting_type, zone, first, last)


def _days(query: dict, zone: ZoneInfo, now) -> tuple:
    """The local dates asked for: ``start`` (default today) to ``end`` (default a week), within bounds."""
    first = query.get("start") or now.astimezone(zone).date()
    last = query.get("end") or first + timedelta(days=selectors.DEFAULT_SLOT_DAYS - 1)
    if last < first:
        raise InvalidInput({"end": ["The end date is before the start date."]})
    if (last - first).days + 1 > selectors.MAX_SLOT_DAYS:
        raise InvalidInput({"end": [f"At most {selectors.MAX_SLOT_DAYS} days per request."]})
    return first, last


def _slots(starts, meeting_type, zone: ZoneInfo, first, last) -> Response:
    """The slots answer; ``starts`` are already in ``zone``."""
    length = timedelta(minutes=meeting_type.duration_minutes)
    # the end is the start plus the duration in UTC: added to the wall clock, a slot in the repeated hour of
    # the night the clocks go back lasted 90 minutes, or ended before it began
    slots = [
        {"start": t.isoformat(), "end": (t.astimezone(UTC) + length).astimezone(zone).isoformat()}
        for t in starts
    ]
    body = {"timezone": zone.key, "start": first.isoformat(), "end": last.isoformat(), "slots": slots}
    return Response(body, headers={"Cache-Control": "no-store"})


class BookingSlotList(PublicAPIView):
    @extend_schema(
        operation_id="bookings_slots",
        parameters=[TOKEN, s.RescheduleSlotsQuerySerializer],
        responses={200: s.SlotsResponseSerializer, 400: E, 404: E, 409: E},
        description="The start times this booking can be rescheduled to, on the local dates `start` … `end` "
        f"(inclusive, at most {selectors.MAX_SLOT_DAYS} days) in `timezone`: where its host(s) are free "
        "(its own time not counting; the reschedule keeps them) and where its pool offers a time (the "
        "reschedule routes it again). 409 for a cancelled or started booking.",
    )
    def get(self, request, token):
        booking = selectors.booking_by_token(token)
        query = _validated(s.RescheduleSlotsQuerySerializer, request.query_params)
        zone = ZoneInfo(query.get("timezone") or booking.prospect_timezone)
        now = timezone.now()
        selectors.booking_changeable(booking, now=now)
        first, last = _days(query, zone, now)
        window = selectors.local_day_window(first, last, zone)
        starts = [t.astimezone(zone) for t in selectors.reschedule_slots(booking, window, now=now)]
        return _slots(starts, booking.meeting_type, zone, first, last)


class BookingCreate(PublicAPIView):
    @extend_schema(
        operation_id="bookings_create",
        request=s.BookingCreateSerializer,
        parameters=[
            idempotency_key_header(
                "Replays the first response (same body only) for BOOKING_IDEMPOTENCY_TTL_HOURS, default 24 h"
            )
        ],
        responses={201: s.BookingResponseSerializer, 400: E, 404: E, 409: E, 422: E, 429: E},
    )
    def post(self, request, slug):
        key = request.headers.get("Idempotency-Key")
        try:
            meeting_type = selectors.meeting_type_get(slug)
            data = _validated(s.BookingCreateSerializer, request.data, meeting_type=meeting_type)
        except (MeetingTypeNotFound, ValidationError):
            # a retry of a booking made before an admin deactivated the meeting type or changed its
            # questions replays the booking's response; anything else is refused as it was
            replayed = None
            if key is not None:
                replayed = booking_replay(
                    slug=slug, idempotency_key=key, requests=lambda found: _as_first_sent(request, found)
                )
            if replayed is None:
                raise
            result = replayed
        else:
            result = booking_create(meeting_type=meeting_type, idempotency_key=key, **data)
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        return Response(result.body, status=result.status_code, headers=headers)


def _as_first_sent(request, meeting_type):
    """The booking request validated as it may have been when it was first sent, for ``booking_replay``:
    against the meeting type's questions now (an inactive type's are unchanged), and against questions that
    take its answers as they were sent (``_questions_answered``: the questions were changed since). Its
    route token may have expired since (``replay``: resolved regardless of its age; the key outlives it):
    the request is only compared with the stored one, and one that booked nothing is refused as it was."""
    for data in validated_as_first_sent(request.data, meeting_type, s.BookingCreateSerializer, replay=True):
        yield {**data, "meeting_type": meeting_type}


def validated_as_first_sent(data, meeting_type, serializer_class, **context):
    """``data`` validated by ``serializer_class`` against the meeting type's questions now, then against
    questions that take its answers as they were sent (``_questions_answered``): each way it is valid, for a
    keyed retry's replay (the booking's, the instant route's) after the questions changed."""
    for questions in (meeting_type.questions or [], _questions_answered(data)):
        as_then = copy.copy(meeting_type)
        as_then.questions = questions
        serializer = serializer_class(data=data, context={"meeting_type": as_then, **context})
        if serializer.is_valid():
            yield serializer.validated_data


def _questions_answered(data) -> list[dict]:
    """Optional questions that take ``data``'s answers as they were sent, each by the type of its answer:
    validated against them, the answers are cleaned as a meeting type's own questions cleaned them
    (``serializers.validate_answers``: blank answers left out, text stripped), which the request's hash
    covers. An answer no question could take (an object) stays refused."""
    answers = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(answers, dict):
        return []
    questions = []
    for key, value in answers.items():
        question = {"key": key, "type": "text"}  # text refuses what is not a string
        if isinstance(value, bool):
            question["type"] = "checkbox"
        elif isinstance(value, int | float):
            question["type"] = "number"
        elif isinstance(value, str):
            question["type"] = "textarea"
        elif isinstance(value, list):
            question.update(type="multiselect", options=[v for v in value if isinstance(v, str)])
        questions.append(question)
    return questions


def _active_hosts(booking):
    rows = BookingHost.objects.filter(booking=booking).select_related("rep").order_by(*HOST_ORDER)
    active = [h for h in rows if h.active] or [
        h for h in rows if h.released == BookingHost.Released.CANCELLED
    ]
    return [{"name": h.rep.name, "email": h.rep.email, "role": h.role} for h in active]


class BookingDetail(PublicAPIView):
    @extend_schema(
        operation_id="bookings_retrieve",
        parameters=[TOKEN, s.BookingTimezoneQuerySerializer],
        responses={200: s.BookingResponseSerializer, 400: E, 404: E},
    )
    def get(self, request, token):
        booking = selectors.booking_by_token(token)
        zone = _validated(s.BookingTimezoneQuerySerializer, request.query_params).get("timezone")
        return Response(booking_body(booking, _active_hosts(booking), zone=zone, now=timezone.now()))


class BookingCancel(PublicAPIView):
    @extend_schema(
        operation_id="bookings_cancel",
        parameters=[TOKEN],
        request=s.CancelSerializer,
        responses={200: s.BookingResponseSerializer, 400: E, 404: E, 409: E, 429: E},
    )
    def post(self, request, token):
        selectors.booking_by_token(token)  # 404 before validating the body
        data = _validated(s.CancelSerializer, request.data)
        return Response(booking_cancel(token=token, reason=data["reason"]))


class BookingReschedule(PublicAPIView):
    @extend_schema(
        operation_id="bookings_reschedule",
        parameters=[TOKEN],
        request=s.RescheduleSerializer,
        responses={200: s.BookingResponseSerializer, 400: E, 404: E, 409: E, 429: E},
    )
    def post(self, request, token):
        selectors.booking_by_token(token)
        data = _validated(s.RescheduleSerializer, request.data)
        return Response(booking_reschedule(token=token, start=data["start"], zone=data.get("timezone")))


class BookingOutcomeRecord(APIView):
    """Staff (or a host of the booking, via its linked Django user) record what came of a meeting.

    Session authentication (the admin login) with DRF's CSRF check; anyone else gets 403 (not logged in)
    or 404 (not staff and not a host, or no such booking)."""

    parser_classes = [SafeJSONParser]
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="bookings_outcome_record",
        request=s.OutcomeSerializer,
        responses={
            200: s.OutcomeResponseSerializer,
            201: s.OutcomeResponseSerializer,
            400: E,
            403: E,
            404: E,
            409: E,
        },
        description="Record (or replace) the outcome of a booking whose start has passed. The booking "
        "becomes `no_show` for a no-show, `completed` otherwise. 201 on the first recording, 200 when it "
        "replaces an earlier one.",
    )
    def post(self, request, booking_id):
        booking = selectors.booking_for_outcome(booking_id, request.user)
        data = _validated(s.OutcomeSerializer, request.data)
        outcome = booking_outcome_record(booking=booking, user=request.user, **data)
        body = {
            "booking_id": booking.pk,
            "booking_status": booking.status,
            "kind": outcome.kind,
            "amount": None if outcome.amount is None else str(outcome.amount),
            "note": outcome.note,
            "recorded_by": outcome.recorded_by.get_username() if outcome.recorded_by else None,
            "recorded_at": outcome.recorded_at.isoformat(),
            "replaced": outcome.replaced,
        }
        return Response(body, status=200 if outcome.replaced else 201)


class NotFoundView(APIView):
    """Unmatched paths under /api/v1/."""

    schema = None

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise NotFound()
