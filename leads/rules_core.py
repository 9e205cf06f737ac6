"""Routing-rule conditions and lead scoring: pure Python, no Django.

A **condition** is ``{"field": F, "op": OP, "value": V}``; a **group** is ``{"all": [...]}`` or
``{"any": [...]}`` whose items are conditions or groups (nested freely). An empty group (or ``{}``) is true:
a rule without conditions is the catch-all.

Fields (``LeadFacts``): ``answers.<key>``, ``utm.<key>`` (e.g. ``utm.utm_source``), ``email``,
``email_domain``, ``free_mail`` (bool: the domain is in ``FREE_MAIL_DOMAINS``), ``country`` (ISO 3166
alpha-2, upper case), ``timezone`` (IANA name), ``score`` (number).

Operators: ``equals`` / ``not_equals`` (text compared case-insensitively), ``in`` / ``not_in`` (value is a
list), ``contains`` (text: case-insensitive substring; list answer: the item is selected), ``contains_any`` /
``contains_all`` (a list: ``contains`` any / all of its items, so on text a substring each, on a
multi-select answer a selected item each), ``starts_with`` / ``ends_with`` (text; a number on either side
compares as its digits: postcode ``starts_with 8``), ``gt`` / ``gte`` / ``lt`` / ``lte`` (numbers; a
non-number never matches), ``exists`` (value true/false). A missing field matches only ``not_equals``,
``not_in`` and ``exists: false``; blank text (empty or spaces: ``?utm_campaign=``) is missing.
``email_domain`` is the IDNA ASCII form (``normalize_domain``), and so is a rule's value compared with it: a
rule on ``bücher.de`` (saved before domains were normalised, or typed so) matches ``xn--bcher-kva.de``;
``contains`` (and ``contains_any`` / ``contains_all``) / ``starts_with`` / ``ends_with`` match in either form.

``validate`` refuses, with the value's path, what could never match or would break the evaluator: a list or
mapping for the one-value operators, a list item that is not one plain value (a nested list), and true/false
for a text-only field (``country: [DK, NO, SE]`` in YAML 1.1 is ``["DK", false, "SE"]``). The evaluator itself
never raises on an odd stored value: it does not match.

A **points model** is a list of ``{"when": <condition or group>, "points": n}``; the lead score is the sum of
the points of the items that match (see ``lead_score``).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import idna

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
# fields whose value is always text: true/false in a rule on them is a YAML slip (a bare NO is false)
TEXT_FIELDS = {"email", "email_domain", "country", "timezone"}
TEXT_PREFIXES = ("utm.",)
_MISSING = object()


def normalize_domain(domain: str) -> str:
    """A domain as DNS and the accounts store it: compatibility-normalised (NFKC: the full-width
    ``ｇｍａｉｌ.com`` is ``gmail.com``), lower case, and an internationalised name in its IDNA ASCII form
    (``Bücher.de`` → ``xn--bcher-kva.de``; IDNA 2008 with the UTS 46 mapping, as browsers resolve it).
    Text that is no valid IDN (an underscore, an empty label, a lone surrogate) is kept as normalised so
    far: it still compares with itself. Before, a lead at ``bücher.de`` never found its account, which is
    stored in ASCII."""
    domain = unicodedata.normalize("NFKC", domain.strip()).lower()
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return domain


def unicode_domain(domain: str) -> str:
    """The Unicode form of a domain ``normalize_domain`` gives (``xn--bcher-kva.de`` → ``bücher.de``), or
    ``domain`` itself when it has none: how a prospect's address may have been stored as typed."""
    if "xn--" not in domain:
        return domain
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain


def email_domain(email: str) -> str:
    """The domain of an e-mail address, normalised (``normalize_domain``)."""
    return normalize_domain(email.rpartition("@")[2])


def is_free_mail(domain: str) -> bool:
    return normalize_domain(domain) in FREE_MAIL_DOMAINS


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
        """The fact ``name``, or ``_MISSING``. Blank text (empty or only spaces) is missing, in an answer or a
        UTM value too: the booking page passes ``?utm_campaign=`` on as ``""``, and a blank campaign counted
        as one (``utm.utm_campaign exists: true`` took every lead of a link whose campaign was left empty)."""
        if name.startswith("answers."):
            value = self.answers.get(name[8:], _MISSING)
        elif name.startswith("utm."):
            value = self.utm.get(name[4:], _MISSING)
        else:
            value = self._plain(name)
        return _MISSING if isinstance(value, str) and not value.strip() else value

    def _plain(self, name: str) -> Any:
        return {
            "email": self.email.lower(),
            "email_domain": self.domain,
            "free_mail": is_free_mail(self.domain),
            "country": self.country.upper(),
            "timezone": self.timezone,
            "score": self.score,
        }.get(name, _MISSING)


def _norm(value: Any) -> Any:
    """Text as rules compare it: without surrounding blanks or case, and in one Unicode form (NFKC): a
    decomposed "Zu\u0308rich" (macOS, pasted text) is the rule's composed "Zürich"."""
    if not isinstance(value, str):
        return value
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value.strip()).casefold())


