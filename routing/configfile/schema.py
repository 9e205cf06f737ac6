"""Checking a config document. Every problem is reported as ``path.in.file: message``; nothing is written.

Scalar fields are checked twice: their JSON type here (a string is never silently turned into a number or
a boolean), then the model's own validators (``full_clean``: choices, ranges, e-mail, slug, time zone), so
the file accepts exactly what the admin accepts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models.functions import Lower

from booking.models import MeetingType
from calendars.models import Weekday
from routing.configfile.checker import (
    MIDNIGHT,
    QUESTION_KEY_RE,
    QUESTION_KEYS,
    Checker,
    ConfigInvalid,
    format_range,
    join,
    unstorable_text,
    validate_questions,
)
from routing.configfile.rules import RuleSpec, check_rule_references, parse_rules, rule_pool_slugs
from routing.configfile.scoring import parse_performance, parse_score_points
from routing.models import Pool, PoolMember, Rep

__all__ = ["MIDNIGHT", "QUESTION_KEYS", "ConfigInvalid", "format_range", "validate_questions"]

VERSION = 1
WEEKDAYS = {label.lower(): value for value, label in Weekday.choices}
WEEKDAY_NAMES = {value: name for name, value in WEEKDAYS.items()}
SKILL_RE = QUESTION_KEY_RE

REP_FIELDS = ("name", "email", "timezone", "active", "daily_cap")
REP_LISTS = ("skills", "working_hours", "date_overrides", "time_off")
POOL_FIELDS = ("slug", "name", "strategy", "fairness_period", "count_cancellations", "count_no_shows")
POOL_FIELDS += ("group_order",)
MEMBER_FIELDS = ("rank", "weight", "role", "daily_cap", "active")
MEETING_TYPE_FIELDS = (
    "slug",
    "title",
    "description",
    "duration_minutes",
    "slot_interval_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "minimum_notice_minutes",
    "horizon_days",
    "location_kind",
    "location_detail",
    "questions",
    "active",
)


@dataclass
class RepSpec:
    path: str
    fields: dict[str, Any]
    skills: dict[str, int] = field(default_factory=dict)
    working_hours: set[tuple[int, dt.time, dt.time]] = field(default_factory=set)
    date_overrides: set[tuple[dt.date, dt.time | None, dt.time | None]] = field(default_factory=set)
    time_off: set[tuple[dt.datetime, dt.datetime, str]] = field(default_factory=set)


@dataclass
class MemberSpec:
    path: str
    rep_email: str
    fields: dict[str, Any]


@dataclass
class PoolSpec:
    path: str
    fields: dict[str, Any]
    members: list[MemberSpec] = field(default_factory=list)
    performance: dict[str, Any] | None = None  # None: no ``performance`` key, the weighting stays as it is


@dataclass
class MeetingTypeSpec:
    path: str
    fields: dict[str, Any]
    pool_slug: str
    rules: list[RuleSpec] | None = None  # None: the file has no ``rules`` key, the rules stay as they are
    score_points: list | None = None  # None: no ``score_points`` key, the points stay as they are


@dataclass
class Config:
    reps: list[RepSpec] = field(default_factory=list)
    pools: list[PoolSpec] = field(default_factory=list)
    meeting_types: list[MeetingTypeSpec] = field(default_factory=list)


def _parse_rep(check: Checker, raw: Any, path: str) -> RepSpec | None:
    obj = check.mapping(raw, path, REP_FIELDS + REP_LISTS)
    if obj is None:
        return None
    spec = RepSpec(path=path, fields=check.fields(obj, path, Rep, REP_FIELDS))
    skills = obj.get("skills") or {}
    if not isinstance(skills, dict):
        check.err(f"{path}.skills", "expected a mapping of skill: level (1-10)")
        skills = {}
    for skill, level in skills.items():
        where = join(f"{path}.skills", skill)
        if not isinstance(skill, str) or not SKILL_RE.match(skill):
            check.err(where, "a skill is a slug: letters, digits, - or _ (at most 64)")
        elif isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 10:
            check.err(where, f"expected a level from 1 to 10, got {level!r}")
        else:
            spec.skills[skill] = level
    hours = obj.get("working_hours") or {}
    if not isinstance(hours, dict):
        check.err(f"{path}.working_hours", "expected a mapping of weekday: list of ranges")
        hours = {}
    for day, ranges in hours.items():
        where = join(f"{path}.working_hours", day)
        if day not in WEEKDAYS:
            check.err(where, f"unknown weekday (expected one of: {', '.join(WEEKDAYS)})")
            continue
        spec.working_hours |= {(WEEKDAYS[day], s, e) for s, e in check.ranges(ranges, where)}
    seen: set[dt.date] = set()
    for i, item in enumerate(check.seq(obj.get("date_overrides"), f"{path}.date_overrides")):
        where = f"{path}.date_overrides[{i}]"
        entry = check.mapping(item, where, ("date", "hours"))
        if entry is None:
            continue
        day = check.date(entry.get("date"), f"{where}.date")
        if day in seen:
            check.err(f"{where}.date", f"{day} is listed twice")
        if "hours" not in entry:
            check.err(f"{where}.hours", "required: a list of ranges, [] for a day off")
        elif entry["hours"] is None:  # a half-written ``hours:`` must not make the date a day off
            check.err(f"{where}.hours", "expected a list of ranges ([] for a day off)")
        ranges = check.ranges(entry.get("hours"), f"{where}.hours")
        if day is not None:
            seen.add(day)
            spec.date_overrides |= {(day, s, e) for s, e in ranges} or {(day, None, None)}
    for i, item in enumerate(check.seq(obj.get("time_off"), f"{path}.time_off")):
        where = f"{path}.time_off[{i}]"
        entry = check.mapping(item, where, ("start", "end", "reason"))
        if entry is None:
            continue
        start, end = (
            check.instant(entry.get("start"), f"{where}.start"),
            check.instant(entry.get("end"), f"{where}.end"),
        )
        reason = entry.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 200:
            check.err(f"{where}.reason", "expected a string of at most 200 characters")
        elif start and end:
            if end <= start:
                check.err(f"{where}.end", "must be after start")
            spec.time_off.add((start, end, reason))
    return spec


def _parse_pool(check: Checker, raw: Any, path: str) -> PoolSpec | None:
    obj = check.mapping(raw, path, (*POOL_FIELDS, "performance", "members"))
    if obj is None:
        return None
    spec = PoolSpec(path=path, fields=check.fields(obj, path, Pool, POOL_FIELDS))
    spec.performance = parse_performance(check, obj, path)
    for j, item in enumerate(check.seq(obj.get("members"), f"{path}.members")):
        where = f"{path}.members[{j}]"
        member = check.mapping(item, where, ("rep", *MEMBER_FIELDS))
        if member is None:
            continue
        rep = member.get("rep")
        if not isinstance(rep, str) or not rep:
            check.err(f"{where}.rep", "required: the rep's e-mail address")
            rep = ""
        spec.members.append(MemberSpec(where, rep, check.fields(member, where, PoolMember, MEMBER_FIELDS)))
    return spec


def _parse_meeting_type(check: Checker, raw: Any, path: str) -> MeetingTypeSpec | None:
    obj = check.mapping(raw, path, (*MEETING_TYPE_FIELDS, "pool", "score_points", "rules"))
    if obj is None:
        return None
    pool = obj.get("pool")
    if not isinstance(pool, str) or not pool:
        check.err(f"{path}.pool", "required: the pool's slug")
        pool = ""
    for problem in validate_questions(obj.get("questions", []), f"{path}.questions"):
        check.errors.append(problem)
    spec = MeetingTypeSpec(path, check.fields(obj, path, MeetingType, MEETING_TYPE_FIELDS), pool)
    spec.score_points = parse_score_points(check, obj, path)
    if "rules" in obj:
        spec.rules = parse_rules(check, obj["rules"], f"{path}.rules")
    return spec


def _duplicates(check: Checker, items: list, key, label: str, attr: str, *, any_case=False) -> None:
    seen: dict[Any, str] = {}
    for item in items:
        value = key(item)
        if not isinstance(value, str):
            continue  # a wrong type was reported already
        folded = value.casefold() if any_case else value
        if folded in seen:
            check.err(f"{item.path}.{attr}", f"duplicate {label} {value!r} (also at {seen[folded]})")
        elif value:
            seen[folded] = item.path


def parse_config(data: Any) -> Config:
    """Check a loaded document; raise ``ConfigInvalid`` with every problem, or return the ``Config``."""
    try:
        return _parse_config(data)
    except RecursionError:  # a JSON parser goes deeper than the checks' walk (rule conditions, NUL search)
        raise ConfigInvalid(["(top level): nested too deeply"]) from None


def _parse_config(data: Any) -> Config:
    check = Checker()
    config = Config()
    unstorable = unstorable_text(data, "(top level)") if isinstance(data, dict | list) else []
    if unstorable:  # nothing else is read: the names it references would be looked up in the database
        raise ConfigInvalid([problem.removeprefix("(top level).") for problem in unstorable])
    doc = check.mapping(
        data if data is not None else {}, "(top level)", ("version", "reps", "pools", "meeting_types")
    )
    if doc is None:
        raise ConfigInvalid(check.errors)
    if doc.get("version", VERSION) != VERSION:
        check.err(
            "version", f"unsupported version {doc.get('version')!r} (this Baton reads version {VERSION})"
        )
    for name, parse, target in (
        ("reps", _parse_rep, config.reps),
        ("pools", _parse_pool, config.pools),
        ("meeting_types", _parse_meeting_type, config.meeting_types),
    ):
        for i, raw in enumerate(check.seq(doc.get(name), name)):
            spec = parse(check, raw, f"{name}[{i}]")
            if spec is not None:
                target.append(spec)
    # e-mail addresses are one mailbox in any letter case (``Rep``'s constraint)
    _duplicates(check, config.reps, lambda r: r.fields.get("email"), "rep", "email", any_case=True)
    _spelled_otherwise(check, config.reps)
    _duplicates(check, config.pools, lambda p: p.fields.get("slug"), "pool", "slug")
    _duplicates(check, config.meeting_types, lambda m: m.fields.get("slug"), "meeting type", "slug")
    _check_references(check, config)
    if check.errors:
        raise ConfigInvalid(check.errors)
    return config


def _spelled_otherwise(check: Checker, reps: list[RepSpec]) -> None:
    """A rep of the file whose address an existing rep has in other letter case: the import would make a
    second rep of it (which the database refuses), so say which spelling to use."""
    given = {r.fields["email"].lower(): r for r in reps if isinstance(r.fields.get("email"), str)}
    if not given:
        return
    stored = Rep.objects.annotate(lowered=Lower("email")).filter(lowered__in=list(given))
    for email in stored.values_list("email", flat=True):
        spec = given.get(email.lower())
        if spec is not None and spec.fields["email"] != email:
            check.err(f"{spec.path}.email", f"a rep exists as {email!r}: spell the address that way")


def _spellings(addresses: list[str], known: set) -> dict[str, str]:
    """Lower-cased address → the spelling a rep of the file or the database has (one mailbox in any case)."""
    if not addresses:
        return {}
    lowered = {a.lower() for a in addresses}
    found = {e.lower(): e for e in known if isinstance(e, str) and e.lower() in lowered}
    stored = Rep.objects.annotate(lowered=Lower("email")).filter(lowered__in=list(lowered))
    for email in stored.values_list("email", flat=True):
        found.setdefault(email.lower(), email)
    return found


def _check_references(check: Checker, config: Config) -> None:
    """Members name reps, meeting types and their rules name pools, in the file or already in the database."""
    emails = {r.fields.get("email") for r in config.reps if isinstance(r.fields.get("email"), str)}
    wanted = {m.rep_email for p in config.pools for m in p.members} - emails
    emails |= set(Rep.objects.filter(email__in=wanted).values_list("email", flat=True))
    for pool in config.pools:
        _duplicates(check, pool.members, lambda m: m.rep_email, "member", "rep")
        group = pool.fields.get("strategy") == "group"
        unknown = [m for m in pool.members if m.rep_email and m.rep_email not in emails]
        spelled = _spellings([m.rep_email for m in unknown], emails)
        for member in pool.members:
            if member in unknown:
                other = spelled.get(member.rep_email.lower())
                hint = f": a rep exists as {other!r}, spell the address that way" if other else ""
                check.err(f"{member.path}.rep", f"unknown rep {member.rep_email}{hint}")
            if group and not member.fields.get("role"):
                check.err(f"{member.path}.role", "required in a group pool (e.g. ae, se)")
    slugs = {p.fields.get("slug") for p in config.pools if isinstance(p.fields.get("slug"), str)}
    wanted = ({m.pool_slug for m in config.meeting_types} | rule_pool_slugs(config.meeting_types)) - slugs
    slugs |= set(Pool.objects.filter(slug__in=wanted).values_list("slug", flat=True))
    for mt in config.meeting_types:
        if mt.pool_slug and mt.pool_slug not in slugs:
            check.err(f"{mt.path}.pool", f"unknown pool {mt.pool_slug}")
    check_rule_references(check, config.meeting_types, slugs)
