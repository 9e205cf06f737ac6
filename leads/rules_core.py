"""Routing-rule conditions and lead scoring: pure Python, no Django.

A **condition** is ``{"field": F, "op": OP, "value": V}``; a **group** is ``{"all": [...]}`` or
``{"any": [...]}`` whose items are conditions or groups (nested freely). An empty group (or ``{}``) is true:
a rule without conditions is the catch-all.

Fields (``LeadFacts``): ``answers.<key>``, ``utm.<key>`` (e.g. ``utm.utm_source``), ``email``,
``email_domain``, ``free_mail`` (bool: the domain is in ``FREE_MAIL_DOMAINS``), ``country`` (ISO 3166
alpha-2, upper case), ``timezone`` (IANA name), ``score`` (number).

Operators: ``equals`` / ``not_equals`` (text compared case-insensitively), ``in`` / ``not_in`` (value is a
list), ``contains`` (text: case-insensitive substring; list answer: the item is selected), ``contains_any`` /
``contains_all`` (multi-select answers against a list), ``starts_with`` / ``ends_with`` (text),
``gt`` / ``gte`` / ``lt`` / ``lte`` (numbers; a non-number never matches), ``exists`` (value true/false).
A missing field matches only ``not_equals``, ``not_in`` and ``exists: false``.

A **points model** is a list of ``{"when": <condition or group>, "points": n}``; the lead score is the sum of
the points of the items that match (see ``lead_score``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Common consumer mailbox providers: a domain here is never treated as a company (account) domain.
FREE_MAIL_DOMAINS = frozenset(
    {
        "aol.com", "gmail.com", "googlemail.com", "gmx.at", "gmx.ch", "gmx.de", "gmx.net", "hotmail.co.uk",
        "hotmail.com", "hotmail.de", "hotmail.fr", "icloud.com", "live.com", "mac.com", "mail.com",
        "mail.ru", "me.com", "msn.com", "outlook.com", "outlook.de", "proton.me", "protonmail.com",
        "qq.com", "t-online.de", "web.de", "yahoo.co.uk", "yahoo.com", "yahoo.de", "yahoo.fr",
        "yandex.ru", "zoho.com", "163.com", "126.com", "laposte.net", "orange.fr", "free.fr", "libero.it",
    }
)  # fmt: skip

TEXT_OPS = {"equals", "not_equals", "contains", "starts_with", "ends_with"}
LIST_OPS = {"in", "not_in", "contains_any", "contains_all"}
NUMBER_OPS = {"gt", "gte", "lt", "lte"}
OPS = TEXT_OPS | LIST_OPS | NUMBER_OPS | {"exists"}
PLAIN_FIELDS = {"email", "email_domain", "free_mail", "country", "timezone", "score"}
PREFIX_FIELDS = ("answers.", "utm.")
_MISSING = object()


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def is_free_mail(domain: str) -> bool:
    return domain.lower() in FREE_MAIL_DOMAINS


@dataclass(frozen=True)
class LeadFacts:
    email: str = ""
    timezone: str = ""
    country: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    utm: dict[str, str] = field(default_factory=dict)
    score: float = 0.0

    @property
    def domain(self) -> str:
        return email_domain(self.email)

    def get(self, name: str) -> Any:
        if name.startswith("answers."):
            return self.answers.get(name[8:], _MISSING)
        if name.startswith("utm."):
            return self.utm.get(name[4:], _MISSING)
        value = {
            "email": self.email.lower(),
            "email_domain": self.domain,
            "free_mail": is_free_mail(self.domain),
            "country": self.country.upper(),
            "timezone": self.timezone,
            "score": self.score,
        }.get(name, _MISSING)
        return _MISSING if value == "" else value


def _norm(value: Any) -> Any:
    return value.strip().casefold() if isinstance(value, str) else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _items(value: Any) -> list:
    return [_norm(v) for v in value] if isinstance(value, list | tuple) else [_norm(value)]


def _same(actual: Any, expected: Any) -> bool:
    """``equals`` for one value: a number on either side (not a yes/no) compares as a number when both read
    as one ("50" equals 50 and 120 equals "120": a select option "50" against an unquoted YAML 50), else
    text compares without case and surrounding blanks."""
    if any(isinstance(v, int | float) and not isinstance(v, bool) for v in (actual, expected)):
        a, b = _number(actual), _number(expected)
        if a is not None and b is not None:
            return a == b
    return _norm(actual) == _norm(expected)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "exists":
        return (actual is not _MISSING) == bool(expected)
    if actual is _MISSING:
        return op in ("not_equals", "not_in")
    if op in NUMBER_OPS:
        a, b = _number(actual), _number(expected)
        if a is None or b is None:
            return False
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    if op in ("equals", "not_equals"):
        same = _same(actual, expected)
        return same if op == "equals" else not same
    if op in ("in", "not_in"):  # ``equals`` one of them; a multiselect: any of its choices does
        options = expected if isinstance(expected, list | tuple) else [expected]
        chosen = actual if isinstance(actual, list | tuple) else [actual]
        inside = any(_same(item, option) for item in chosen for option in options)
        return inside if op == "in" else not inside
    if op == "contains":
        if isinstance(actual, list):
            return _norm(expected) in _items(actual)
        return isinstance(actual, str) and str(_norm(expected)) in _norm(actual)
    if op in ("contains_any", "contains_all"):
        have, want = set(_items(actual)), _items(expected)
        return any(w in have for w in want) if op == "contains_any" else all(w in have for w in want)
    text, needle = _norm(actual), _norm(expected)
    if not isinstance(text, str) or not isinstance(needle, str):
        return False
    return text.startswith(needle) if op == "starts_with" else text.endswith(needle)


def matches(node: dict | None, facts: LeadFacts) -> bool:
    """True if ``facts`` satisfy the condition or group ``node`` (``None``/``{}`` is true)."""
    if not node:
        return True
    if "all" in node:
        return all(matches(child, facts) for child in node["all"])
    if "any" in node:
        children = node["any"]
        return not children or any(matches(child, facts) for child in children)
    return _compare(node["op"], facts.get(node["field"]), node.get("value"))


def validate(node: Any, path: str = "conditions") -> list[str]:
    """Problems of a condition tree, each prefixed with its path (empty list: valid)."""
    if node is None or node == {}:
        return []
    if not isinstance(node, dict):
        return [f"{path}: expected an object"]
    groups = [k for k in ("all", "any") if k in node]
    if groups:
        key = groups[0]
        if len(node) != 1:
            return [f"{path}: a group has exactly one key, all or any"]
        if not isinstance(node[key], list):
            return [f"{path}.{key}: expected a list"]
        return [e for i, child in enumerate(node[key]) for e in validate(child, f"{path}.{key}[{i}]")]
    errors = []
    name, op = node.get("field"), node.get("op")
    if not isinstance(name, str) or not (
        name in PLAIN_FIELDS or (name.startswith(PREFIX_FIELDS) and len(name.split(".", 1)[1]) > 0)
    ):
        errors.append(f"{path}.field: unknown field {name!r}")
    if not isinstance(op, str) or op not in OPS:
        errors.append(f"{path}.op: unknown operator {op!r}; expected one of {', '.join(sorted(OPS))}")
    elif "value" not in node:
        errors.append(f"{path}.value: required")
    elif op in LIST_OPS and not isinstance(node["value"], list):
        errors.append(f"{path}.value: {op} expects a list")
    elif op in NUMBER_OPS and _number(node["value"]) is None:
        errors.append(f"{path}.value: {op} expects a number")
    elif op == "exists" and not isinstance(node["value"], bool):  # "false" (text) would mean true
        errors.append(f"{path}.value: exists expects true or false")
    extra = set(node) - {"field", "op", "value"}
    if extra:
        errors.append(f"{path}: unexpected keys {', '.join(sorted(extra))}")
    return errors


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the evaluator sees it; ``key`` is the caller's id (the RoutingRule pk)."""

    key: Any
    name: str
    conditions: dict | None = None


