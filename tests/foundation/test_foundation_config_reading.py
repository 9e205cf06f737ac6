"""Config files (routing/configfile): where the reader's errors are, YAML 1.1's numbers kept as written,
bookings of hosts taken out of a pool, rule order at the integer limit, members joining in one import
(found by a hunting helper; each test failed before its fix)."""

from __future__ import annotations

import copy
import textwrap

import pytest
from django.db import connection
from django.utils import timezone

from booking.models import Booking
from booking.selectors import bookings_needing_attention
from leads.models import RoutingRule
from routing.configfile import ConfigInvalid, config_export, config_import, load_document, parse_config
from tests.foundation.test_foundation_config_rules import DOC as RULES_DOC

pytestmark = pytest.mark.django_db


def problems_of(text: str, filename: str) -> list[str]:
    """The problems ``import_config`` prints for a file with this text (read, then checked)."""
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(load_document(text, filename=filename))
    return caught.value.errors


# 1. A key given twice in a JSON file: the problem does not say where.


def test_a_key_given_twice_in_a_json_file_says_where():
    """docs/config.md: "Every problem names its place in the file", and a key given twice in one mapping is
    an error. In a YAML file the message names the line and column of both keys; in a JSON file (the format
    ``export_config -o baton.json`` writes, hundreds of lines for a real team) it is only
    "not valid JSON: the key 'monday' is given twice in one object": which of the file's 40 ``monday`` keys
    is the pasted one, the admin has to find by hand. The message should name the line (as every other JSON
    syntax error does: "line 3 column 9") or the path of the mapping."""
    text = textwrap.dedent(
        """\
        {"reps": [
          {"name": "Ana", "email": "ana@x.example", "timezone": "UTC",
           "working_hours": {"monday": ["09:00-12:00"]}},
          {"name": "Ben", "email": "ben@x.example", "timezone": "UTC",
           "working_hours": {"monday": ["09:00-12:00"],
                             "monday": ["13:00-17:00"]}}
        ]}
        """
    )
    [problem] = problems_of(text, "baton.json")
    assert "given twice" in problem
    assert "line 6" in problem or "reps[1].working_hours" in problem, problem


# 2. An impossible date written unquoted in YAML: the problem does not say where.


@pytest.mark.parametrize(
    "value",
    ["2026-02-30", "2026-04-31"],
)
def test_an_impossible_unquoted_date_names_its_place_in_the_file(value):
    """docs/config.md: "Every problem names its place in the file, as a path". A date override typed
    unquoted (``date: 2026-02-30``, as people write dates in YAML; quoted it is
    ``reps[0].date_overrides[0].date: expected a date like 2026-12-24``) is refused as
    "baton.yaml: not valid YAML: day is out of range for month" — no line, no path: PyYAML's timestamp
    constructor raises a plain ValueError without its position, which ``load_document`` reports bare. The
    message should name the line (as other YAML errors do) or the path of the value."""
    text = textwrap.dedent(
        f"""\
        reps:
          - name: Ana
            email: ana@x.example
            timezone: UTC
            date_overrides:
              - {{date: 2026-12-24, hours: []}}
              - {{date: {value}, hours: []}}
        """
    )
    [problem] = problems_of(text, "baton.yaml")
    assert "line 7" in problem or "reps[0].date_overrides[1].date" in problem, problem


# 3. YAML 1.1 reads an unquoted leading-zero postcode as octal and 10:30 as base 60: a rule silently changed.

ZIP_DOC = """\
reps:
  - {{name: Ana, email: ana@x.example, timezone: America/New_York}}
pools:
  - slug: northeast
    name: Northeast
    strategy: round_robin
    members: [{{rep: ana@x.example}}]
meeting_types:
  - slug: intro
    title: Intro
    duration_minutes: 30
    pool: northeast
    questions:
      - {{key: zip, label: ZIP code, type: text}}
      - {{key: start, label: Preferred start, type: select, options: ["9:30", "10:30"]}}
    rules:
      - name: Territory
        conditions: {{field: {field}, op: {op}, value: {value}}}
"""


@pytest.mark.parametrize(
    "field,op,value,meant",
    [
        ("answers.zip", "starts_with", "021", "021"),  # Boston 021xx; YAML 1.1: octal 021 = 17
        ("answers.zip", "in", "[02134, 02135]", ["02134", "02135"]),  # octal: 1116, 1117
        ("answers.start", "equals", "10:30", "10:30"),  # sexagesimal: 630
    ],
)
def test_an_unquoted_postcode_or_time_in_a_rule_is_not_silently_changed(field, op, value, meant):
    """routing-rules.md endorses unquoted postcodes in YAML rules ("an unquoted YAML postcode: starts_with 8
    matches 80331"). But PyYAML reads YAML 1.1: ``021`` (a Boston ZIP prefix; every ZIP code of New England
    and New Jersey starts with 0) is octal 17, ``[02134, 02135]`` is ``[1116, 1117]`` and ``10:30`` is the
    base-60 integer 630. The file is accepted, the rule is stored with those numbers and never matches the
    prospects it was written for (``starts_with 17`` matches Pennsylvania instead): silent misrouting of a
    whole territory. The docs already refuse a YAML date and a bare ``NO`` with a "quote it" hint; a value
    written with a leading zero or as HH:MM must either be kept as the text written or refused with its path
    and a hint to quote it."""
    text = ZIP_DOC.format(field=field, op=op, value=value)
    try:
        config = parse_config(load_document(text, filename="baton.yaml"))
    except ConfigInvalid as exc:  # refused: fine, if it says where
        assert any(p.startswith("meeting_types[0].rules[0].conditions") for p in exc.errors), exc.errors
        return
    config_import(config=config)
    stored = RoutingRule.objects.get(name="Territory").conditions
    assert stored["value"] == meant, f"the file says {value}, the rule stored {stored['value']!r}"


