"""Forms of the rep's calendar page."""

from __future__ import annotations

from django import forms

from calendars.models import Calendar, CalendarConnection


class IcsFeedForm(forms.Form):
    url = forms.CharField(
        label="Secret iCal address",
        max_length=2000,
        help_text="The private .ics link of your calendar (https:// or webcal://). It is stored encrypted.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class CalendarRolesForm(forms.Form):
    """Which of the rep's calendars block availability, and which one receives bookings."""

    blocks = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    receives = forms.ChoiceField(required=False)

    def __init__(self, *args, calendars: list[Calendar], **kwargs):
        super().__init__(*args, **kwargs)
        self.calendars = {c.pk: c for c in calendars}
        self.fields["blocks"].choices = [(str(c.pk), c.name) for c in calendars]
        writable = [
            c for c in calendars if c.can_write and c.connection.provider != CalendarConnection.Provider.ICS
        ]
        self.fields["receives"].choices = [("", "None (invitations go by email)")] + [
            (str(c.pk), c.name) for c in writable
        ]

    def clean_blocks(self) -> set[int]:
        return {int(v) for v in self.cleaned_data["blocks"]}

    def clean_receives(self) -> int | None:
        value = self.cleaned_data.get("receives")
        return int(value) if value else None
