"""The routing decision record of a booking as the admin shows it (HTML tables from
``templates/admin/booking/booking/decision.html``): its candidates with their reasons, the hosts, the reps
withheld or found busy live, and its history (reassignments, outcomes)."""

from __future__ import annotations

import json
from datetime import datetime

from django.template.loader import render_to_string

from routing.models import Rep

REASONS = {
    "inactive": "inactive (member or rep)",
    "no_working_hours": "has no working hours",
    "notice": "too soon (minimum notice)",
    "horizon": "too far ahead (horizon)",
    "off_grid": "not on the slot grid",
    "outside_working_hours": "outside working hours",
    "time_off": "time off",
    "cap": "daily cap reached",
    "busy": "busy",
    "role_filled": "role already filled",
    "busy_live": "busy (live calendar check)",
    "seat_kept": "role's host kept (group reschedule)",
}
KNOWN_KEYS = {"strategy", "start", "candidates", "hosts", "withheld", "live_busy", "history"}


def _when(value) -> str:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(value or "—")


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _detail(key: str, value, name) -> str:
    """A history entry's value: a rep by name; a reschedule's ``from`` (the meeting as it was) as its time and
    hosts by name."""
    if key in ("from", "to") and isinstance(value, int):
        return name(value)
    if key == "from" and isinstance(value, dict):
        hosts = ", ".join(name(i) for i in value.get("hosts") or [] if isinstance(i, int))
        when = _when(value["start"]) if value.get("start") else ""
        return f"{when} with {hosts}" if hosts else when or _text(value)
    return _text(value)


def render_decision(decision: dict) -> str:
    """The routing decision record as HTML tables (``templates/admin/booking/booking/decision.html``)."""
    if not isinstance(decision, dict) or not decision:
        return "—"
    candidates = [c for c in decision.get("candidates") or [] if isinstance(c, dict)]
    names = {c.get("rep_id"): c.get("name") for c in candidates}
    wanted = {i for key in ("withheld", "live_busy") for i in decision.get(key) or []}
    wanted |= {h.get("rep_id") for h in decision.get("hosts") or [] if isinstance(h, dict)}
    for entry in decision.get("history") or []:
        # a reassignment names reps ("from"/"to": ids); a reschedule's "from" is the meeting as it was
        # ({"start", "hosts"}: a dict in a set was a 500 on every rescheduled booking's page)
        for key in ("from", "to"):
            value = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(value, int):
                wanted.add(value)
            elif isinstance(value, dict):
                wanted |= {i for i in value.get("hosts") or [] if isinstance(i, int)}
    missing = {i for i in wanted if isinstance(i, int) and i not in names}
    names.update(dict(Rep.objects.filter(pk__in=missing).values_list("pk", "name")))

    def name(rep_id) -> str:
        return f"{names.get(rep_id) or 'rep'} (#{rep_id})"

    context = {
        "strategy": decision.get("strategy"),
        "start": _when(decision.get("start")) if decision.get("start") else None,
        "hosts": [
            name(h.get("rep_id")) + (f" as {h['role']}" if h.get("role") else "")
            for h in decision.get("hosts") or []
            if isinstance(h, dict)
        ],
        "withheld": [name(i) for i in decision.get("withheld") or []],
        "live_busy": [name(i) for i in decision.get("live_busy") or []],
        "candidates": [
            {
                **c,
                "label": name(c.get("rep_id")),
                "last": _when(c["last_assigned"]) if c.get("last_assigned") else "never",
                "why": REASONS.get(c.get("reason"), c.get("reason") or ""),
            }
            for c in candidates
        ],
        "history": [
            {
                "at": _when(e.get("at")),
                "action": e.get("action", ""),
                "details": [(k, _detail(k, v, name)) for k, v in e.items() if k not in ("at", "action")],
            }
            for e in decision.get("history") or []
            if isinstance(e, dict)
        ],
        "extra": [(k, _text(v)) for k, v in decision.items() if k not in KNOWN_KEYS],
    }
    return render_to_string("admin/booking/booking/decision.html", context)
