"""Calendar connection pages and provider webhooks (owned by the calendars app)."""

from django.urls import path

from calendars import views, webhooks

app_name = "calendars"

urlpatterns = [
    path("", views.connections, name="connections"),
    path("roles", views.roles, name="roles"),
    path("connect/google", views.google_start, name="google_start"),
    path("oauth/google/callback", views.google_callback, name="google_callback"),
    path("connect/microsoft", views.microsoft_start, name="microsoft_start"),
    path("oauth/microsoft/callback", views.microsoft_callback, name="microsoft_callback"),
    path("connect/ics", views.ics_add, name="ics_add"),
    path("<int:connection_id>/refresh", views.refresh, name="refresh"),
    path("<int:connection_id>/disconnect", views.disconnect, name="disconnect"),
    path("webhooks/google", webhooks.google, name="webhook_google"),
    path("webhooks/microsoft", webhooks.microsoft, name="webhook_microsoft"),
]
