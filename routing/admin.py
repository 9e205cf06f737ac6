"""Admin for routing: reps (with their skills, hours, overrides and time off), pools with their members,
and the fairness ledger (read-only: it is the audit trail).

Members added, re-activated or moved here (to another pool or rep, or in a group pool to another role) join
through ``routing.services.pool_member_join`` (they start at the pool's mean load, those of one save all at
the same mean), and an edit of a member's ``adjustment`` is recorded as a manual ledger entry, exactly as
the services do it. A change of a pool's fairness settings (period, strategy, counting) or of a member's
weight keeps every member's standing (``routing.services.pool_keep_standings``): it applies from now on.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from calendars.admin import DateOverrideInline, TimeOffInline, WorkingHoursInline
from config.admin_guards import SafeChangeListMixin
from routing.admin_parts import DeletedWithIt, warn_never_offered
from routing.models import LedgerEntry, Pool, PoolMember, Rep, RepSkill
from routing.reach import meeting_types_of
from routing.services import (
    STANDING_SETTINGS,
    member_adjust,
    pool_keep_standings,
    pool_member_join,
    pool_standings,
    rep_rejoin,
)


class RepSkillInline(admin.TabularInline):
    model = RepSkill
    extra = 0
    fields = ("skill", "level")


class MembershipInline(admin.TabularInline):
    model = PoolMember
    fk_name = "rep"
    extra = 0
    fields = ("pool", "role", "rank", "weight", "daily_cap", "active", "adjustment")
    readonly_fields = fields
    can_delete = False
    show_change_link = True
    verbose_name_plural = "pool memberships (edit them on the pool)"

    def get_queryset(self, request):
        # each row shows its pool and a change link labelled by rep and pool: joined, not two queries a row
        return super().get_queryset(request).select_related("rep", "pool")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RowAutocompleteSelect(AutocompleteSelect):
    """An autocomplete box that shows the object its row already holds (``row_object``, set by the form)
    instead of looking the selected key up again: Django's box runs one query per row of an inline."""

    row_object = None

    def optgroups(self, name, value, attr=None):
        known = self.row_object
        selected = [str(v) for v in value if str(v) not in self.choices.field.empty_values]
        if known is None or selected != [str(known.pk)]:  # another choice posted: looked up as Django does
            return super().optgroups(name, value, attr)
        label = self.choices.field.label_from_instance(known)
        return [(None, [self.create_option(name, known.pk, label, True, 0)], 0)]