@dataclass(frozen=True)
class Match:
    rule: RuleSpec | None
    tried: tuple[dict, ...]  # [{"rule": key, "name": …, "matched": bool}] in order, up to the match


def first_match(rules: Sequence[RuleSpec], facts: LeadFacts) -> Match:
    """The first rule (in the given order) whose conditions hold; ``rule`` is None when none does."""
    tried = []
    for rule in rules:
        hit = matches(rule.conditions, facts)
        tried.append({"rule": rule.key, "name": rule.name, "matched": hit})
        if hit:
            return Match(rule, tuple(tried))
    return Match(None, tuple(tried))


def lead_score(points: Iterable[dict], facts: LeadFacts) -> tuple[float, list[dict]]:
    """Sum of ``points`` of the matching items of a points model, and the items that matched."""
    total, hits = 0.0, []
    for i, item in enumerate(points or ()):
        if matches(item.get("when"), facts):
            value = _number(item.get("points")) or 0.0
            total += value
            hits.append({"item": i, "points": value})
    return total, hits


def validate_points(points: Any, path: str = "score_points") -> list[str]:
    if points in (None, []):
        return []
    if not isinstance(points, list):
        return [f"{path}: expected a list"]
    errors = []
    for i, item in enumerate(points):
        if not isinstance(item, dict) or _number(item.get("points")) is None:
            errors.append(f"{path}[{i}]: expected {{'when': …, 'points': number}}")
            continue
        errors.extend(validate(item.get("when"), f"{path}[{i}].when"))
    return errors
