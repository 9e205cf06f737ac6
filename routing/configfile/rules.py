"""Routing rules in the config file: ``meeting_types[i].rules``, an ordered list (order = list position).

* Parsing uses the model's own validators (``leads.models.RoutingRule`` through ``full_clean``: choices,
  ``fallback_after_days`` range, ``required_skills``, the disqualify-message check) and, for
  ``conditions``, ``leads.rules_core.validate`` (what the model's ``validate_conditions`` runs) with the
  config path as prefix, so a problem reads ``meeting_types[1].rules[0].conditions.all[0].op: …``.
* Import makes the meeting type's rule list exactly the file's list. Rows are matched by name (in order, so
  duplicate names pair up in turn); a matched row is updated in place (leads keep their ``matched_rule``), a
  new name is created, an existing rule the list does not name is deleted. ``order`` values are kept when
  they already sort the rules as listed (by ``(order, pk)``, so equal values too), otherwise renumbered (by
  list position when a value leaves no room above it), so a second import changes nothing.
* A meeting type without a ``rules`` key keeps its rules untouched; ``rules: []`` removes them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from leads import rules_core
from leads.models import RoutingRule
from routing.configfile.checker import Checker, json_problem
from routing.models import Pool

RULE_FIELDS = ("name", "outcome", "required_skills", "fallback_after_days", "disqualify_message", "active")
POOL_REFS = ("pool", "fallback_pool")
RULE_KEYS = (
    "name",
    "conditions",
    "outcome",
    "pool",
    "required_skills",
    "fallback_pool",
    "fallback_after_days",
    "disqualify_message",
    "active",
)
NODE_KEYS = ("all", "any", "field", "op", "value")


@dataclass
class RuleSpec:
    path: str
    fields: dict[str, Any]  # RULE_FIELDS plus ``conditions``
    pools: dict[str, str | None] = field(default_factory=dict)  # POOL_REFS → pool slug or None


def _conditions(check: Checker, obj: dict, path: str) -> dict:
    value = obj.get("conditions", {})
    if not isinstance(value, dict):
        check.err(path, "expected a mapping: a condition, an all/any group, or {} for a catch-all")
        return {}
    problem = json_problem(value)
    if problem:
        check.err(path, problem)
        return {}
    check.errors.extend(rules_core.validate(value, path))
    return value


def parse_rules(check: Checker, value: Any, path: str) -> list[RuleSpec]:
    """The rule list of one meeting type (``value`` is the ``rules`` entry, present in the file)."""
    if not isinstance(value, list):
        check.err(path, "expected a list of rules ([] removes every rule; leave the key out to keep them)")
        return []
    specs = []
    for i, raw in enumerate(value):
        where = f"{path}[{i}]"
        obj = check.mapping(raw, where, RULE_KEYS)
        if obj is None:
            continue
        skills = obj.get("required_skills")
        problem = json_problem(skills) if isinstance(skills, dict) else None
        if problem:
            check.err(f"{where}.required_skills", problem)
            obj = {k: v for k, v in obj.items() if k != "required_skills"}
        spec = RuleSpec(where, check.fields(obj, where, RoutingRule, RULE_FIELDS))
        spec.fields["conditions"] = _conditions(check, obj, f"{where}.conditions")
        for key in POOL_REFS:
            slug = obj.get(key)
            if slug is not None and (not isinstance(slug, str) or not slug):
                check.err(f"{where}.{key}", f"expected a pool's slug or null, got {slug!r}")
                slug = None
            spec.pools[key] = slug
        specs.append(spec)
    return specs


def rule_pool_slugs(meeting_types: list) -> set[str]:
    return {slug for mt in meeting_types for rule in mt.rules or () for slug in rule.pools.values() if slug}


def check_rule_references(check: Checker, meeting_types: list, known_pools: set) -> None:
    for mt in meeting_types:
        for rule in mt.rules or ():
            for key, slug in rule.pools.items():
                if slug and slug not in known_pools:
                    check.err(f"{rule.path}.{key}", f"unknown pool {slug}")


def apply_rules(meeting_type, specs: list[RuleSpec], pools: dict[str, Pool], changes: list[str]) -> None:
    """Make ``meeting_type``'s rules exactly ``specs`` (in this order); report each change."""
    label = f"meeting type {meeting_type.slug}"
    existing = list(RoutingRule.objects.filter(meeting_type=meeting_type).order_by("order", "pk"))
    by_name: dict[str, list[RoutingRule]] = defaultdict(list)
    for row in existing:
        by_name[row.name].append(row)
    rows = [by_name[spec.fields["name"]].pop(0) if by_name[spec.fields["name"]] else None for spec in specs]
    kept = {row.pk for row in rows if row is not None}
    gone = [row for row in existing if row.pk not in kept]
    if gone:
        RoutingRule.objects.filter(pk__in=[row.pk for row in gone]).delete()
        changes.append(f"{label}: rules removed: {', '.join(repr(row.name) for row in gone)}")
    for spec, row, order in zip(specs, rows, _orders(rows), strict=True):
        values = dict(spec.fields)
        for key, slug in spec.pools.items():
            if slug and slug not in pools:
                pools[slug] = Pool.objects.get(slug=slug)
            values[f"{key}_id"] = pools[slug].pk if slug else None
        values["order"] = order
        where = f"{label}: rule {spec.fields['name']!r}"
        if row is None:
            RoutingRule.objects.create(meeting_type=meeting_type, **values)
            changes.append(f"{where} created")
            continue
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if changed:
            for name in changed:
                setattr(row, name, values[name])
            names = [name.removesuffix("_id") for name in changed]
            row.save(update_fields=names)
            changes.append(f"{where}: changed {', '.join(names)}")