class PoolMemberInlineForm(forms.ModelForm):
    """A member row of the pool's page: its rep box shows the row's rep (joined by the inline's queryset)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.rep_id is not None:
            box = self.fields["rep"].widget
            getattr(box, "widget", box).row_object = self.instance.rep  # within the add/change links wrapper


class PoolMemberInline(admin.TabularInline):
    model = PoolMember
    form = PoolMemberInlineForm
    extra = 0
    fields = ("rep", "rank", "weight", "role", "daily_cap", "active", "adjustment")
    autocomplete_fields = ("rep",)

    def get_queryset(self, request):
        # each row's label names its rep and pool: joined, not two queries per member
        return super().get_queryset(request).select_related("rep", "pool")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "rep":  # the joined rep shows in its box: not one query per member
            kwargs["widget"] = RowAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _prepare_member(form, pool: Pool) -> tuple[bool, float]:
    """Before a member form of ``pool`` is saved: should it join at mean load, and which adjustment delta
    to record.

    The typed adjustment is put back to its stored value; the delta is applied by ``member_adjust``."""
    member = form.instance
    adding = member._state.adding
    # a row moved to another pool or rep is a new membership there: it starts afresh (the old pool's
    # adjustment and "joined" deltas stay behind: carried over, they skewed its count every period) and
    # joins at the mean load too; so does a member of a group pool given another role: fairness is counted
    # per role there, and with its old role's count it took every seat of the new role until caught up
    moves = {"pool", "rep", "role"} if pool.strategy == "group" else {"pool", "rep"}
    moved = not adding and bool(moves & set(form.changed_data))
    join = member.active and (adding or moved or "active" in form.changed_data)
    delta = 0.0
    if "adjustment" in form.changed_data or (adding and member.adjustment):
        old = 0.0 if adding else float(form.initial.get("adjustment") or 0.0)
        delta, member.adjustment = member.adjustment - old, old
    if moved:
        member.adjustment, member.joined_at = 0.0, timezone.now()
    return join, delta


def _standing_changes(form, formsets) -> list[str]:
    """What the pool's page changes that moves members' loads (``STANDING_SETTINGS``, weights of members
    kept), in words; empty: nothing."""
    pool = form.instance
    said = [
        f"{name.replace('_', ' ')} {form.initial.get(name)} → {getattr(pool, name)}"
        for name in sorted(STANDING_SETTINGS & set(form.changed_data))
    ]
    for formset in formsets:
        if formset.model is not PoolMember:
            continue
        deleted = set(formset.deleted_forms)
        for f in formset.forms:
            member = f.instance
            if f in deleted or member._state.adding or "weight" not in f.changed_data:
                continue
            said.append(f"weight of {member.rep.name} {f.initial.get('weight'):g} → {member.weight:g}")
    return said


def _after_member_saved(
    request, member: PoolMember, join: bool, delta: float, joining: Collection[int] = frozenset()
) -> None:
    """``joining``: ids of the members joining in the same save (``pool_member_join``)."""
    who = getattr(request.user, "username", "") or "admin"
    if join:
        reason = f"added, moved or re-activated by {who} in the admin"
        pool_member_join(member, reason=reason, joining=joining)
    if delta:
        member_adjust(member, delta=delta, reason=f"manual adjustment by {who} in the admin")


def _disconnect_calendars(rep_ids: list[int]) -> None:
    """A rep deleted: their calendar connections go as Disconnect takes them (push channels stopped first),
    not by the cascade alone, which left the channels pushing to Baton, unknown, for days."""
    from calendars.models import CalendarConnection  # calendars imports routing
    from calendars.services.connections import connection_delete

    for connection in CalendarConnection.objects.filter(rep_id__in=rep_ids):
        connection_delete(connection=connection)


@admin.register(Rep)
class RepAdmin(DeletedWithIt, admin.ModelAdmin):
    list_display = ("name", "email", "timezone", "active", "daily_cap", "pool_count")
    list_filter = ("active", "timezone", "pools", "skills__skill")
    search_fields = ("name", "email", "skills__skill")
    autocomplete_fields = ("user",)
    inlines = [RepSkillInline, WorkingHoursInline, DateOverrideInline, TimeOffInline, MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_pools=Count("memberships", distinct=True))

    @admin.display(description="pools", ordering="_pools")
    def pool_count(self, rep: Rep) -> int:
        return rep._pools

    def delete_model(self, request, obj):
        _disconnect_calendars([obj.pk])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        _disconnect_calendars(list(queryset.values_list("pk", flat=True)))
        super().delete_queryset(request, queryset)

    def save_related(self, request, form, formsets, change):
        """After the rep and their time off are saved: a rep made active again joins each pool at its mean
        load (``rep_rejoin``); then say how many upcoming bookings of theirs need attention
        (``booking.selectors.bookings_needing_attention``), with a link to them in the booking list."""
        super().save_related(request, form, formsets, change)
        rep = form.instance
        if change and "active" in form.changed_data and rep.active:
            who = getattr(request.user, "username", "") or "admin"
            rep_rejoin(rep, reason=f"rep made active again by {who} in the admin")
        if change and {"active", "timezone"} & set(form.changed_data):  # what can empty a pool's pages
            pools = rep.memberships.values_list("pool_id", flat=True)
            warn_never_offered(request, meeting_types_of(pools))
        found = attention_link(rep)
        if found:
            count, url = found
            message = format_html(
                "{} upcoming {} of {} {} attention: the rep is deactivated, off work, on time off or busy "
                "then, or removed it from their calendar. "
                '<a href="{}">See and reassign</a>.',
                count,
                "booking" if count == 1 else "bookings",
                rep.name,
                "needs" if count == 1 else "need",
                url,
            )
            self.message_user(request, message, messages.WARNING)


def attention_link(rep: Rep) -> tuple[int, str] | None:
    """(how many, booking list URL) for the rep's upcoming bookings that need attention, or None."""
    from booking.admin_attention import PARAMETER, REP_PARAMETER
    from booking.models import Booking
    from booking.selectors import bookings_needing_attention

    count = bookings_needing_attention(Booking.objects.all(), now=timezone.now(), rep_id=rep.pk).count()
    if not count:
        return None
    query = urlencode({PARAMETER: "any", REP_PARAMETER: rep.pk})  # exactly the ones counted
    return count, f"{reverse('admin:booking_booking_changelist')}?{query}"


