"""Admin for meeting types, bookings (hosts, outcome and the routing decision, read-only), and the idempotency
rows (read-only); the outbox messages' admin is ``booking.admin_outbox``. Bookings change only through the
services: the reassign page calls ``booking.services.reassign.booking_reassign``, the outcome actions
``booking_outcome_record`` and the deletions ``booking.services.delete.bookings_delete`` (which refuses a
booking to be cancelled instead)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from booking import admin_outbox  # noqa: F401 (registers the outbox messages' admin)
from booking.admin_attention import NeedsAttentionFilter
from booking.admin_decision import render_decision
from booking.admin_deletion import RefusedDeletionMixin
from booking.embed import admin_embed_box
from booking.errors import BookingChanged, BookingError, OutcomeAlreadyRecorded
from booking.models import Booking, BookingHost, BookingOutcome, IdempotencyKey, MeetingType
from booking.presenters import answer_rows
from booking.services.delete import bookings_delete, still_active
from booking.services.outcomes import booking_outcome_record
from booking.services.reassign import booking_reassign
from config.admin_guards import SafeChangeListMixin
from leads.admin import RoutingRuleInline
from routing.admin_parts import CountedHistory, DeletedWithIt, JSONBox, warn_never_offered
from routing.configfile import validate_questions
from routing.models import PoolMember
from routing.overrides import OverrideCode, override_problems


class MeetingTypeForm(forms.ModelForm):
    class Meta:
        model = MeetingType
        fields = [f.name for f in MeetingType._meta.fields if f.editable and not f.auto_created]
        field_classes = {"questions": JSONBox}

    def clean_questions(self):
        value = self.cleaned_data.get("questions")
        problems = validate_questions(value if value is not None else [], "questions")
        if problems:
            raise forms.ValidationError(problems)
        return value or []


@admin.register(MeetingType)
class MeetingTypeAdmin(DeletedWithIt, admin.ModelAdmin):
    form = MeetingTypeForm
    inlines = [RoutingRuleInline]
    list_display = ("title", "slug", "pool", "duration_minutes", "slot_interval_minutes", "active", "links")
    list_filter = ("active", "location_kind", "pool__strategy", "pool")
    search_fields = ("title", "slug", "description", "pool__name")
    list_select_related = ("pool",)
    prepopulated_fields = {"slug": ("title",)}
    autocomplete_fields = ("pool",)
    readonly_fields = ("links", "embed_code")

    class Media:
        js = ("baton/admin-copy.js",)

    def save_related(self, request, form, formsets, change):
        """Saved with its rules: a warning if its pool can never offer it a time (its slot grid against
        the pool's zones, a group role without an active member: ``routing.reach``)."""
        super().save_related(request, form, formsets, change)
        warn_never_offered(request, [form.instance])

    @admin.display(description="copy embed code")
    def embed_code(self, obj: MeetingType) -> str:
        return admin_embed_box(obj) if obj.pk else "—"

    @admin.display(description="public links")
    def links(self, obj: MeetingType) -> str:
        if not obj.pk:
            return "—"
        return format_html(  # reverse(): under a sub-path (SCRIPT_NAME) the prefix is part of the link
            '<a href="{}">booking page</a> · <a href="{}">slots API</a>',
            reverse("booking-page", args=[obj.slug]),
            reverse("api-slots", args=[obj.slug]),
        )


class BookingHostInline(admin.TabularInline):
    model = BookingHost
    extra = 0
    can_delete = False
    fields = ("rep", "role", "active", "released", "assigned_at", "blocked_start", "blocked_end")
    readonly_fields = fields
    show_change_link = True

    def get_queryset(self, request):
        # each row shows its rep and a change link labelled ``str(BookingHost)``: joined, not a query a row
        return super().get_queryset(request).select_related("rep")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class BookingOutcomeInline(admin.StackedInline):
    """Read-only: outcomes are recorded through ``booking_outcome_record`` (the actions on the list)."""

    model = BookingOutcome
    extra = 0
    can_delete = False
    fields = ("kind", "amount", "note", "recorded_by", "recorded_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


STALE_PAGE = (
    "This booking changed since you opened this page: nothing was changed. The page now shows it as it is; "
    "check it and send the form again."
)


class ReassignForm(forms.Form):
    """The page carries what it showed: the booking's ``sequence`` and the host it replaces (hidden for a
    single host). A page opened before another change of the booking (another admin's reassignment, a
    reschedule) is refused ("reload it"), not applied to whoever hosts now (``booking_reassign``)."""

    to_member = forms.ModelChoiceField(queryset=PoolMember.objects.none(), label="New host")
    from_rep = forms.TypedChoiceField(coerce=int, label="Replace", required=False)
    sequence = forms.IntegerField(widget=forms.HiddenInput, required=False)
    code = forms.ChoiceField(
        choices=OverrideCode.choices,
        initial=OverrideCode.OTHER,
        required=False,
        label="Reason code",
        help_text="Decides whether the override counts for fairness (account owner: it does not)",
    )
    reason = forms.CharField(
        max_length=300,
        required=False,
        label="Note",
        widget=forms.Textarea(attrs={"rows": 3}),
        strip=True,
        help_text="Required for 'other'",
    )

    def __init__(self, *args, booking: Booking, **kwargs):
        super().__init__(*args, **kwargs)
        self.booking = booking
        self.stale = False  # the page was opened before the booking's last change (``clean``)
        self.fields["sequence"].initial = booking.sequence
        hosts = [h for h in booking.hosts.all() if h.active]
        current = {h.rep_id for h in hosts}
        self.fields["to_member"].queryset = (
            PoolMember.objects.filter(pool_id=booking.pool_id, active=True, rep__active=True)
            .exclude(rep_id__in=current)
            .select_related("rep", "pool")
        )
        self.fields["to_member"].label_from_instance = lambda m: (
            f"{m.rep.name}" + (f" ({m.role})" if m.role else "")
        )
        if len(hosts) <= 1:  # the host the page shows; the service refuses it if it hosts no more
            shown = hosts[0].rep_id if hosts else None
            self.fields["from_rep"] = forms.IntegerField(
                widget=forms.HiddenInput, required=False, initial=shown
            )
        else:
            self.fields["from_rep"].choices = [(h.rep_id, str(h)) for h in hosts]

    def clean(self):
        data = super().clean()
        seen = data.get("sequence")
        if seen is not None and seen != self.booking.sequence:  # (checked again under the booking's lock)
            self.stale = True
            raise forms.ValidationError(BookingChanged.default_detail)
        data["code"] = data.get("code") or OverrideCode.OTHER
        for field, problems in override_problems(data["code"], data.get("reason") or "").items():
            self.add_error(field, problems)
        return data


@admin.register(Booking)
class BookingAdmin(RefusedDeletionMixin, CountedHistory, SafeChangeListMixin, admin.ModelAdmin):
    list_display = ("start", "meeting_type", "prospect_name", "prospect_email", "status", "host_names")
    list_filter = (NeedsAttentionFilter, "status", "pool", "meeting_type", "start")
    search_fields = ("prospect_name", "prospect_email", "hosts__rep__name", "hosts__rep__email")
    list_select_related = ("meeting_type", "pool")
    date_hierarchy = "start"
    inlines = [BookingHostInline, BookingOutcomeInline]
    actions = ["reassign_action", "record_held", "record_no_show"]
    readonly_fields = (
        "meeting_type",
        "pool",
        "start",
        "end",
        "status",
        "prospect_name",
        "prospect_email",
        "prospect_timezone",
        "answers_display",
        "note",
        "utm",
        "sequence",
        "cancel_reason",
        "cancelled_at",
        "created_at",
        "updated_at",
        "routing_decision",
        "lead_score",
    )
    fieldsets = (
        (None, {"fields": ("meeting_type", "pool", "start", "end", "status", "sequence")}),
        ("Prospect", {"fields": ("prospect_name", "prospect_email", "prospect_timezone", "answers_display")}),
        ("Lead", {"fields": ("lead_score",)}),
        ("More", {"fields": ("note", "utm", "cancel_reason", "cancelled_at", "created_at", "updated_at")}),
        ("Routing decision", {"fields": ("routing_decision",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("hosts__rep")

    def has_add_permission(self, request) -> bool:
        return False  # bookings are made through the booking API / pages

    # Nothing on a booking's page is edited there (changes go through the services, which lock the row):
    # no Save buttons, and a POST writes no booking row (the read-only inlines save no unchanged form). A
    # Save wrote back the row as the page had read it, undoing a cancellation or reschedule made meanwhile.
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra = {"show_save": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        pass

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and still_active(obj, now=timezone.now()):
            return False  # cancel it: that tells the prospect and the hosts
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request):
        """A booking's host rows, outcome, ledger entries and calendar-event records are parts of it, deleted
        with it (``bookings_delete``) though none of them may be deleted on its own: they need no delete
        permission of their own (the caller checked the bookings'). A booking to be cancelled instead is
        listed as what stops the deletion. Host rows, ledger entries and calendar events are counted, not
        listed (``CountedHistory``): "Delete selected" ran a few queries per booking."""
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        now = timezone.now()
        protected = [
            *protected,
            *(f"{b} (confirmed, not over yet: cancel it)" for b in objs if still_active(b, now=now)),
        ]
        return deleted, counts, set(), protected

    def delete_model(self, request, obj):
        bookings_delete(booking_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        bookings_delete(booking_ids=queryset.values_list("pk", flat=True))

    @admin.display(description="hosts")
    def host_names(self, obj: Booking) -> str:
        return ", ".join(str(h) for h in obj.hosts.all() if h.active) or "—"

    @admin.display(description="answers")
    def answers_display(self, obj: Booking) -> str:
        if not obj.answers:
            return "—"
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", answer_rows(obj.meeting_type.questions, obj.answers)
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description="lead score")
    def lead_score(self, obj: Booking) -> str:
        lead = getattr(obj, "lead", None)  # the routed lead (leads.Lead.booking), if the page routed one
        return "—" if lead is None else f"{lead.score:g} (lead #{lead.pk})"

    @admin.display(description="routing decision")
    def routing_decision(self, obj: Booking) -> str:
        return render_decision(obj.decision or {})

    def get_urls(self):
        view = self.admin_site.admin_view(self.reassign_view)
        return [
            path("<path:object_id>/reassign/", view, name="booking_booking_reassign"),
            *super().get_urls(),
        ]

    def _reassign_form_now(self, request, booking: Booking) -> tuple[Booking, ReassignForm]:
        """The reassign form with the admin's choices as posted, over the booking as it is now (its sequence
        and host): a page refused as stale carries what it then shows, so sending it again can work."""
        booking = self.get_object(request, str(booking.pk)) or booking
        data = request.POST.copy()
        data["sequence"] = str(booking.sequence)
        data.pop("from_rep", None)
        form = ReassignForm(data, booking=booking)
        if isinstance(form.fields["from_rep"].widget, forms.HiddenInput):  # one host: the one it has now
            data["from_rep"] = (
                "" if form.fields["from_rep"].initial is None else str(form.fields["from_rep"].initial)
            )
            form = ReassignForm(data, booking=booking)
        form.is_valid()
        return booking, form

    def reassign_view(self, request, object_id):
        # the admin's own lookup: an id that is no number (a mistyped or stale link) is not found, not a 500
        booking = self.get_object(request, unquote(object_id))
        if booking is None:
            raise Http404("No such booking.")
        if not self.has_change_permission(request, booking):
            raise PermissionDenied
        form = ReassignForm(request.POST or None, booking=booking)
        valid = request.method == "POST" and form.is_valid()
        if form.stale:
            booking, form = self._reassign_form_now(request, booking)
            form.add_error(None, STALE_PAGE)
        elif valid:
            try:
                booking_reassign(
                    booking_id=booking.pk,
                    to_member_id=form.cleaned_data["to_member"].pk,
                    from_rep_id=form.cleaned_data.get("from_rep") or None,
                    expected_sequence=form.cleaned_data.get("sequence"),
                    reason=form.cleaned_data["reason"],
                    code=form.cleaned_data["code"],
                    actor=request.user.get_username(),
                )
            except BookingChanged:
                booking, form = self._reassign_form_now(request, booking)
                form.add_error(None, STALE_PAGE)
            except BookingError as exc:
                form.add_error(None, exc.detail)
            else:
                member = form.cleaned_data["to_member"]
                self.message_user(request, f"Reassigned to {member.rep.name}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:booking_booking_change", args=[booking.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reassign: {booking}",
            "booking": booking,
            "form": form,
            "opts": self.model._meta,
            "original": booking,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/booking/booking/reassign.html", context)

    @admin.action(description="Reassign the selected booking to another member…", permissions=["change"])
    def reassign_action(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one booking to reassign.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:booking_booking_reassign", args=[queryset.get().pk]))

    def _record(self, request, queryset, kind: str) -> None:
        """A bulk action records plain outcomes only where none is recorded: a booking recorded as won (with
        its amount), qualified, lost or already as ``kind`` (with its note) is left as it is and named (its
        own page replaces an outcome). The service looks under the booking's row lock (``keep_existing``): a
        deal recorded as won on the booking's page while the action runs stays won."""
        done, kept = 0, []
        for booking in queryset:
            try:
                booking_outcome_record(booking=booking, kind=kind, user=request.user, keep_existing=True)
                done += 1
            except OutcomeAlreadyRecorded as exc:
                kept.append(f"{booking} ({exc.kind})")
            except BookingError as exc:
                self.message_user(request, f"{booking}: {exc.detail}", messages.ERROR)
        if done:
            self.message_user(request, f"Recorded {kind} for {done} booking(s).", messages.SUCCESS)
        if kept:
            self.message_user(request, f"Already recorded, not changed: {'; '.join(kept)}.", messages.WARNING)

    @admin.action(description="Record outcome: held", permissions=["change"])
    def record_held(self, request, queryset):
        self._record(request, queryset, BookingOutcome.Kind.HELD)

    @admin.action(description="Record outcome: no-show", permissions=["change"])
    def record_no_show(self, request, queryset):
        self._record(request, queryset, BookingOutcome.Kind.NO_SHOW)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BookingHost)
class BookingHostAdmin(_ReadOnly):
    list_display = ("booking", "rep", "role", "active", "released", "assigned_at")
    list_filter = ("active", "released", "role")
    search_fields = ("rep__name", "rep__email", "booking__prospect_name", "booking__prospect_email")
    list_select_related = ("rep", "booking__meeting_type")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BookingOutcome)
class BookingOutcomeAdmin(_ReadOnly):
    list_display = ("booking", "kind", "amount", "recorded_by", "recorded_at")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the booking would stay completed / no-show with no outcome

    list_filter = ("kind", "recorded_at")
    search_fields = ("booking__prospect_name", "booking__prospect_email", "note")
    list_select_related = ("booking__meeting_type", "recorded_by")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(_ReadOnly):
    """Only hashes are stored; the sealed response is never shown."""

    list_display = ("__str__", "booking", "status_code", "created_at", "expires_at")
    list_select_related = ("booking__meeting_type",)
    list_filter = ("status_code", "created_at")
    fields = ("booking", "status_code", "created_at", "expires_at")
    search_fields = ("booking__prospect_email",)
