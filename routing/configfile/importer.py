"""Applying a checked ``Config``: create or update what it names, in one transaction.

The file is the truth for every object it names: a rep's skills, working hours, date overrides and time off,
and a pool's members, become exactly the file's lists (a field left out takes its default). Objects the
file does not name are left alone: import never deletes a rep, a pool or a meeting type (set
``active: false`` instead). New members, members made active again, and members of a group pool given
another role (fairness is counted per role there: they start afresh in the new role's queue, as the admin
moves them) join through ``routing.services.pool_member_join`` (they start at the pool's mean load), as do
the memberships of a rep made active again (``rep_rejoin``), once every member row is written (``_join``).
A member taken out of a pool leaves its upcoming bookings there needing attention, and the import says how
many; so it does for a rep whose availability it changes (active, time zone, hours, date overrides, time
off: ``_attention``, the count the rep's admin page shows). A pool whose fairness settings (period,
strategy, counting) or members' weights the file changes keeps every member's standing, as the admin does
(``routing.services.pool_keep_standings``, before the joins). The manual fairness ``adjustment`` is runtime
state, not configuration, and is never written from the file (a member starting afresh has it reset, as a
move in the admin does). A meeting type's ``rules`` list, when present, replaces its routing rules
(``routing.configfile.rules``); its ``score_points`` and a pool's ``performance``, when present, set the
leads app's settings (``routing.configfile.scoring``). An import that changes anything then warns, in a
line of its own, about each active meeting type it concerns that can never offer a time (``_never_offered``:
a group role without an active member, roles whose zones never share a start on the slot grid).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from booking.models import Booking, MeetingType
from booking.selectors import bookings_needing_attention
from calendars.models import DateOverride, TimeOff, WorkingHours
from routing.configfile.rules import apply_rules
from routing.configfile.schema import Config, MeetingTypeSpec, PoolSpec, RepSpec
from routing.configfile.scoring import apply_performance, apply_score_points
from routing.models import Pool, PoolMember, Rep, RepSkill
from routing.reach import meeting_types_of, never_offered
from routing.services import (
    STANDING_SETTINGS,
    Standings,
    pool_keep_standings,
    pool_member_join,
    pool_standings,
    rep_rejoin,
)


class _Rollback(Exception):
    pass


def config_import(*, config: Config, dry_run: bool = False, now: dt.datetime | None = None) -> list[str]:
    """Apply ``config``; return one line per change (empty: the database already matched the file).

    With ``dry_run`` the changes are computed inside the transaction and then rolled back."""
    now = now or timezone.now()
    changes: list[str] = []
    try:
        with transaction.atomic():
            back: list[Rep] = []  # reps the file makes active again
            watch: list[Rep] = []  # reps whose availability the file changed
            reps = {spec.fields["email"]: _apply_rep(spec, changes, back, watch) for spec in config.reps}
            joined: list[PoolMember] = []  # members added or made active again
            kept: list[Kept] = []  # pools whose members keep their standing across the file's change
            pools = {
                spec.fields["slug"]: _apply_pool(spec, reps, changes, now, joined, kept)
                for spec in config.pools
            }
            _join(joined, back, now, kept, changes)
            named = [_apply_meeting_type(spec, pools, changes) for spec in config.meeting_types]
            _attention(watch, now, changes)
            if changes:
                _never_offered(named, pools.values(), reps.values(), now, changes)
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return changes


Kept = tuple[Pool, Standings, list[str]]  # a pool, its members' standings before the file, what changed


def _join(
    joined: list[PoolMember], back: list[Rep], now: dt.datetime, kept: list[Kept], changes: list[str]
) -> None:
    """Keep the standing of the members of the pools in ``kept`` (``pool_keep_standings``); then start the
    members the file adds or makes active again, and the memberships of the reps it makes active again, at
    their pool's mean load: the mean of the members active after the import, all member rows written first
    (a member deactivated further down the file's list no longer counts), and without the others joining
    now (so the order of the file's lists does not change anyone's start)."""
    skip = {m.pk for m in joined}
    joining = skip | set(PoolMember.objects.filter(rep__in=back, active=True).values_list("pk", flat=True))
    for pool, before, what in kept:
        reason = f"{'; '.join(what)} via config import"
        entries = pool_keep_standings(pool, before, now=now, reason=reason, joining=joining)
        if entries:
            n = len(entries)
            changes.append(
                f"pool {pool.slug}: {n} {'member keeps' if n == 1 else 'members keep'} their fairness "
                "standing across the change (ledger entries)"
            )
    for member in joined:
        pool_member_join(member, now=now, reason="joined via config import", joining=joining)
    for rep in back:  # at each pool's mean load, as a member made active again
        reason = "rep made active again via config import"
        rep_rejoin(rep, now=now, reason=reason, skip=skip, joining=joining)


def _upsert(
    model: type[Model], lookup: dict[str, Any], values: dict[str, Any], label: str, changes: list[str]
):
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        obj = model.objects.create(**lookup, **values)
        changes.append(f"{label}: created")
        return obj, True
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save(update_fields=changed)
        changes.append(f"{label}: changed {', '.join(changed)}")
    return obj, False


def _replace_rows(queryset, key, wanted: set, make, label: str, changes: list[str]) -> bool:
    """Make ``queryset``'s rows exactly ``wanted`` (``key(row)`` is a row's key tuple): rows not wanted go,
    and so do all but the first of identical rows (the admin can save the same time off twice), then wanted
    rows missing are made."""
    kept: set = set()
    gone = []
    for row in queryset.order_by("pk"):
        row_key = key(row)
        if row_key in wanted and row_key not in kept:
            kept.add(row_key)
        else:
            gone.append(row.pk)
    new = [make(k) for k in sorted(wanted - kept, key=_sort_key)]
    if gone:
        queryset.filter(pk__in=gone).delete()
    if new:
        queryset.model.objects.bulk_create(new)
    if gone or new:
        changes.append(f"{label}: {len(new)} added, {len(gone)} removed")
    return bool(gone or new)


def _sort_key(key: tuple) -> tuple:
    return tuple((v is None, v if v is not None else 0) for v in key)


def _apply_rep(spec: RepSpec, changes: list[str], back: list[Rep], watch: list[Rep]) -> Rep:
    """Write one rep; add it to ``back`` when made active again, and to ``watch`` when its availability
    (active, time zone, working hours, date overrides, time off) changed."""
    email = spec.fields["email"]
    values = {k: v for k, v in spec.fields.items() if k != "email"}
    was = Rep.objects.filter(email=email).values_list("active", "timezone").first()
    rep, created = _upsert(Rep, {"email": email}, values, f"rep {email}", changes)
    if was is not None and was[0] is False and rep.active:
        back.append(rep)

    skills = {s.skill: s for s in rep.skills.all()}
    for skill, level in sorted(spec.skills.items()):
        if skill not in skills:
            RepSkill.objects.create(rep=rep, skill=skill, level=level)
            changes.append(f"rep {email}: skill {skill} added")
        elif skills[skill].level != level:
            RepSkill.objects.filter(pk=skills[skill].pk).update(level=level)
            changes.append(f"rep {email}: skill {skill} level {skills[skill].level} → {level}")
    gone = [s for name, s in skills.items() if name not in spec.skills]
    if gone:
        RepSkill.objects.filter(pk__in=[s.pk for s in gone]).delete()
        changes.append(f"rep {email}: skills removed: {', '.join(sorted(s.skill for s in gone))}")

    moved = was is not None and was != (rep.active, rep.timezone)
    moved |= _replace_rows(
        rep.working_hours.all(),
        lambda r: (r.weekday, r.start, r.end),
        spec.working_hours,
        lambda key: WorkingHours(rep=rep, weekday=key[0], start=key[1], end=key[2]),
        f"rep {email}: working hours",
        changes,
    )
    moved |= _replace_rows(
        rep.date_overrides.all(),
        lambda r: (r.date, r.start, r.end),
        spec.date_overrides,
        lambda key: DateOverride(rep=rep, date=key[0], start=key[1], end=key[2]),
        f"rep {email}: date overrides",
        changes,
    )
    moved |= _replace_rows(
        rep.time_off.all(),
        lambda r: (r.start.astimezone(dt.UTC), r.end.astimezone(dt.UTC), r.reason),
        spec.time_off,
        lambda key: TimeOff(rep=rep, start=key[0], end=key[1], reason=key[2]),
        f"rep {email}: time off",
        changes,
    )
    if moved and not created:
        watch.append(rep)
    return rep


def _standings_before(spec: PoolSpec) -> tuple[Standings, list[str]] | None:
    """The members' standings before the file, and what it changes, in words, when it changes the pool's
    fairness settings (``STANDING_SETTINGS``) or the weight of a member it keeps; otherwise None."""
    pool = Pool.objects.filter(slug=spec.fields["slug"]).first()
    if pool is None:
        return None
    what = [
        f"{name.replace('_', ' ')} {getattr(pool, name)} → {spec.fields[name]}"
        for name in sorted(STANDING_SETTINGS)
        if name in spec.fields and getattr(pool, name) != spec.fields[name]
    ]
    weights = {m.rep_email: m.fields.get("weight") for m in spec.members}
    for member in pool.members.select_related("rep"):
        weight = weights.get(member.rep.email)
        if weight is not None and weight != member.weight:
            what.append(f"weight of {member.rep.email} {member.weight:g} → {weight:g}")
    return (pool_standings(pool), what) if what else None


def _apply_pool(
    spec: PoolSpec,
    reps: dict[str, Rep],
    changes: list[str],
    now: dt.datetime,
    joined: list[PoolMember],
    kept: list[Kept],
) -> Pool:
    slug = spec.fields["slug"]
    values = {k: v for k, v in spec.fields.items() if k != "slug"}
    standings = _standings_before(spec)
    pool, _ = _upsert(Pool, {"slug": slug}, values, f"pool {slug}", changes)
    if standings is not None:
        kept.append((pool, *standings))
    if spec.performance is not None:
        apply_performance(pool, spec.performance, f"pool {slug}", changes)
    existing = {m.rep.email: m for m in pool.members.select_related("rep")}
    wanted = {m.rep_email for m in spec.members}
    gone = [m for email, m in existing.items() if email not in wanted]
    out = [m.rep_id for m in gone if m.active]  # reps taken out of the pool: their bookings need attention
    if gone:
        PoolMember.objects.filter(pk__in=[m.pk for m in gone]).delete()
        changes.append(f"pool {slug}: members removed: {', '.join(sorted(m.rep.email for m in gone))}")
    missing = wanted - reps.keys()
    if missing:
        reps.update({r.email: r for r in Rep.objects.filter(email__in=missing)})
    for member_spec in spec.members:
        email = member_spec.rep_email
        label = f"pool {slug}: member {email}"
        member = existing.get(email)
        was_active = member is not None and member.active
        old_role = member.role if member is not None else None
        member, created = _upsert(
            PoolMember, {"pool": pool, "rep": reps[email]}, member_spec.fields, label, changes
        )
        moved = not created and pool.strategy == "group" and member.role != old_role
        if moved:  # fairness is per role in a group pool: the member starts afresh in its new role's queue
            PoolMember.objects.filter(pk=member.pk).update(adjustment=0.0, joined_at=timezone.now())
        if member.active and (created or moved or not was_active):
            joined.append(member)
        elif was_active and not member.active:
            out.append(member.rep_id)
    _stranded(pool, out, now, changes)
    return pool


def _stranded(pool: Pool, rep_ids: list[int], now: dt.datetime, changes: list[str]) -> None:
    """Say how many upcoming bookings of ``pool`` the reps just taken out of it (removed or deactivated)
    still host: they need an admin (``bookings_needing_attention``, reason ``not_member``)."""
    if not rep_ids:
        return
    count = (
        Booking.objects.filter(
            pool=pool,
            status=Booking.Status.CONFIRMED,
            end__gt=now,
            hosts__active=True,
            hosts__rep_id__in=rep_ids,
        )
        .distinct()
        .count()
    )
    if count:
        plural = "booking needs" if count == 1 else "bookings need"
        changes.append(
            f"pool {pool.slug}: {count} upcoming {plural} attention: hosted by a member taken out of the pool"
        )


def _attention(reps: list[Rep], now: dt.datetime, changes: list[str]) -> None:
    """Say how many upcoming bookings of each rep whose availability the file changed need attention now
    (``bookings_needing_attention``, what the rep's admin page counts after a save): the rep deactivated,
    on time off, off work or busy then. Counted once every row is written (a pool change counts too)."""
    for rep in reps:
        count = bookings_needing_attention(Booking.objects.all(), now=now, rep_id=rep.pk).count()
        if count:
            plural = "booking needs" if count == 1 else "bookings need"
            changes.append(
                f"rep {rep.email}: {count} upcoming {plural} attention: the rep is deactivated, off work, "
                "on time off or busy then (the booking list's needs-attention filter)"
            )


def _never_offered(named: list[MeetingType], pools, reps, now: dt.datetime, changes: list[str]) -> None:
    """Warn (a line, not an error: an admin may be half-way through staffing) about each active meeting type
    the file names, or whose pool it names or has a rep of its members named, that can now never offer a
    time (``routing.reach``): a group role without an active member, roles whose zones never share a start
    on the slot grid, a pool without an active member."""
    touched = set(PoolMember.objects.filter(rep__in=list(reps)).values_list("pool_id", flat=True))
    touched |= {pool.pk for pool in pools}
    found = {m.pk: m for m in named}
    found.update((m.pk, m) for m in meeting_types_of(touched))
    for meeting_type, reasons in never_offered(sorted(found.values(), key=lambda m: m.slug), now=now):
        changes.append(f"meeting type {meeting_type.slug}: can never offer a time: {'; '.join(reasons)}")


def _apply_meeting_type(spec: MeetingTypeSpec, pools: dict[str, Pool], changes: list[str]) -> MeetingType:
    slug = spec.fields["slug"]
    pool = pools.get(spec.pool_slug) or Pool.objects.get(slug=spec.pool_slug)
    values = {k: v for k, v in spec.fields.items() if k != "slug"}
    values["pool"] = pool
    meeting_type, _ = _upsert(MeetingType, {"slug": slug}, values, f"meeting type {slug}", changes)
    if spec.score_points is not None:
        apply_score_points(meeting_type, spec.score_points, f"meeting type {slug}", changes)
    if spec.rules is not None:
        apply_rules(meeting_type, spec.rules, pools, changes)
    return meeting_type