@admin.register(RepSkill)
class RepSkillAdmin(admin.ModelAdmin):
    list_display = ("rep", "skill", "level")
    list_filter = ("skill", "level")
    search_fields = ("skill", "rep__name", "rep__email")
    list_select_related = ("rep",)
    autocomplete_fields = ("rep",)


@admin.register(Pool)
class PoolAdmin(DeletedWithIt, admin.ModelAdmin):
    list_display = ("name", "slug", "strategy", "fairness_period", "member_count")
    list_filter = ("strategy", "fairness_period", "count_cancellations", "count_no_shows")
    search_fields = ("name", "slug", "members__rep__name", "members__rep__email")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [PoolMemberInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members", distinct=True))

    @admin.display(description="members", ordering="_members")
    def member_count(self, pool: Pool) -> int:
        return pool._members

    def save_related(self, request, form, formsets, change):
        """Before the members are saved: when the page changes the pool's fairness settings or a member's
        weight, note the settings as they were (the pool row is saved already: a copy with the old values)
        and the members as stored (``pool_standings``), for ``save_formset`` to keep every member's
        standing."""
        changes = _standing_changes(form, formsets) if change else []
        if changes:
            old = copy.copy(form.instance)
            for name in STANDING_SETTINGS & set(form.changed_data):
                setattr(old, name, form.initial.get(name))
            form.standings = (pool_standings(old), changes)
        super().save_related(request, form, formsets, change)
        warn_never_offered(request, meeting_types_of([form.instance.pk]))  # members and strategy saved

    def save_formset(self, request, form, formset, change):
        if formset.model is not PoolMember:
            return super().save_formset(request, form, formset, change)
        deleted = set(formset.deleted_forms)
        pool = form.instance  # saved already, with the strategy as now posted
        plans = [
            (f, *_prepare_member(f, pool)) for f in formset.forms if f.has_changed() and f not in deleted
        ]
        formset.save()
        # all the rows are saved before any joins: the members joining together leave each other out of
        # the mean (a newcomer's 0 lowered the next one's start), as the config import does
        joining = {f.instance.pk for f, join, _ in plans if join}
        standings = getattr(form, "standings", None)
        if standings is not None:  # the others keep their standing first; the joiners join at the mean then
            before, what = standings
            who = getattr(request.user, "username", "") or "admin"
            reason = f"{'; '.join(what)} by {who} in the admin"
            pool_keep_standings(pool, before, reason=reason, joining=joining)
        for member_form, join, delta in plans:
            _after_member_saved(request, member_form.instance, join, delta, joining)


@admin.register(PoolMember)
class PoolMemberAdmin(admin.ModelAdmin):
    list_display = ("rep", "pool", "role", "rank", "weight", "daily_cap", "active", "adjustment")
    list_filter = ("pool", "role", "active", "pool__strategy")
    search_fields = ("rep__name", "rep__email", "pool__name", "pool__slug")
    list_select_related = ("rep", "pool")
    autocomplete_fields = ("rep", "pool")

    def save_model(self, request, obj, form, change):
        join, delta = _prepare_member(form, obj.pool)
        weighed = change and not join and "weight" in form.changed_data
        before = pool_standings(obj.pool) if weighed else None  # the rows as stored: the old weight
        super().save_model(request, obj, form, change)
        if before is not None:  # the new weight applies from now on: the member keeps its load
            who = getattr(request.user, "username", "") or "admin"
            old = form.initial.get("weight")
            reason = f"weight of {obj.rep.name} {old:g} → {obj.weight:g} by {who} in the admin"
            pool_keep_standings(obj.pool, before, reason=reason)
        _after_member_saved(request, obj, join, delta)
        # the pool it is in, and the one it left (a member moved out can leave a role there empty)
        warn_never_offered(request, meeting_types_of([obj.pool_id, form.initial.get("pool")]))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(SafeChangeListMixin, admin.ModelAdmin):
    list_display = ("created_at", "pool", "rep", "kind", "delta", "booking", "reason")
    list_filter = ("kind", "pool", "created_at")
    search_fields = ("rep__name", "rep__email", "pool__name", "reason")
    list_select_related = ("rep", "pool", "booking__meeting_type")
    date_hierarchy = "created_at"
    readonly_fields = ("pool", "rep", "booking", "kind", "delta", "reason", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
