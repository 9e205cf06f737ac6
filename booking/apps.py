from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate, pre_migrate


class BookingConfig(AppConfig):
    name = "booking"
    verbose_name = "Booking"

    def ready(self) -> None:
        from booking import checks, emails, triggers  # noqa: F401 (checks registers itself)
        from booking.outbox import register_handler
        from config import inprocess_beat

        emails.register()
        post_migrate.connect(triggers.on_post_migrate, sender=self, dispatch_uid="booking.triggers")
        pre_migrate.connect(triggers.on_pre_migrate, sender=self, dispatch_uid="booking.triggers.pre")
        # Other apps add outbox handlers via a module-level ``register(register_handler)`` in <app>/outbox.py
        for config in apps.get_app_configs():
            if config.name == self.name or find_spec(f"{config.name}.outbox") is None:
                continue
            module = import_module(f"{config.name}.outbox")
            if callable(getattr(module, "register", None)):
                module.register(register_handler)
        # Under ``make run`` (runserver, no broker) nothing else runs the periodic tasks: sweeps, ICS polls.
        inprocess_beat.maybe_start()
