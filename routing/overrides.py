"""Supervisor override reason codes: why an admin reassigned a booking or routed a lead by hand.

The code decides whether the override counts for fairness. A counting override moves the credit (the rep
who lost the booking is credited back, the new rep is charged); a non-counting one (``account_owner``: the
lead belongs to that rep anyway) writes its ledger entries with delta 0 and leaves every share as it was.
See docs/routing-rules.md ("Supervisor override").
"""

from __future__ import annotations

from django.db import models


class OverrideCode(models.TextChoices):
    REP_UNAVAILABLE = "rep_unavailable", "Rep unavailable (illness, leave, left)"
    CUSTOMER_REQUEST = "customer_request", "Customer asked for this rep"
    SKILL_MISMATCH = "skill_mismatch", "Skill / language mismatch"
    ACCOUNT_OWNER = "account_owner", "Account owner (does not count for fairness)"
    REBALANCE = "rebalance", "Rebalance load"
    OTHER = "other", "Other (explain in the note)"


NOT_COUNTED = frozenset({OverrideCode.ACCOUNT_OWNER})


def override_counts(code: str) -> bool:
    """Whether an override with ``code`` counts in the fairness ledger."""
    return code not in NOT_COUNTED


def override_reason(code: str, note: str = "") -> str:
    """The ledger reason text: ``"customer_request: asked for Ana"`` (at most 300 characters)."""
    note = (note or "").strip()
    return (f"{code}: {note}" if note else code)[:300]


def override_problems(code: str, note: str = "") -> dict[str, list[str]]:
    """Field-level problems of a code and note (empty when fine): a known code; ``other`` needs a note."""
    if code not in OverrideCode.values:
        return {"code": [f"Unknown reason code {code!r}; one of: {', '.join(OverrideCode.values)}."]}
    if code == OverrideCode.OTHER and not (note or "").strip():
        return {"reason": ["Explain an 'other' override in the note."]}
    return {}
