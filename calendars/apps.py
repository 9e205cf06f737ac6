from django.apps import AppConfig


class CalendarsConfig(AppConfig):
    name = "calendars"
    verbose_name = "Calendars"

    def ready(self) -> None:
        from calendars import admin_connections, checks, signals  # noqa: F401  (registers admin, checks, receivers)
