"""Booking API routes under /api/v1/ (owned by the booking API; see docs/booking-api.md)."""

from django.urls import path, re_path

from booking.api import views

urlpatterns = [
    path("meeting-types", views.MeetingTypeList.as_view(), name="api-meeting-types"),
    path("meeting-types/<slug:slug>", views.MeetingTypeDetail.as_view(), name="api-meeting-type"),
    path("meeting-types/<slug:slug>/slots", views.SlotList.as_view(), name="api-slots"),
    path("meeting-types/<slug:slug>/bookings", views.BookingCreate.as_view(), name="api-bookings-create"),
    path("bookings/<str:token>", views.BookingDetail.as_view(), name="api-booking"),
    path("bookings/<str:token>/cancel", views.BookingCancel.as_view(), name="api-booking-cancel"),
    path("bookings/<str:token>/reschedule", views.BookingReschedule.as_view(), name="api-booking-reschedule"),
    path("bookings/<str:token>/slots", views.BookingSlotList.as_view(), name="api-booking-slots"),
    path(
        "bookings/id/<int:booking_id>/outcome",
        views.BookingOutcomeRecord.as_view(),
        name="api-booking-outcome",
    ),
    # anything else under /api/v1/ is a JSON 404, like the endpoints' own
    re_path(r"^.*$", views.NotFoundView.as_view(), name="api-not-found"),
]
