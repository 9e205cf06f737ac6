"""``manage.py demo_admin``: create or update a superuser for the demo and print its login.

The password is ``baton-demo`` when DEBUG is on (the local demo), otherwise a fresh random one each run."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEBUG_PASSWORD = "baton-demo"  # noqa: S105 (only ever used with DEBUG on)


class Command(BaseCommand):
    help = "Create or update the demo superuser (default: admin) and print its login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@example.com")

    def handle(self, *args, username: str, email: str, **options):
        password = DEBUG_PASSWORD if settings.DEBUG else secrets.token_urlsafe(12)
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username, defaults={"email": email})
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} the demo admin."))
        self.stdout.write(f"  Admin: {settings.BASE_URL}/admin/")
        self.stdout.write(f"  Username: {username}")
        self.stdout.write(f"  Password: {password}")
