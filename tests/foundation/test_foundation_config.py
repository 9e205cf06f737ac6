"""Config as code: import is idempotent, export → import → export is identical, every problem names its
path in the file, and nothing is written when there is one."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.models import MeetingType
from calendars.models import DateOverride, TimeOff, WorkingHours
from routing.configfile import ConfigInvalid, config_export, config_import, dump_document, parse_config
from routing.models import LedgerEntry, Pool, PoolMember, Rep, RepSkill
from tests.foundation.conftest import run

pytestmark = pytest.mark.django_db

DEMO = Path(__file__).resolve().parents[2] / "demo" / "baton.yaml"
MODELS = (Rep, RepSkill, WorkingHours, DateOverride, TimeOff, Pool, PoolMember, MeetingType, LedgerEntry)

BASE = {
    "version": 1,
    "reps": [
        {
            "name": "Ana",
            "email": "ana@x.example",
            "timezone": "Europe/Berlin",
            "skills": {"enterprise": 8},
            "working_hours": {"monday": ["09:00-12:00", "13:00-17:00"], "friday": ["20:00-24:00"]},
            "date_overrides": [
                {"date": "2026-12-24", "hours": []},
                {"date": "2026-12-31", "hours": ["09:00-12:00"]},
            ],
            "time_off": [
                {"start": "2026-08-01T00:00:00+02:00", "end": "2026-08-15T00:00:00Z", "reason": "Summer"}
            ],
        },
        {"name": "Ben", "email": "ben@x.example", "timezone": "America/New_York", "daily_cap": 4},
    ],
    "pools": [
        {
            "slug": "team",
            "name": "Team",
            "strategy": "group",
            "members": [
                {"rep": "ana@x.example", "role": "ae", "weight": 2},
                {"rep": "ben@x.example", "role": "se", "rank": 1, "daily_cap": 3},
            ],
        }
    ],
    "meeting_types": [
        {
            "slug": "intro",
            "title": "Intro",
            "duration_minutes": 30,
            "pool": "team",
            "questions": [
                {
                    "key": "size",
                    "label": "Size",
                    "type": "select",
                    "options": ["1-10", "11+"],
                    "required": True,
                }
            ],
        }
    ],
}


def counts() -> dict[str, int]:
    return {m.__name__: m.objects.count() for m in MODELS}


def apply(doc) -> list[str]:
    return config_import(config=parse_config(copy.deepcopy(doc)))


def test_import_creates_everything_then_changes_nothing():
    changes = apply(BASE)
    assert "rep ana@x.example: created" in changes and "meeting type intro: created" in changes
    ana = Rep.objects.get(email="ana@x.example")
    assert sorted((h.weekday, str(h.start), str(h.end)) for h in ana.working_hours.all()) == [
        (0, "09:00:00", "12:00:00"),
        (0, "13:00:00", "17:00:00"),
        (4, "20:00:00", "00:00:00"),
    ]
    assert ana.date_overrides.get(date="2026-12-24").is_day_off
    assert ana.time_off.get().start.isoformat() == "2026-07-31T22:00:00+00:00"
    member = PoolMember.objects.get(rep=ana)
    assert (member.role, member.weight) == ("ae", 2.0)
    assert MeetingType.objects.get(slug="intro").questions[0]["options"] == ["1-10", "11+"]
    before = counts()
    assert apply(BASE) == []
    assert counts() == before


def test_update_replaces_lists_and_reports_each_change():
    apply(BASE)
    doc = copy.deepcopy(BASE)
    doc["reps"][0]["working_hours"] = {"tuesday": ["10:00-11:00"]}
    doc["reps"][0]["skills"] = {"german": 3}
    doc["reps"][1]["timezone"] = "Asia/Kolkata"
    doc["pools"][0]["members"].pop()
    doc["meeting_types"][0]["duration_minutes"] = 45
    changes = apply(doc)
    assert "rep ben@x.example: changed timezone" in changes
    assert "rep ana@x.example: working hours: 1 added, 3 removed" in changes
    assert "pool team: members removed: ben@x.example" in changes
    assert "meeting type intro: changed duration_minutes" in changes
    assert list(RepSkill.objects.values_list("skill", "level")) == [("german", 3)]
    assert Rep.objects.filter(email="ben@x.example").exists()  # reps are never deleted
    assert apply(doc) == []


def test_round_trip_export_import_export_is_identical(demo):
    first = dump_document(config_export())
    for model in (MeetingType, Pool, Rep):
        model.objects.all().delete()
    assert apply(yaml.safe_load(first))
    assert dump_document(config_export()) == first
    assert apply(yaml.safe_load(first)) == []


def test_json_export_reimports(tmp_path):
    apply(BASE)
    out = tmp_path / "baton.json"
    run("export_config", "-o", str(out))
    data = json.loads(out.read_text())
    assert data["pools"][0]["members"][0] == {
        "rep": "ana@x.example",
        "rank": 0,
        "weight": 2.0,
        "role": "ae",
        "daily_cap": None,
        "active": True,
    }
    assert "No changes" in run("import_config", str(out))


def test_new_member_joins_at_mean_load_through_the_service():
    apply(BASE)
    PoolMember.objects.filter(rep__email="ana@x.example").update(adjustment=4.0)  # load 4 / weight 2 = 2
    PoolMember.objects.filter(rep__email="ben@x.example").update(adjustment=4.0)  # load 4
    doc = copy.deepcopy(BASE)
    doc["reps"].append({"name": "Cy", "email": "cy@x.example", "timezone": "UTC"})
    doc["pools"][0]["members"].append({"rep": "cy@x.example", "role": "se"})
    apply(doc)
    cy = PoolMember.objects.get(rep__email="cy@x.example")
    assert cy.adjustment == pytest.approx(4.0)  # a group pool: the mean of its role (Ben's 4; Ana is an AE)
    assert LedgerEntry.objects.get(rep=cy.rep, kind="joined").delta == pytest.approx(4.0)


def test_reactivated_member_rejoins():
    apply(BASE)
    doc = copy.deepcopy(BASE)
    doc["pools"][0]["members"][1]["active"] = False
    apply(doc)
    joined = LedgerEntry.objects.filter(kind="joined").count()
    apply(BASE)
    assert LedgerEntry.objects.filter(kind="joined").count() == joined + 1


def test_dry_run_writes_nothing():
    changes = config_import(config=parse_config(copy.deepcopy(BASE)), dry_run=True)
    assert "rep ana@x.example: created" in changes
    assert sum(counts().values()) == 0


def bad(path: list, value) -> dict:
    doc = copy.deepcopy(BASE)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    elif isinstance(target, list) and path[-1] == len(target):
        target.append(value)
    else:
        target[path[-1]] = value
    return doc


CASES = [
    (["pools", 0, "members", 0, "rep"], "ana@y", "pools[0].members[0].rep: unknown rep ana@y"),
    (
        ["reps", 2],
        {"name": "A", "email": "ana@x.example", "timezone": "UTC"},
        "reps[2].email: duplicate rep 'ana@x.example' (also at reps[0])",
    ),
    (["reps", 0, "email"], "nope", "reps[0].email: Enter a valid email address."),
    (["reps", 0, "timezone"], "Mars/Base", "reps[0].timezone: Mars/Base is not a known IANA time zone"),
    (["reps", 0, "active"], "yes", "reps[0].active: expected true or false, got 'yes'"),
    (["reps", 1, "daily_cap"], "4", "reps[1].daily_cap: expected an integer, got '4'"),
    (["reps", 0, "name"], KeyError, "reps[0].name: required"),
    (["reps", 0, "colour"], "red", "reps[0].colour: unknown key"),
    (["reps", 0, "skills", "enterprise"], 11, "reps[0].skills.enterprise: expected a level from 1 to 10"),
    (["reps", 0, "working_hours", "funday"], [], "reps[0].working_hours.funday: unknown weekday"),
    (
        ["reps", 0, "working_hours", "monday", 1],
        "11:00-12:30",
        "reps[0].working_hours.monday: the ranges overlap",
    ),
    (
        ["reps", 0, "working_hours", "monday", 0],
        "17-9",
        'reps[0].working_hours.monday[0]: expected a range like "09:00-17:00"',
    ),
    (
        ["reps", 0, "working_hours", "monday", 0],
        "12:00-09:00",
        "reps[0].working_hours.monday[0]: the range ends before it starts",
    ),
    (
        ["reps", 0, "date_overrides", 0, "date"],
        "2026-02-30",
        "reps[0].date_overrides[0].date: expected a date",
    ),
    (
        ["reps", 0, "date_overrides", 1, "date"],
        "2026-12-24",
        "reps[0].date_overrides[1].date: 2026-12-24 is listed twice",
    ),
    (
        ["reps", 0, "time_off", 0, "start"],
        "2026-08-01T00:00:00",
        "reps[0].time_off[0].start: give the UTC offset",
    ),
    (
        ["reps", 0, "time_off", 0, "end"],
        "2026-07-01T00:00:00Z",
        "reps[0].time_off[0].end: must be after start",
    ),
    # year 1 at +14:00 has no UTC instant: an OverflowError (a traceback) before the year bound
    (
        ["reps", 0, "time_off", 0, "start"],
        "0001-01-01T00:00:00+14:00",
        "reps[0].time_off[0].start: Out of range: years 2000 to 2999 only.",
    ),
    (
        ["reps", 0, "time_off", 0, "end"],
        "9999-12-31T23:59:59Z",
        "reps[0].time_off[0].end: Out of range: years 2000 to 2999 only.",
    ),
    (
        ["reps", 0, "date_overrides", 0, "date"],
        "0001-01-01",
        "reps[0].date_overrides[0].date: Out of range: years 2000 to 2999 only.",
    ),
    (["pools", 0, "strategy"], "magic", "pools[0].strategy: Value 'magic' is not a valid choice."),
    (
        ["pools", 0, "fairness_period"],
        "forever",
        "pools[0].fairness_period: Value 'forever' is not a valid choice.",
    ),
    (["pools", 0, "slug"], "bad slug", "pools[0].slug: Enter a valid"),
    (
        ["pools", 0, "members", 0, "weight"],
        0,
        "pools[0].members[0].weight: Ensure this value is greater than or equal to 0.01.",
    ),
    (
        ["pools", 0, "members", 1, "rep"],
        "ana@x.example",
        "pools[0].members[1].rep: duplicate member 'ana@x.example'",
    ),
    (["pools", 0, "members", 1, "role"], "", "pools[0].members[1].role: required in a group pool"),
    (["meeting_types", 0, "pool"], "nowhere", "meeting_types[0].pool: unknown pool nowhere"),
    (
        ["meeting_types", 0, "slot_interval_minutes"],
        7,
        "meeting_types[0].slot_interval_minutes: Value 7 is not a valid choice.",
    ),
    (
        ["meeting_types", 0, "duration_minutes"],
        2,
        "meeting_types[0].duration_minutes: Ensure this value is greater than or equal to 5.",
    ),
    (
        ["meeting_types", 0, "questions", 0, "options"],
        [],
        "meeting_types[0].questions[0].options: a select question needs",
    ),
    (
        ["meeting_types", 0, "questions", 0, "type"],
        "weird",
        "meeting_types[0].questions[0].type: expected one of",
    ),
    (["version"], 2, "version: unsupported version 2"),
]


@pytest.mark.parametrize("path,value,message", CASES, ids=[c[2].split(":")[0] for c in CASES])
def test_every_problem_names_its_path_and_nothing_is_written(path, value, message):
    with pytest.raises(ConfigInvalid) as info:
        parse_config(bad(path, value))
    # the problem itself comes first; a changed e-mail or slug may also orphan the references to it
    assert info.value.errors[0].startswith(message), info.value.errors
    assert len(info.value.errors) <= 2, info.value.errors


def test_all_problems_reported_at_once_and_command_writes_nothing(tmp_path):
    doc = bad(["reps", 0, "timezone"], "Mars/Base")
    doc["pools"][0]["members"][1]["rep"] = "zed@x.example"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(CommandError, match="2 problem"):
        run("import_config", str(path))
    assert sum(counts().values()) == 0


def test_known_rep_in_database_may_be_referenced_without_being_listed():
    apply(BASE)
    doc = {
        "pools": [
            {"slug": "solo", "name": "Solo", "strategy": "ranked", "members": [{"rep": "ben@x.example"}]}
        ]
    }
    assert apply(doc) == ["pool solo: created", "pool solo: member ben@x.example: created"]


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(CommandError):
        call_command("import_config", str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("reps: [\n")
    with pytest.raises(CommandError):
        call_command("import_config", str(broken))
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(ConfigInvalid, match=r"\(top level\): expected a mapping"):
        parse_config(yaml.safe_load(top.read_text()))


def test_demo_file_is_valid_config():
    parse_config(yaml.safe_load(DEMO.read_text()))


def test_documented_example_is_valid_and_imports():
    text = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(yaml.safe_load(example))
    assert config_import(config=config)
    assert config_import(config=parse_config(yaml.safe_load(example))) == []


def test_readme_example_is_valid_and_imports():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert config_import(config=parse_config(yaml.safe_load(example)))
    assert config_import(config=parse_config(yaml.safe_load(example))) == []


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["09:00-17:00", "24:00-25:00", "2026-12-24", "2026-13-01T00:00:00Z", "ana@x.example", "team"]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)


def paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths(value, (*prefix, i))


ALL_PATHS = [p for p in paths(BASE) if p]
PATH = re.compile(
    r'^(\(top level\)|version|reps|pools|meeting_types)(\.[\w-]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*: '
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), VALUES), min_size=1, max_size=3))
def test_any_mangled_document_is_either_valid_or_rejected_with_paths(edits):
    """Whatever value lands wherever in a valid document, parsing never crashes: it lists problems, each
    starting with a path, or returns a Config that the database accepts."""
    doc = copy.deepcopy(BASE)
    for path, value in edits:
        target = doc
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        config = parse_config(doc)
    except ConfigInvalid as exc:
        assert exc.errors
        for error in exc.errors:
            assert PATH.match(error), error
    else:
        assert config_import(config=config, dry_run=True)  # and the database takes what passed
