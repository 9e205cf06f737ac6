from __future__ import annotations

from datetime import UTC, timedelta

from django import forms
from django.utils import timezone

from routing.models import Pool
from routing.validators import OUT_OF_RANGE, within_years

# A request must finish well within the web server's timeout (gunicorn's 30 s): 10,000 leads take ~11 s on the
# bench machine (README "Performance"); the dashboard's daily series grows with its period (10 years ~1 s).
MAX_SYNTHETIC_LEADS = 10_000
MAX_DASHBOARD_PERIOD = timedelta(days=3653)
MAX_CANDIDATE_BYTES = 2_000_000  # a candidate pool file (a whole config of 1,000 reps is ~1 MB)


class InstantField(forms.DateTimeField):
    """A date and time within the years the booking API accepts (at either end of Python's range the
    dashboard's and the simulator's day arithmetic overflowed), returned in UTC. A time without an offset is
    UTC, whatever the server's ``TIME_ZONE`` (Django's field reads it in that zone: New York moved every
    figure 5 h); one with an offset is that instant, turned into UTC (as ``simulate_routing`` takes its
    ``--start`` and ``--end``), so the figures' UTC days are the days of the period."""

    def to_python(self, value):
        with timezone.override(UTC):
            value = super().to_python(value)
        if value is not None and not within_years(value):
            raise forms.ValidationError(OUT_OF_RANGE, code="range")
        return None if value is None else value.astimezone(UTC)


class SimulatorForm(forms.Form):
    pool = forms.ModelChoiceField(queryset=Pool.objects.all(), to_field_name="slug")
    mode = forms.ChoiceField(
        choices=[("replay", "Replay recorded bookings"), ("synthetic", "Synthetic stream")]
    )
    start = InstantField(help_text="UTC, e.g. 2026-03-02 00:00")
    end = InstantField(required=False, help_text="Replay: end of the period (UTC)")
    rate = forms.FloatField(required=False, min_value=0.01, help_text="Synthetic: leads per hour")
    hours = forms.FloatField(required=False, min_value=1, max_value=24 * 92, help_text="Synthetic: hours")
    seed = forms.IntegerField(required=False, initial=1)
    candidate = forms.FileField(required=False, help_text="Candidate pool (YAML/JSON, import_config format)")

    def clean_candidate(self):
        upload = self.cleaned_data.get("candidate")
        if upload is not None and upload.size > MAX_CANDIDATE_BYTES:
            raise forms.ValidationError(f"At most {MAX_CANDIDATE_BYTES // 1_000_000} MB.")
        return upload

    def clean(self):
        data = super().clean()
        if data.get("mode") == "replay":
            if not data.get("end"):
                self.add_error("end", "Required for a replay.")
            elif data.get("start") and data["end"] <= data["start"]:
                self.add_error("end", "Must be after start.")
        elif data.get("mode") == "synthetic":
            for key in ("rate", "hours"):
                if not data.get(key):
                    self.add_error(key, "Required for a synthetic stream.")
            if data.get("rate") and data.get("hours") and data["rate"] * data["hours"] > MAX_SYNTHETIC_LEADS:
                self.add_error(
                    "rate",
                    f"At most {MAX_SYNTHETIC_LEADS:,} leads (rate × hours) here; "
                    "`manage.py simulate_routing` runs longer streams.",
                )
        return data


class DashboardForm(forms.Form):
    pool = forms.ModelChoiceField(queryset=Pool.objects.all(), to_field_name="slug")
    start = InstantField(help_text="UTC")
    end = InstantField(help_text="UTC, exclusive")
    table = forms.ChoiceField(
        required=False, choices=[(t, t) for t in ("", "funnel", "reps", "daily", "meetings", "unavailable")]
    )

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end"):
            if data["end"] <= data["start"]:
                self.add_error("end", "Must be after start.")
            elif data["end"] - data["start"] > MAX_DASHBOARD_PERIOD:
                self.add_error("end", f"At most {MAX_DASHBOARD_PERIOD.days:,} days (ten years).")
        return data