def _number(value: Any) -> float | None:
    """``value`` as a finite float: a number (not a yes/no) or text that reads as one; None otherwise, also
    for a whole number beyond a float's range (``float(10**400)`` raises OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    """What the text operators compare: text without case and surrounding blanks, a number as its digits
    (an unquoted YAML postcode ``8`` is ``"8"``); None for anything else (yes/no, lists)."""
    if isinstance(value, str):
        return _norm(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _items(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _same(actual: Any, expected: Any) -> bool:
    """``equals`` for one value: a number on either side (not a yes/no) compares as a number when both read
    as one ("50" equals 50 and 120 equals "120": a select option "50" against an unquoted YAML 50), else
    text compares without case and surrounding blanks. A yes/no equals only a yes/no (Python's ``1 == True``
    is not a rule's)."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
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
    if op == "contains":  # a list answer: the item is selected; text: a substring
        if isinstance(actual, list | tuple):
            return any(_same(item, expected) for item in actual)
        text, needle = _text(actual), _text(expected)
        return text is not None and needle is not None and needle in text
    if op in ("contains_any", "contains_all"):
        # each wanted value as ``contains``: a list answer compared item by item (a stored item may be
        # unhashable); text a substring, since the validator sends ``contains: [crm, erp]`` here (compared
        # whole, "We need a CRM integration" never matched ``contains_any: [crm]``); one value also equal
        # as ``equals`` has it (the number 50 and "50.0")
        one = not isinstance(actual, list | tuple)
        found = (
            _compare("contains", actual, wanted) or (one and _same(actual, wanted))
            for wanted in _items(expected)
        )
        return any(found) if op == "contains_any" else all(found)
    text, needle = _text(actual), _text(expected)
    if text is None or needle is None:
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
    if node.get("field") == "email_domain":
        return _compare_domain(node["op"], facts.get("email_domain"), node.get("value"))
    return _compare(node["op"], facts.get(node["field"]), node.get("value"))


def _rule_domain(value: Any) -> Any:
    """A rule's ``email_domain`` value in the form the fact has (``normalize_domain``); a list item by item.
    Rules saved before domains were normalised hold ``bücher.de`` and still match ``xn--bcher-kva.de``."""
    if isinstance(value, str):
        return normalize_domain(value)
    if isinstance(value, list | tuple):
        return [normalize_domain(item) if isinstance(item, str) else item for item in value]
    return value


def _compare_domain(op: str, actual: Any, expected: Any) -> bool:
    """``_compare`` for ``email_domain``: whole domains (``equals``, ``in`` …) in their normalised ASCII
    form; a part of one (``contains`` and, item by item, ``contains_any``/``contains_all``; ``starts_with``,
    ``ends_with``) in either form, since ``ü.de`` is no substring of ``xn--bcher-kva.de`` but is one of
    ``bücher.de``."""
    if op in ("contains_any", "contains_all") and actual is not _MISSING:  # each a ``contains``, as below
        found = (_compare_domain("contains", actual, wanted) for wanted in _items(expected))
        return any(found) if op == "contains_any" else all(found)
    if op not in ("contains", "starts_with", "ends_with") or actual is _MISSING:
        return _compare(op, actual, _rule_domain(expected))
    if _compare(op, actual, _rule_domain(expected)):
        return True
    if not isinstance(actual, str) or not isinstance(expected, str):
        return False
    return _compare(op, unicode_domain(actual), unicodedata.normalize("NFKC", expected))


# what to write instead of a list given to a one-value operator
ONE_VALUE_HINTS = {
    "equals": "use in for any of a list",
    "not_equals": "use not_in for none of a list",
    "contains": "use contains_any (or contains_all) for a list",
    "starts_with": "write one condition per prefix in an any group",
    "ends_with": "write one condition per suffix in an any group",
}


def _plain_value_problems(name: Any, item: Any, path: str) -> list[str]:
    """Problems of an item of a list operator's list: one plain value (text, a number or true/false). A list
    inside the list (``[[api, sso]]``) passed, then every lead that reached the rule crashed the router."""
    if item is None or isinstance(item, list | dict):
        kind = "null" if item is None else "a list" if isinstance(item, list) else "a mapping"
        return [f"{path}: expected text, a number or true/false, not {kind}"]
    return _text_field_problems(name, item, path)


def _text_field_problems(name: Any, value: Any, path: str) -> list[str]:
    """True/false compared with a text-only field (``TEXT_FIELDS``): never a match, and in a YAML file
    mostly a code read as a boolean (the bare ``NO`` of Norway is false in YAML 1.1)."""
    text_only = isinstance(name, str) and (name in TEXT_FIELDS or name.startswith(TEXT_PREFIXES))
    if not (text_only and isinstance(value, bool)):
        return []
    return [
        f"{path}: {name} is text, not {str(value).lower()}; quote it "
        '(YAML reads a bare NO, no, off, yes or on as true/false: write "NO")'
    ]


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
    elif op in LIST_OPS:
        for i, item in enumerate(node["value"]):
            errors.extend(_plain_value_problems(name, item, f"{path}.value[{i}]"))
    elif op in TEXT_OPS and isinstance(node["value"], list | dict):
        errors.append(f"{path}.value: {op} expects one value, not a list or mapping; {ONE_VALUE_HINTS[op]}")
    elif op in TEXT_OPS:
        errors.extend(_text_field_problems(name, node["value"], f"{path}.value"))
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


# An item's points are within ±POINTS_LIMIT: items of 1e308 added up to Infinity, which no JSON column holds
# (the lead's decision record), and every matching lead was a 500.
POINTS_LIMIT = 1_000_000


def lead_score(points: Iterable[dict], facts: LeadFacts) -> tuple[float, list[dict]]:
    """Sum of ``points`` of the matching items of a points model, and the items that matched (each item's
    points held within ±``POINTS_LIMIT``, as ``validate_points`` requires, for models saved before it did)."""
    total, hits = 0.0, []
    for i, item in enumerate(points or ()):
        if matches(item.get("when"), facts):
            value = max(-POINTS_LIMIT, min(POINTS_LIMIT, _number(item.get("points")) or 0.0))
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
        if abs(_number(item.get("points"))) > POINTS_LIMIT:
            errors.append(f"{path}[{i}].points: at most {POINTS_LIMIT:,} either way")
        errors.extend(validate(item.get("when"), f"{path}[{i}].when"))
    return errors
