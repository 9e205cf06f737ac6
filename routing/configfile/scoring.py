"""The leads app's settings of a meeting type and of a pool in the config file.

* ``meeting_types[i].score_points``: the meeting type's lead-score points model (``leads.ScoreModel``: a
  list of ``{when: <condition>, points: n}``, summed into the lead's ``score`` before the rules run). It is
  checked as the admin checks it (``leads.models.validate_points``: JSON values, then
  ``leads.rules_core.validate_points``) with the file's path. Export always writes it (``[]``: no points);
  no key leaves the model as it is, ``[]`` empties it, ``score_points: null`` is an error.
* ``pools[i].performance``: the pool's performance weighting (``leads.PoolPerformance``), a mapping of
  ``enabled``, ``strength``, ``floor``, ``window_days`` and ``prior_outcomes`` checked by the model's own
  validators (a key left out takes its default). Export writes it for a pool that has one; no key leaves the
  pool's weighting (or its absence) as it is, ``enabled: false`` turns it off, ``performance: null`` is an
  error.
"""

from __future__ import annotations

from typing import Any

from leads import rules_core
from leads.models import PoolPerformance, ScoreModel
from routing.configfile.checker import Checker, json_problems
from routing.configfile.rules import canonical_conditions

PERFORMANCE_FIELDS = ("enabled", "strength", "floor", "window_days", "prior_outcomes")
POINT_KEYS = ("when", "points")


def parse_score_points(check: Checker, obj: dict, path: str) -> list | None:
    """The ``score_points`` of a meeting type's mapping ``obj``; None when the key is not there."""
    if "score_points" not in obj:
        return None
    value, where = obj["score_points"], f"{path}.score_points"
    if not isinstance(value, list):
        check.err(where, "expected a list of {when, points} ([] for none; leave the key out to keep them)")
        return None
    check.errors.extend(json_problems(value, where) + rules_core.validate_points(value, where))
    return value


def parse_performance(check: Checker, obj: dict, path: str) -> dict[str, Any] | None:
    """The ``performance`` of a pool's mapping ``obj`` (every field, defaults filled in); None when the key
    is not there."""
    if "performance" not in obj:
        return None
    where = f"{path}.performance"
    if obj["performance"] is None:
        check.err(where, "expected a mapping (enabled: false turns it off; leave the key out to keep it)")
        return None
    value = check.mapping(obj["performance"], where, PERFORMANCE_FIELDS)
    if value is None:
        return None
    return check.fields(value, where, PoolPerformance, PERFORMANCE_FIELDS)


def apply_score_points(meeting_type, points: list, label: str, changes: list[str]) -> None:
    """Make ``meeting_type``'s score points ``points`` (no model and an empty one both score 0)."""
    model = ScoreModel.objects.filter(meeting_type=meeting_type).first()
    if model is None:
        if points:
            ScoreModel.objects.create(meeting_type=meeting_type, points=points)
            changes.append(f"{label}: score points set ({_items(points)})")
    elif (model.points or []) != points:
        model.points = points
        model.save(update_fields=["points"])
        changes.append(f"{label}: score points changed ({_items(points)})")


def _items(points: list) -> str:
    return f"{len(points)} item" if len(points) == 1 else f"{len(points)} items"


def apply_performance(pool, fields: dict[str, Any], label: str, changes: list[str]) -> None:
    performance = PoolPerformance.objects.filter(pool=pool).first()
    if performance is None:
        PoolPerformance.objects.create(pool=pool, **fields)
        changes.append(f"{label}: performance weighting created")
        return
    changed = [name for name, value in fields.items() if getattr(performance, name) != value]
    if changed:
        for name in changed:
            setattr(performance, name, fields[name])
        performance.save(update_fields=changed)
        changes.append(f"{label}: performance weighting changed {', '.join(changed)}")


def export_score_points(meeting_type) -> list:
    """The points model in reading order (``when``, ``points``; condition keys as in rules), whatever the
    database (PostgreSQL's jsonb reorders keys)."""
    model = getattr(meeting_type, "score_model", None)
    out = []
    for item in (model.points or []) if model is not None else []:
        if not isinstance(item, dict):
            out.append(item)
            continue
        keys = [k for k in POINT_KEYS if k in item] + sorted(k for k in item if k not in POINT_KEYS)
        out.append({k: canonical_conditions(item[k]) if k == "when" else item[k] for k in keys})
    return out


def export_performance(pool) -> dict[str, Any] | None:
    performance = getattr(pool, "performance", None)
    if performance is None:
        return None
    return {name: getattr(performance, name) for name in PERFORMANCE_FIELDS}
