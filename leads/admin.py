"""Admin for routing rules (ordered per meeting type, with a "test this rule set" page, and inline on the
meeting type), leads (read-only, plus "route by hand" with a reason code: ``leads.manual``; deleted with
their outbox rows: ``leads.services.leads_delete``), accounts and score models. Rules are validated by the
same code the router runs (``leads.rules_core``)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from rest_framework import serializers

from booking.admin_deletion import RefusedDeletionMixin
from booking.api.serializers import validate_answers
from booking.errors import BookingError
from booking.models import Booking, MeetingType
from config.admin_guards import SafeChangeListMixin
from leads import selectors
from leads.accounts import account_domain_problem
from leads.manual import lead_moves_booking, lead_pool, lead_route_by_hand
from leads.models import Account, Lead, PoolPerformance, RoutingRule, ScoreModel
from leads.rules_core import normalize_domain
from leads.services import LeadsDeleted, lead_evaluate, leads_delete
from routing.admin_parts import JSONBox
from routing.models import Rep
from routing.overrides import OverrideCode, override_problems
from routing.validators import known_timezones

RULE_FIELDS = (
    "order",
    "name",
    "active",
    "conditions",
    "outcome",
    "pool",
    "required_skills",
    "fallback_pool",
    "fallback_after_days",
    "disqualify_message",
)


class RoutingRuleInlineForm(forms.ModelForm):
    """A cleared JSON box means "none" (``{}``), not SQL NULL."""

    class Meta:
        model = RoutingRule
        fields = RULE_FIELDS
        field_classes = {"conditions": JSONBox, "required_skills": JSONBox}

    def clean_conditions(self):
        return self.cleaned_data.get("conditions") or {}

    def clean_required_skills(self):
        return self.cleaned_data.get("required_skills") or {}


class RoutingRuleForm(RoutingRuleInlineForm):
    """The rule's own page: the inline's form with the meeting type (a cleared box was a 500 here)."""

    class Meta(RoutingRuleInlineForm.Meta):
        fields = ("meeting_type", *RULE_FIELDS)


class RoutingRuleInline(admin.TabularInline):
    """The meeting type's routing rules on its admin page (``booking.admin.MeetingTypeAdmin``), tried in
    ``order`` (first match wins), validated on save like the standalone rules admin."""

    model = RoutingRule
    form = RoutingRuleInlineForm
    extra = 0
    ordering = ("order", "pk")
    fields = RULE_FIELDS
    formfield_overrides = {
        models.JSONField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 36})},
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 24})},
    }
    show_change_link = True

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """The pool drop-downs' choices, read once per request: Django reads the pool table for every row's
        every drop-down otherwise (two queries per rule). The field's queryset still checks a posted pool."""
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name in ("pool", "fallback_pool"):
            cache = request.__dict__.setdefault("_routing_rule_pool_choices", {})
            if db_field.name not in cache:
                cache[db_field.name] = list(formfield.choices)
            formfield.choices = cache[db_field.name]  # kept by each row's copy of the field
        return formfield


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ["name", "meeting_type", "order", "outcome", "pool", "fallback_pool", "active"]
    # both pools are nullable, so Django does not join them on its own: two queries per row without them
    list_select_related = ["meeting_type", "pool", "fallback_pool"]
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
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"{label}: not valid JSON ({exc.msg}).") from None
    except (ValueError, RecursionError):  # a number of more than 4,300 digits; nesting beyond the reader
        raise forms.ValidationError(f"{label}: not valid JSON.") from None
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

    def clean(self):
        """The answers as the route API cleans them (``validate_answers``: unknown keys refused, blanks
        dropped, an unticked box kept as false), so the tester shows what a live submission gets."""
        data = super().clean()
        meeting_type, answers = data.get("meeting_type"), data.get("answers")
        if meeting_type is not None and answers is not None:
            try:
                data["answers"] = validate_answers(meeting_type.questions or [], answers)
            except serializers.ValidationError as exc:
                problems = exc.detail if isinstance(exc.detail, dict) else {"": exc.detail}
                for key, messages in problems.items():
                    self.add_error("answers", f"{key}: {' '.join(str(m) for m in messages)}")
        return data


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


class LeadRouteForm(forms.Form):
    rep = forms.ModelChoiceField(queryset=Rep.objects.none(), label="Route to")
    code = forms.ChoiceField(
        choices=OverrideCode.choices,
        initial=OverrideCode.OTHER,
        label="Reason code",
        help_text="Decides whether the override counts for fairness (account owner: it does not)",
    )
    note = forms.CharField(
        max_length=300,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required for 'other'",
    )

    def __init__(self, *args, lead: Lead, **kwargs):
        super().__init__(*args, **kwargs)
        pool = lead_pool(lead)
        self.fields["rep"].queryset = Rep.objects.filter(
            memberships__pool=pool, memberships__active=True, active=True
        ).order_by("name")

    def clean(self):
        data = super().clean()
        for field, problems in override_problems(data.get("code") or "", data.get("note") or "").items():
            self.add_error("note" if field == "reason" else field, problems)
        return data


