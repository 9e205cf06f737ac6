"""Config files (routing/configfile): the leads app's settings an admin sets (score points, performance
weighting) survive export and import, the admin's default rule order re-imports its own export unchanged,
and a file that strands a rep's upcoming bookings says so."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from django.utils import timezone

from booking.models import Booking, MeetingType
from booking.selectors import bookings_needing_attention
from leads.models import PoolPerformance, RoutingRule, ScoreModel
from routing.configfile import config_export, config_import, dump_document, load_document, parse_config
from routing.models import Pool, PoolMember, Rep
from tests.foundation.config_docs import BASE, apply
from tests.foundation.conftest import run

pytestmark = pytest.mark.django_db

POINTS = [
    {"when": {"field": "answers.size", "op": "in", "value": ["1000+"]}, "points": 60},
    {"when": {"field": "email_domain", "op": "ends_with", "value": ".edu"}, "points": -40},
]


def export_wipe_import() -> str:
    """``export_config``, then an empty database (as a new installation, or a staging copy), then
    ``import_config`` of that file: the export's text."""
    text = dump_document(config_export())
    for model in (RoutingRule, MeetingType, PoolMember, Pool, Rep):
        model.objects.all().delete()
    config_import(config=parse_config(load_document(text)))
    return text


# 1. A meeting type's lead-score model (admin: Leads → Score models) is not in the export.


def test_a_meeting_types_score_model_survives_export_and_import_into_an_empty_database():
    """docs/config.md: "Everything an admin sets up for routing … can live in one YAML file"; export →
    import → export is the round trip. The lead score (``leads.ScoreModel`` of a meeting type, set in the
    admin) is what rules such as the docs' own example ``{field: score, op: gte, value: 50}`` test, and the
    file carries those rules, but ``config_export`` writes no score points and the file format has no key
    for them: on a new database the meeting type's rules come back and every lead scores 0, so the
    ``score gte 50`` rule never matches again. Nothing warns: export → import → export is even identical."""
    apply(BASE)
    ScoreModel.objects.create(meeting_type=MeetingType.objects.get(slug="intro"), points=POINTS)
    export_wipe_import()
    restored = ScoreModel.objects.filter(meeting_type__slug="intro").first()
    assert restored is not None, "the score model was lost by export → import"
    assert restored.points == POINTS


# 2. A pool's performance weighting (admin: Leads → Pool performance weightings) is not in the export.


def test_a_pools_performance_weighting_survives_export_and_import_into_an_empty_database():
    """A pool's settings round-trip through the file (strategy, fairness period, count_cancellations …),
    except ``leads.PoolPerformance``: its ``enabled``, ``strength``, ``floor``, ``window_days`` and
    ``prior_outcomes`` are set per pool in the admin and change who gets routed leads, yet
    ``config_export`` drops them and the import cannot set them, so a pool moved to a new database routes
    on plain fairness without a word."""
    apply(BASE)
    PoolPerformance.objects.create(
        pool=Pool.objects.get(slug="team"), strength=0.8, floor=0.3, window_days=30, prior_outcomes=4.0
    )
    export_wipe_import()
    restored = PoolPerformance.objects.filter(pool__slug="team").first()
    assert restored is not None, "the pool's performance weighting was lost by export → import"
    assert (restored.strength, restored.floor, restored.window_days, restored.prior_outcomes) == (
        0.8,
        0.3,
        30,
        4.0,
    )


# 3. Rules added in the admin with the default order: importing the database's own export changes them.


def test_rules_added_in_the_admin_with_the_default_order_reimport_their_own_export_unchanged(tmp_path):
    """The meeting type's rule inline starts every new rule at ``order`` 0 (the model default), so rules
    added in the admin without retyping the order all have order 0, sorted by ``(order, pk)`` — by the
    router, the admin and the export alike. docs/config.md: order values "are kept when they sort the rules
    as listed". ``_orders`` keeps a value only when it is strictly greater than the previous one, so an
    import of the database's own export renumbers the second rule and reports a change
    (``rule 'Everyone else': changed order``): a drift check (``export_config`` then
    ``import_config --dry-run`` in CI) never says "No changes" for an unchanged setup."""
    apply(BASE)
    intro = MeetingType.objects.get(slug="intro")
    RoutingRule.objects.create(
        meeting_type=intro, name="Too small", outcome="disqualify", disqualify_message="x"
    )
    RoutingRule.objects.create(meeting_type=intro, name="Everyone else")
    path = tmp_path / "baton.yaml"
    path.write_text(dump_document(config_export()), encoding="utf-8")
    output = run("import_config", str(path), "--dry-run")
    assert "No changes: the database already matches the file." in output, output


# 4. A file that deactivates a rep hosting upcoming meetings says nothing about them.


@pytest.mark.parametrize("change", ["rep deactivated", "time off over the meeting"])
def test_a_file_stranding_a_reps_upcoming_booking_says_it_needs_attention(booking, change):
    """docs/config.md: a member taken out of a pool by the file leaves its upcoming bookings needing
    attention "and the import says how many"; the rep's admin page says the same after a save that
    deactivates the rep or adds time off over a meeting ("1 upcoming booking … needs attention … See and
    reassign"). The file doing the same to the rep (``active: false`` for a rep who left, or a vacation
    added to ``time_off``) reports only ``rep …: changed active`` / ``time off: 1 added``: the prospect's
    meeting keeps a host who will not come, and the import's output, the one place the admin looks, does
    not say so."""
    host = booking.hosts.get(active=True).rep
    doc = config_export()
    [rep] = [r for r in doc["reps"] if r["email"] == host.email]
    if change == "rep deactivated":
        rep["active"] = False
    else:
        start = booking.start.astimezone(dt.UTC)
        rep["time_off"] = rep["time_off"] + [
            {
                "start": start.replace(hour=0, minute=0).isoformat(),
                "end": (start + dt.timedelta(days=2)).isoformat(),
                "reason": "Vacation",
            }
        ]
    changes = config_import(config=parse_config(copy.deepcopy(doc)))
    assert changes  # the change was made …
    flagged = bookings_needing_attention(Booking.objects.all(), now=timezone.now()).filter(pk=booking.pk)
    assert flagged.exists()  # … and the booking needs an admin
    assert any("attention" in line for line in changes), f"import said only {changes}"
