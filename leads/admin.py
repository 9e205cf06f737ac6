"""Admin for routing rules (ordered per meeting type, with a "test this rule set" page), leads (read-only),
accounts and score models. Rules are validated by the same code the router runs (``leads.rules_core``)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from booking.models import MeetingType
from leads import selectors
from leads.models import Account, Lead, PoolPerformance, RoutingRule, ScoreModel
from leads.services import lead_evaluate
from routing.models import Rep
from routing.validators import known_timezones


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "meeting_type", "order", "outcome", "pool", "fallback_pool", "active"]
    list_editable = ["order", "active"]
    list_filter = ["meeting_type", "outcome", "active"]
    ordering = ["meeting_type", "order", "pk"]
    search_fields = ["name"]
    change_list_template = "admin/leads/routingrule/change_list.html"

    def get_urls(self):
        tester = self.admin_site.admin_view(self.tester_view)
        return [path("tester/", tester, name="leads_routingrule_tester"), *super().get_urls()]

    def tester_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = RuleTesterForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = _tester_result(form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "title": "Test this rule set",
            "opts": self.model._meta,
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/leads/routingrule/tester.html", context)


def _json_object(value: str, label: str) -> dict:
    try:
        data = json.loads(value or "{}")
    except ValueError as exc:
        raise forms.ValidationError(f"{label}: not valid JSON ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise forms.ValidationError(f"{label}: expected a JSON object.")
    return data


class RuleTesterForm(forms.Form):
    meeting_type = forms.ModelChoiceField(MeetingType.objects.order_by("title"))
    email = forms.EmailField(initial="pat@example.com")
    timezone = forms.CharField(initial="Europe/Berlin", max_length=64)
    country = forms.CharField(required=False, max_length=2, help_text="Blank: from the time zone")
    answers = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), initial="{}", required=False)
    utm = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), initial="{}", required=False)

    def clean_timezone(self):
        value = self.cleaned_data["timezone"]
        if value not in known_timezones():
            raise forms.ValidationError(f"{value!r} is not a known IANA time zone.")
        return value

    def clean_answers(self):
        return _json_object(self.cleaned_data.get("answers"), "answers")

    def clean_utm(self):
        return _json_object(self.cleaned_data.get("utm"), "utm")


def _tester_result(data: dict) -> dict:
    """The decision a submission would get (nothing is written) with the candidate reps' names."""
    meeting_type = data["meeting_type"]
    decision = lead_evaluate(
        meeting_type=meeting_type,
        email=data["email"],
        timezone=data["timezone"],
        answers=data["answers"],
        utm=data["utm"],
        country=data.get("country") or "",
        now=timezone.now(),
    )
    result = {"decision": decision, "record": json.dumps(decision.record, indent=2, default=str)}
    if decision.route is not None:
        ids = decision.route.rep_ids
        if ids is None:
            ids = selectors.member_rep_ids(decision.route.pool)
        result["pool"] = decision.route.pool
        result["reps"] = list(Rep.objects.filter(pk__in=ids).order_by("name"))
    return result


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ["email", "meeting_type", "outcome", "matched_rule", "pool", "score", "booking"]
    list_filter = ["outcome", "meeting_type"]
    search_fields = ["email", "name", "domain"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["domain", "name", "crm_id", "owner", "learned", "updated_at"]
    list_filter = ["learned", "owner"]
    search_fields = ["domain", "name", "crm_id"]
    autocomplete_fields = ["owner"]


@admin.register(ScoreModel)
class ScoreModelAdmin(admin.ModelAdmin):
    list_display = ["meeting_type"]


@admin.register(PoolPerformance)
class PoolPerformanceAdmin(admin.ModelAdmin):
    list_display = ["pool", "enabled", "strength", "floor", "window_days", "prior_outcomes"]
