"""Forms of the rep's calendar page, and the admin's checks of weekly hours and date overrides."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from calendars.models import Calendar, CalendarConnection, DateOverride, Weekday, WorkingHours
from routing.core.localtime import ranges_overlap


def _day_problem(rows: list[tuple[dt.time | None, dt.time | None]]) -> str:
    """What is wrong with one day's rows (weekly hours or a date's overrides), or ''."""
    if any(s is None for s, _ in rows) and len(rows) > 1:
        return "a day off cannot have hours on the same date"
    return "the ranges overlap" if ranges_overlap([r for r in rows if r[0] is not None]) else ""


def _rows_by_day(forms_: Iterable[forms.Form], key: str) -> dict:
    days: dict = defaultdict(list)
    for form in forms_:
        data = getattr(form, "cleaned_data", None) or {}
        if not data or data.get("DELETE") or data.get(key) is None:
            continue
        if (data.get("start") is None) != (data.get("end") is None):
            continue  # the row's own check says what is missing
        days[data[key]].append((data.get("start"), data.get("end")))
    return days


class _DayRowsFormSet(BaseInlineFormSet):
    """The rep page's weekly hours or date overrides: one day's rows must not overlap (nor a day off
    come with hours), as in the config file, or the rep's setup could not be exported and imported."""

    key = ""

    def clean(self) -> None:
        super().clean()
        problems = []
        for day, rows in sorted(_rows_by_day(self.forms, self.key).items()):
            problem = _day_problem(rows)
            if problem:
                label = Weekday(day).label if self.key == "weekday" else day.isoformat()
                problems.append(f"{label}: {problem}.")
        if problems:
            raise ValidationError(problems)


class WorkingHoursFormSet(_DayRowsFormSet):
    key = "weekday"


class DateOverrideFormSet(_DayRowsFormSet):
    key = "date"


class _DayRowForm(forms.ModelForm):
    """One row on its own admin page: checked against the rep's other rows of that day."""

    key = ""

    def clean(self) -> dict:
        data = super().clean()
        rep, day = data.get("rep"), data.get(self.key)
        if rep is None or day is None or (data.get("start") is None) != (data.get("end") is None):
            return data
        others = self._meta.model.objects.filter(rep=rep, **{self.key: day}).exclude(pk=self.instance.pk)
        rows = [(data.get("start"), data.get("end")), *others.values_list("start", "end")]
        problem = _day_problem(rows)
        if problem:
            raise ValidationError(f"{problem} (with the rep's other rows of that day).")
        return data


class WorkingHoursForm(_DayRowForm):
    key = "weekday"

    class Meta:
        model = WorkingHours
        fields = ("rep", "weekday", "start", "end")


class DateOverrideForm(_DayRowForm):
    key = "date"

    class Meta:
        model = DateOverride
        fields = ("rep", "date", "start", "end")


class IcsFeedForm(forms.Form):
    url = forms.CharField(
        label="Secret iCal address",
        max_length=2000,
        help_text="The private .ics link of your calendar (https:// or webcal://). It is stored encrypted.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


def _label(calendar: Calendar) -> str:
    """A calendar's name with its account: two accounts' "Calendar" read alike."""
    account = calendar.connection.account_email or calendar.connection.get_provider_display()
    return f"{calendar.name or calendar.external_id[:60]} ({account})"


class CalendarRolesForm(forms.Form):
    """Which of the rep's calendars block availability, and which one receives bookings."""

    blocks = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    receives = forms.ChoiceField(required=False)

    def __init__(self, *args, calendars: list[Calendar], **kwargs):
        super().__init__(*args, **kwargs)
        self.calendars = {c.pk: c for c in calendars}
        self.fields["blocks"].choices = [(str(c.pk), _label(c)) for c in calendars]
        writable = [
            c for c in calendars if c.can_write and c.connection.provider != CalendarConnection.Provider.ICS
        ]
        self.fields["receives"].choices = [("", "None (invitations go by email)")] + [
            (str(c.pk), _label(c)) for c in writable
        ]

    def clean_blocks(self) -> set[int]:
        return {int(v) for v in self.cleaned_data["blocks"]}

    def clean_receives(self) -> int | None:
        value = self.cleaned_data.get("receives")
        return int(value) if value else None
