"""The checker behind ``parse_config``: JSON types, model validation, time ranges, instants and the
qualification questions. Every problem is collected as ``path.in.file: message``."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from routing.core.localtime import ranges_overlap
from routing.validators import (
    OUT_OF_RANGE,
    SURROGATE,
    escape_surrogates,
    stored_within_years,
    within_years,
)

RANGE_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
QUESTION_TYPES = ("text", "textarea", "email", "phone", "number", "select", "multiselect", "checkbox")
QUESTION_KEYS = ("key", "label", "type", "options", "required", "help")
QUESTION_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MIDNIGHT = dt.time(0)


SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def join(path: str, key: Any) -> str:
    """``path.key``, or ``path["odd key"]`` when the key is not a plain word."""
    if isinstance(key, str) and SIMPLE_KEY.match(key):
        return f"{path}.{key}"
    shown = json.dumps(key, ensure_ascii=False) if isinstance(key, str) else repr(key)
    return f"{path}[{escape_surrogates(shown)}]"


def paired_surrogates(text: str) -> str:
    """``text`` with each UTF-16 surrogate pair made the one character it stands for. JSON escapes a
    character beyond U+FFFF as a pair (``json.dumps`` and JavaScript write 😀 as ``\\ud83d\\ude00``), which
    PyYAML reads as two lone surrogates; a lone one stays as it is (``unstorable_text`` refuses it)."""
    if not SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _unstorable(text: str) -> str | None:
    """Why the database cannot store ``text``: PostgreSQL keeps NUL (U+0000) neither in text nor in jsonb,
    and a lone surrogate (half of a UTF-16 pair: an emoji cut in two) is no character and has no UTF-8."""
    if "\x00" in text:
        return "contains a NUL (\\x00) character"
    found = SURROGATE.search(text)
    if found:
        return f"contains {escape_surrogates(found[0])}, half of a UTF-16 surrogate pair: not a character"
    return None


def unstorable_text(value: Any, path: str) -> list[str]:
    """``path: problem`` for each string (value or key) of a loaded document that the database cannot store
    (``_unstorable``). Such a document is refused before anything reads it — including the lookups of the
    names it references."""
    if isinstance(value, str):
        problem = _unstorable(value)
        return [f"{path}: {problem}"] if problem else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = join(path, key)
            problem = _unstorable(key) if isinstance(key, str) else None
            if problem:
                found.append(f"{where}: {problem}")
            found += unstorable_text(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += unstorable_text(item, f"{path}[{i}]")
    return found


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as JSON and read back equal: NaN or an infinity (Python's JSON reader,
    behind the admin's JSON boxes, takes them; JSON has neither), a key that is no string, or a value JSON
    does not have (a YAML date)."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list):
        return next((p for p in map(json_problem, value) if p), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"keys must be strings, got {key!r}"
            problem = json_problem(item)
            if problem:
                return problem
        return None
    return f"{value!r} is not a JSON value (quote dates and times)"


def json_problems(value: Any, path: str) -> list[str]:
    """``path: problem`` for what a JSON column cannot hold as it is: a value that is no JSON
    (``json_problem``) and text the database cannot store (``unstorable_text``). The models' validators of
    rule conditions, required skills and score points run it, so the admin refuses what the config file
    refuses."""
    problem = json_problem(value)
    return ([f"{path}: {problem}"] if problem else []) + unstorable_text(value, path)


class ConfigInvalid(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


def _fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(t: dt.time) -> int:
    return t.hour * 60 + t.minute


def format_range(start: dt.time, end: dt.time) -> str:
    end_min = 1440 if end == MIDNIGHT else end.hour * 60 + end.minute
    return f"{_fmt(start.hour * 60 + start.minute)}-{_fmt(end_min)}"


class Checker:
    def __init__(self):
        self.errors: list[str] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict | None:
        if not isinstance(value, dict):
            self.err(path, f"expected a mapping, got {type(value).__name__}")
            return None
        for key in value:
            if key not in allowed:
                self.err(join(path, key), f"unknown key (expected one of: {', '.join(allowed)})")
        return value

    def seq(self, value: Any, path: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(path, f"expected a list, got {type(value).__name__}")
            return []
        return value

    def fields(self, obj: dict, path: str, model: type[models.Model], names: tuple[str, ...]) -> dict:
        """Read ``names`` from ``obj`` with their model field's type and default; then ``full_clean`` the
        fields whose type was right (so one bad field does not hide the problems of the others)."""
        out: dict[str, Any] = {}
        bad: set[str] = set()
        for name in names:
            f = model._meta.get_field(name)
            if name not in obj:
                if f.has_default():
                    out[name] = f.get_default()
                elif f.null:
                    out[name] = None
                elif f.blank:
                    out[name] = ""
                else:
                    self.err(f"{path}.{name}", "required")
                    bad.add(name)
                continue
            value = obj[name]
            expected = _type_error(f, value)
            if expected:
                self.err(f"{path}.{name}", f"expected {expected}, got {value!r}")
                bad.add(name)
            out[name] = value
        good = tuple(n for n in names if n not in bad)
        self.clean(model(**{n: out[n] for n in good}), path, good, check_constraints=not bad)
        return out

    def clean(
        self, instance: models.Model, path: str, names: tuple[str, ...], *, check_constraints: bool = True
    ) -> None:
        exclude = [f.name for f in instance._meta.fields if f.name not in names]
        try:
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
            if check_constraints:  # the rows' own rules; uniqueness is the file's (``_duplicates``)
                errors = []
                for constraint in instance._meta.constraints:
                    if isinstance(constraint, models.CheckConstraint):
                        try:
                            constraint.validate(type(instance), instance, exclude=set(exclude))
                        except ValidationError as exc:
                            errors.append(exc)
                if errors:
                    raise ValidationError({NON_FIELD_ERRORS: errors})
        except ValidationError as exc:
            for name, errors in exc.error_dict.items():
                where = path if name == NON_FIELD_ERRORS else f"{path}.{name}"
                for error in errors:
                    message = " ".join(error.messages)
                    if error.code == "invalid_choice":
                        choices = [str(value) for value, _ in instance._meta.get_field(name).flatchoices]
                        message += f" Choose one of: {', '.join(choices)}."
                    self.err(where, message)

    def time_range(self, value: Any, path: str) -> tuple[dt.time, dt.time] | None:
        match = RANGE_RE.match(value) if isinstance(value, str) else None
        if not match:
            self.err(path, f'expected a range like "09:00-17:00", got {value!r}')
            return None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440:
            self.err(path, f"not a time of day: {value!r}")
            return None
        if end == 0:
            end = 1440
        if end <= start:
            self.err(path, f"the range ends before it starts: {value!r}")
            return None
        return dt.time(h1, m1), (MIDNIGHT if end == 1440 else dt.time(h2, m2))

    def ranges(self, value: Any, path: str) -> list[tuple[dt.time, dt.time]]:
        out = []
        for i, item in enumerate(self.seq(value, path)):
            parsed = self.time_range(item, f"{path}[{i}]")
            if parsed:
                out.append(parsed)
        if ranges_overlap(out):
            self.err(path, "the ranges overlap")
        return out

    def instant(self, value: Any, path: str) -> dt.datetime | None:
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                self.err(path, f"expected an ISO 8601 date-time like 2026-12-24T09:00:00Z, got {value!r}")
                return None
        if not isinstance(value, dt.datetime):
            self.err(path, f"expected an ISO 8601 date-time, got {value!r}")
            return None
        if value.utcoffset() is None:
            self.err(path, "give the UTC offset (e.g. Z or +01:00)")
            return None
        if not stored_within_years(value):  # the UTC instant too: it is what an export writes
            self.err(path, OUT_OF_RANGE)
            return None
        return value.astimezone(dt.UTC)

    def date(self, value: Any, path: str) -> dt.date | None:
        day = None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            day = value
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(value.strip())
        if day is None:
            self.err(path, f"expected a date like 2026-12-24, got {value!r}")
        elif not within_years(day):
            self.err(path, OUT_OF_RANGE)
            day = None
        return day


def _type_error(f: models.Field, value: Any) -> str | None:
    """The expected JSON type when ``value`` does not fit field ``f``, else None."""
    if value is None:
        return None if f.null else "a value (not null)"
    if isinstance(f, models.BooleanField):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(f, models.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if isinstance(f, models.FloatField):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number and _finite(value) else "a finite number"
    if isinstance(f, models.JSONField):
        return None
    return None if isinstance(value, str) else "a string"


def _finite(number: int | float) -> bool:
    """Whether ``number`` is a finite float or a whole number within a float's range (``math.isfinite``
    raises OverflowError for a whole number beyond it, such as a 400-digit ``weight``)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def validate_questions(value: Any, path: str = "questions") -> list[str]:
    """Problems of a meeting type's qualification questions (shared with the admin form), text the database
    cannot store among them (``unstorable_text``: the admin's JSON box takes half a surrogate pair, which
    made the booking page, the meeting-type API and the admin page itself a 500)."""
    check = Checker()
    check.errors.extend(unstorable_text(value, path))
    keys: set[str] = set()
    for i, raw in enumerate(check.seq(value, path)):
        where = f"{path}[{i}]"
        q = check.mapping(raw, where, QUESTION_KEYS)
        if q is None:
            continue
        key = q.get("key")
        if not isinstance(key, str) or not QUESTION_KEY_RE.match(key):
            check.err(f"{where}.key", "required: letters, digits, - or _ (at most 64)")
        elif key in keys:
            check.err(f"{where}.key", f"duplicate question key {key!r}")
        else:
            keys.add(key)
        if not isinstance(q.get("label"), str) or not q["label"].strip():
            check.err(f"{where}.label", "required: a non-empty string")
        kind = q.get("type", "text")
        options = q.get("options")
        if kind not in QUESTION_TYPES:
            check.err(f"{where}.type", f"expected one of: {', '.join(QUESTION_TYPES)}, got {kind!r}")
        elif kind in ("select", "multiselect"):
            if not isinstance(options, list) or not options:
                check.err(f"{where}.options", f"a {kind} question needs a non-empty list of options")
            elif not all(isinstance(o, str) and o for o in options) or len(set(options)) != len(options):
                check.err(f"{where}.options", "options must be distinct non-empty strings")
        elif options is not None:
            check.err(f"{where}.options", f"only select and multiselect questions have options, not {kind!r}")
        if "required" in q and not isinstance(q["required"], bool):
            check.err(f"{where}.required", "expected true or false")
        if "help" in q and not isinstance(q["help"], str):
            check.err(f"{where}.help", "expected a string")
    return check.errors