# 4. A host removed from (or deactivated in) the booking's pool: nothing flags their upcoming booking.


@pytest.mark.parametrize("change", ["removed from the pool", "deactivated in the pool"])
def test_a_host_taken_out_of_the_pool_flags_their_upcoming_booking(booking, change):
    """docs/config.md, "Needs attention": upcoming confirmed bookings "with a host who was deactivated" are
    listed so an admin can reassign them, and saving a rep says how many need attention. A rep taken out of
    a pool by the config file (a member missing from a named pool is removed; or ``active: false`` on the
    membership) keeps every upcoming booking of that pool, and nothing says so: the import prints only
    "pool fast-lane: members removed: ana@…", the booking is in no "Needs attention" list, and the rep,
    who left the team, is still expected at the prospect's meeting. Either the import must report the
    upcoming bookings the change leaves with a host outside the pool, or those bookings must need
    attention (as for a deactivated rep)."""
    host = booking.hosts.get(active=True).rep
    pool_slug = booking.pool.slug
    doc = config_export()
    [pool] = [p for p in doc["pools"] if p["slug"] == pool_slug]
    if change == "removed from the pool":
        pool["members"] = [m for m in pool["members"] if m["rep"] != host.email]
    else:
        [member] = [m for m in pool["members"] if m["rep"] == host.email]
        member["active"] = False
    changes = config_import(config=parse_config(doc))
    assert changes  # the change was made
    flagged = bookings_needing_attention(Booking.objects.all(), now=timezone.now()).filter(pk=booking.pk)
    reported = any("booking" in line or "attention" in line for line in changes)
    assert flagged.exists() or reported, f"import said only {changes}; the booking needs no attention"


# 5. A rule at the highest order the admin accepts: adding a rule after it is a traceback.


def test_a_rule_after_one_at_the_highest_order_imports_without_a_traceback():
    """The admin's rule list edits ``order`` directly (validated up to the database's integer maximum:
    2,147,483,647 on PostgreSQL), and "last" is often typed as the largest number. A file then listing a new
    rule after that one (or reordering it before another) is numbered ``previous + 1`` by ``apply_rules``,
    past the column's range: on PostgreSQL an IntegrityError (``leads_routingrule_order_check``), on SQLite
    an OverflowError, a traceback from ``import_config`` for a valid file. docs/config.md promises the rules
    are renumbered when their order values do not sort them as listed; the import must succeed
    (renumbering) or refuse with a message, never crash."""
    doc = copy.deepcopy(RULES_DOC)
    config_import(config=parse_config(copy.deepcopy(doc)))
    highest = connection.ops.integer_field_range("PositiveIntegerField")[1]
    RoutingRule.objects.filter(name="Everyone else").update(order=highest)
    [demo] = [m for m in doc["meeting_types"] if m["slug"] == "demo"]
    demo["rules"].append({"name": "Later"})
    config_import(config=parse_config(doc))
    rules = RoutingRule.objects.filter(meeting_type__slug="demo").order_by("order", "pk")
    names = list(rules.values_list("name", flat=True))
    assert names[-2:] == ["Everyone else", "Later"]


# 6. A member joining in the same import that deactivates another: the head start depends on list order.


def _standing(pool_slug: str) -> dict[str, float]:
    from routing.ledger import member_count, pool_ledger
    from routing.models import Pool, PoolMember

    pool = Pool.objects.get(slug=pool_slug)
    members = list(PoolMember.objects.filter(pool=pool).select_related("rep"))
    ledger = pool_ledger(pool, [m.rep_id for m in members], now=timezone.now())
    return {m.rep.email: member_count(m, ledger) for m in members}


def test_a_member_joining_while_another_is_deactivated_starts_at_the_active_members_mean():
    """docs/config.md: new members "start at the pool's mean load" (``pool_member_join``: the mean over the
    other *active* members), so they are not flooded with bookings, nor starved. The importer joins each
    new member as soon as its row is written, while it walks the file's member list: a member deactivated
    further down the same list is still active then, and counts. Bo (10 bookings this period) goes on leave
    (``active: false``) and Ann joins in the same file: listed before Bo (as the export orders them, by
    e-mail), Ann starts at (10 + 0) / 2 = 5 and gets no booking until Cy has had 5; listed after Bo, she
    starts at 0, Cy's load. The same change must give the same standing whatever the order of the list: the
    mean of the members active after the import."""
    from routing.services import ledger_assigned

    doc = {
        "reps": [
            {"name": n, "email": f"{n.lower()}@x.example", "timezone": "UTC"} for n in ("Ann", "Bo", "Cy")
        ],
        "pools": [
            {
                "slug": "team",
                "name": "Team",
                "strategy": "round_robin",
                "fairness_period": "never",
                "members": [{"rep": "bo@x.example"}, {"rep": "cy@x.example"}],
            }
        ],
    }
    config_import(config=parse_config(copy.deepcopy(doc)))
    from routing.models import Pool, Rep

    bo = Rep.objects.get(email="bo@x.example")
    for _ in range(10):
        ledger_assigned(pool_id=Pool.objects.get(slug="team").pk, booking_id=None, rep_ids=[bo.pk])
    assert _standing("team") == {"bo@x.example": 10, "cy@x.example": 0}
    members = [{"rep": "bo@x.example", "active": False}, {"rep": "cy@x.example"}]
    ann = {"rep": "ann@x.example"}
    doc["pools"][0]["members"] = [ann, *members]  # as export_config orders them (by e-mail); last: 0.0
    config_import(config=parse_config(doc))
    assert _standing("team")["ann@x.example"] == pytest.approx(0.0)