@admin.register(Lead)
class LeadAdmin(RefusedDeletionMixin, SafeChangeListMixin, admin.ModelAdmin):
    list_display = ["email", "meeting_type", "outcome", "matched_rule", "pool", "score", "booking"]
    # nullable links are not joined by Django on its own: four queries per row without them
    list_select_related = ["meeting_type", "matched_rule", "pool", "booking__meeting_type"]
    list_filter = ["outcome", "meeting_type"]
    search_fields = ["email", "name", "domain"]
    date_hierarchy = "created_at"
    actions = ["route_by_hand_action"]

    def get_readonly_fields(self, request, obj=None):
        # the link only for those the route page lets in (``_may_route``): a 403 else
        link = ["route_by_hand_link"] if self._may_route(request, obj) else []
        return [f.name for f in self.model._meta.fields] + link

    def _may_route(self, request, lead: Lead | None) -> bool:
        """The route page's permission: the lead's change permission and, for a lead whose confirmed booking
        it reassigns (``lead_moves_booking``), the bookings' change permission too, which the booking's own
        reassign page asks for: a user who may change only leads moves no rep's meeting."""
        if not self.has_change_permission(request, lead):
            return False
        return lead is None or not lead_moves_booking(lead) or _may_change_bookings(request)

    def has_add_permission(self, request):
        return False

    # deleting (an erasure request) goes through ``leads_delete``, which takes the leads' outbox rows along
    def delete_model(self, request, obj):
        self._deleted(request, leads_delete(lead_ids=[obj.pk]))

    def delete_queryset(self, request, queryset):
        self._deleted(request, leads_delete(lead_ids=queryset.values_list("pk", flat=True)))

    def _deleted(self, request, result: LeadsDeleted) -> None:
        if result.sent:
            self.message_user(
                request,
                f"Already sent to the nurture webhook before the deletion: {', '.join(result.sent)}. "
                "Erase them in the receiving tool too.",
                messages.WARNING,
            )

    @admin.display(description="route by hand")
    def route_by_hand_link(self, obj: Lead) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:leads_lead_route", args=[obj.pk])
        return format_html('<a href="{}">Route this lead by hand with a reason code…</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.route_view)
        return [path("<path:object_id>/route/", view, name="leads_lead_route"), *super().get_urls()]

    def route_view(self, request, object_id):
        # the admin's own lookup: an id that is no number ("abc", a truncated link) is a 404, where
        # get_object_or_404(pk="abc") raised ValueError (a 500)
        lead = self.get_object(request, object_id)
        if lead is None:
            raise Http404("No lead with this id.")
        if not self._may_route(request, lead):
            raise PermissionDenied
        form = LeadRouteForm(request.POST or None, lead=lead)
        if request.method == "POST" and form.is_valid():
            try:
                lead_route_by_hand(
                    lead_id=lead.pk,
                    rep_id=form.cleaned_data["rep"].pk,
                    code=form.cleaned_data["code"],
                    note=form.cleaned_data["note"],
                    actor=request.user.get_username(),
                    may_move_booking=_may_change_bookings(request),  # a booking made meanwhile too
                )
            except BookingError as exc:
                form.add_error(None, exc.detail)
            else:
                self.message_user(request, f"Routed to {form.cleaned_data['rep'].name}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:leads_lead_change", args=[lead.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Route by hand: {lead.email}",
            "lead": lead,
            "pool": lead_pool(lead),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/leads/lead/route.html", context)

    @admin.action(description="Route the selected lead by hand…", permissions=["change"])
    def route_by_hand_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one lead.", messages.WARNING)
            return None
        lead = queryset.get()
        if not self._may_route(request, lead):
            message = "Routing this lead moves its booking: that needs the permission to change bookings."
            self.message_user(request, message, messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:leads_lead_route", args=[lead.pk]))


def _may_change_bookings(request) -> bool:
    opts = Booking._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")


class AccountForm(forms.ModelForm):
    """The domain as the importer stores it (``leads.accounts``): normalised, so that leads find the
    account (``Bücher.de`` is stored as ``xn--bcher-kva.de``, the form e-mail domains are compared in), and
    refused as the importer refuses it (not a domain, free-mail)."""

    class Meta:
        model = Account
        fields = ("domain", "name", "crm_id", "owner", "learned")

    def clean_domain(self):
        domain = normalize_domain(self.cleaned_data.get("domain") or "")
        problem = account_domain_problem(domain)
        if problem:
            raise forms.ValidationError(problem)
        return domain


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = ["domain", "name", "crm_id", "owner", "learned", "updated_at"]
    list_select_related = ["owner"]
    list_filter = ["learned", "owner"]
    search_fields = ["domain", "name", "crm_id"]
    autocomplete_fields = ["owner"]


class ScoreModelForm(forms.ModelForm):
    """A cleared points box means no points (``[]``), not SQL NULL (an IntegrityError before)."""

    class Meta:
        model = ScoreModel
        fields = ("meeting_type", "points")
        field_classes = {"points": JSONBox}

    def clean_points(self):
        return self.cleaned_data.get("points") or []


@admin.register(ScoreModel)
class ScoreModelAdmin(admin.ModelAdmin):
    form = ScoreModelForm
    list_display = ["meeting_type"]


@admin.register(PoolPerformance)
class PoolPerformanceAdmin(admin.ModelAdmin):
    list_display = ["pool", "enabled", "strength", "floor", "window_days", "prior_outcomes"]
