from __future__ import annotations

from django import forms

from routing.models import Pool


class SimulatorForm(forms.Form):
    pool = forms.ModelChoiceField(queryset=Pool.objects.all(), to_field_name="slug")
    mode = forms.ChoiceField(
        choices=[("replay", "Replay recorded bookings"), ("synthetic", "Synthetic stream")]
    )
    start = forms.DateTimeField(help_text="UTC, e.g. 2026-03-02 00:00")
    end = forms.DateTimeField(required=False, help_text="Replay: end of the period (UTC)")
    rate = forms.FloatField(required=False, min_value=0.01, help_text="Synthetic: leads per hour")
    hours = forms.FloatField(required=False, min_value=1, max_value=24 * 92, help_text="Synthetic: hours")
    seed = forms.IntegerField(required=False, initial=1)
    candidate = forms.FileField(required=False, help_text="Candidate pool (YAML/JSON, import_config format)")

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
        return data


class DashboardForm(forms.Form):
    pool = forms.ModelChoiceField(queryset=Pool.objects.all(), to_field_name="slug")
    start = forms.DateTimeField(help_text="UTC")
    end = forms.DateTimeField(help_text="UTC, exclusive")
    table = forms.ChoiceField(
        required=False, choices=[(t, t) for t in ("", "funnel", "reps", "daily", "meetings", "unavailable")]
    )

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", "Must be after start.")
        return data
