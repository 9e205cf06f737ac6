"""The database's configuration as a document in the import format, in a canonical order (reps by e-mail,
pools and meeting types by slug, members by role, rank and e-mail, a meeting type's rules in their order),
so export → import → export is identical and two exports diff cleanly."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

import yaml
from django.db.models import Prefetch

from booking.models import MeetingType
from routing.configfile.rules import export_rule, rules_queryset
from routing.configfile.schema import (
    MEETING_TYPE_FIELDS,
    MEMBER_FIELDS,
    POOL_FIELDS,
    QUESTION_KEYS,
    REP_FIELDS,
    VERSION,
    WEEKDAY_NAMES,
    format_range,
)
from routing.configfile.scoring import export_performance, export_score_points
from routing.models import Pool, PoolMember, Rep


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _rep(rep: Rep) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(rep, name) for name in REP_FIELDS}
    out["skills"] = {s.skill: s.level for s in sorted(rep.skills.all(), key=lambda s: s.skill)}
    hours: dict[str, list[str]] = {}
    for row in sorted(rep.working_hours.all(), key=lambda r: (r.weekday, r.start)):
        hours.setdefault(WEEKDAY_NAMES[row.weekday], []).append(format_range(row.start, row.end))
    out["working_hours"] = hours
    overrides: dict[dt.date, list[str]] = defaultdict(list)
    for row in sorted(rep.date_overrides.all(), key=lambda r: (r.date, r.start or dt.time(0))):
        overrides[row.date]  # a day off has no range but still appears
        if row.start is not None:
            overrides[row.date].append(format_range(row.start, row.end))
    out["date_overrides"] = [{"date": day.isoformat(), "hours": ranges} for day, ranges in overrides.items()]
    out["time_off"] = [
        {"start": _iso(row.start), "end": _iso(row.end), "reason": row.reason}
        for row in sorted(rep.time_off.all(), key=lambda r: (r.start, r.end, r.reason))
    ]
    return out


def _question(q: Any) -> Any:
    if not isinstance(q, dict):
        return q
    ordered = {k: q[k] for k in QUESTION_KEYS if k in q}
    ordered.update({k: q[k] for k in sorted(q) if k not in ordered})
    return ordered


def _pool(pool: Pool) -> dict[str, Any]:
    out: dict[str, Any] = {name: getattr(pool, name) for name in POOL_FIELDS}
    performance = export_performance(pool)
    if performance is not None:  # written for a pool that has a weighting: no key leaves it alone
        out["performance"] = performance
    out["members"] = [
        {"rep": m.rep.email, **{name: getattr(m, name) for name in MEMBER_FIELDS}} for m in pool.members.all()
    ]
    return out


def config_export() -> dict[str, Any]:
    reps = Rep.objects.order_by("email").prefetch_related(
        "skills", "working_hours", "date_overrides", "time_off"
    )
    members = PoolMember.objects.select_related("rep").order_by("role", "rank", "rep__email")
    pools = (
        Pool.objects.order_by("slug")
        .select_related("performance")
        .prefetch_related(Prefetch("members", queryset=members))
    )
    meeting_types = (
        MeetingType.objects.order_by("slug")
        .select_related("pool", "score_model")
        .prefetch_related(Prefetch("routing_rules", queryset=rules_queryset()))
    )
    return {
        "version": VERSION,
        "reps": [_rep(rep) for rep in reps],
        "pools": [_pool(pool) for pool in pools],
        "meeting_types": [
            {
                **{name: getattr(mt, name) for name in MEETING_TYPE_FIELDS if name != "questions"},
                "pool": mt.pool.slug,
                "questions": [_question(q) for q in mt.questions or []],
                "score_points": export_score_points(mt),
                "rules": [export_rule(rule) for rule in mt.routing_rules.all()],
            }
            for mt in meeting_types
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of plain values (time ranges, options), which read best on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(isinstance(item, str | int | float) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat and bool(data))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # U+0085 (NEXT LINE) is written raw inside plain or single quotes and read back as a space: double quotes
    # escape it (\N), so an export imports unchanged
    style = '"' if "\x85" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def dump_document(document: dict[str, Any], *, fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=110
    )
