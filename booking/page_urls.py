"""Prospect-facing pages: /book/<slug>, /manage/<token> (owned by the booking UI)."""

urlpatterns: list = []
