"""Helpers for the migrations that create django-celery-beat ``PeriodicTask`` rows."""

from __future__ import annotations


def interval_schedule(IntervalSchedule, every: int, period: str):  # noqa: N803 (a historical model class)
    """An existing schedule of that interval, or a new one. django-celery-beat allows duplicates (the admin's
    "+" makes them), and ``get_or_create`` stopped the upgrade with MultipleObjectsReturned."""
    found = IntervalSchedule.objects.filter(every=every, period=period).order_by("pk").first()
    return found if found is not None else IntervalSchedule.objects.create(every=every, period=period)


def periodic_task(apps, *, name: str, task: str, every: int, period: str) -> None:
    """A migration's ``PeriodicTask`` named ``name`` running ``task`` every ``every`` ``period``, unless
    one of that name exists (an admin may have changed its schedule)."""
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")  # noqa: N806
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")  # noqa: N806
    schedule = interval_schedule(IntervalSchedule, every, period)
    defaults = {"task": task, "interval": schedule, "enabled": True}
    PeriodicTask.objects.get_or_create(name=name, defaults=defaults)