def _orders(rows: list[RoutingRule | None]) -> list[int]:
    """The ``order`` of each rule as listed (``rows``: the matched row or None for a new rule): a row's own
    value while the rules still sort as listed by ``(order, pk)`` — as the router, the admin and the export
    sort them, so equal values (the admin's default 0) after an existing rule created before are kept —
    else one more than the previous (a new rule is created after every existing one: it never ties). A value
    near the column's maximum (the admin accepts up to 2,147,483,647 on PostgreSQL) leaves no room for a rule
    after it: then every rule is numbered by its position."""
    highest = connection.ops.integer_field_range(RoutingRule._meta.get_field("order").get_internal_type())[1]
    orders: list[int] = []
    before: RoutingRule | None = None  # the previous rule's row (None: a new rule, or none yet)
    for row in rows:
        previous = orders[-1] if orders else -1
        ties = before is not None and row is not None and before.pk < row.pk
        keep = row is not None and (row.order > previous or (row.order == previous and ties))
        orders.append(row.order if keep else previous + 1)
        before = row
    return orders if not orders or orders[-1] <= highest else list(range(len(rows)))


def canonical_conditions(node: Any) -> Any:
    """A condition tree with its keys in reading order (all/any, field, op, value), whatever the database
    (PostgreSQL's jsonb reorders keys), so exports from SQLite and PostgreSQL are identical."""
    if isinstance(node, list):
        return [canonical_conditions(item) for item in node]
    if not isinstance(node, dict):
        return node
    keys = [k for k in NODE_KEYS if k in node] + sorted(k for k in node if k not in NODE_KEYS)
    return {k: canonical_conditions(node[k]) for k in keys}


def export_rule(rule: RoutingRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "conditions": canonical_conditions(rule.conditions),
        "outcome": rule.outcome,
        "pool": rule.pool.slug if rule.pool_id else None,
        "required_skills": dict(sorted((rule.required_skills or {}).items())),
        "fallback_pool": rule.fallback_pool.slug if rule.fallback_pool_id else None,
        "fallback_after_days": rule.fallback_after_days,
        "disqualify_message": rule.disqualify_message,
        "active": rule.active,
    }


def rules_queryset():
    return RoutingRule.objects.select_related("pool", "fallback_pool").order_by("order", "pk")


__all__ = [
    "RULE_KEYS",
    "RuleSpec",
    "apply_rules",
    "canonical_conditions",
    "export_rule",
    "parse_rules",
    "rules_queryset",
]
