"""Prospect-facing pages: /book/<slug>, /manage/<token> (booking/pages.py), embedding (booking/embed.py)."""

from django.urls import path

from booking import embed, pages

urlpatterns = [
    path("book/<slug:slug>", pages.book, name="booking-page"),
    path("manage/<str:token>", pages.manage, name="booking-manage"),
    path("manage/<str:token>/confirmation", pages.manage_confirmation, name="booking-manage-confirmation"),
    path("manage/<str:token>/ics", pages.manage_ics, name="booking-manage-ics"),
    # Embedding (booking/embed.py): email-embedded slots and the widget demo host page.
    path("book/<slug:slug>/email-snippet", embed.email_snippet, name="booking-email-snippet"),
    path("book/<slug:slug>/embed-demo", embed.embed_demo, name="booking-embed-demo"),
]
