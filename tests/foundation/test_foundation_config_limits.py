"""Config as code at its edges: values the checker must name as problems rather than crash on or pass into
the database (a 400-digit weight, a lone surrogate, a half-written ``hours:``), an export that must import
(instants in range as the UTC the export writes, an admin holding to the file's years and lengths), and an
import that removes what it says it removes (the same time off saved twice). Each test failed before its
fix."""

from __future__ import annotations

import copy
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from calendars.models import DateOverride, TimeOff
from leads.admin import RoutingRuleInlineForm
from routing.configfile import (
    ConfigInvalid,
    config_export,
    config_import,
    dump_document,
    load_document,
    parse_config,
)
from routing.models import Rep
from routing.validators import OUT_OF_RANGE
from tests.foundation.config_docs import BASE, apply

pytestmark = pytest.mark.django_db


def doc(**changes) -> dict:
    return copy.deepcopy(BASE) | changes


def import_text(text: str, filename: str = "baton.yaml") -> list[str]:
    """What ``manage.py import_config FILE`` does with the file's text (``import_file`` without the disk)."""
    return config_import(config=parse_config(load_document(text, filename=filename)))


def export_reimported() -> list[str]:
    """Export the database and import the export again (``ConfigInvalid`` if the file refuses it)."""
    return import_text(dump_document(config_export()))


# --- problems with their path, never a traceback or a crash at the database ------------------------------


def test_a_huge_whole_number_weight_is_a_problem_with_its_path_not_a_traceback():
    """A member's ``weight`` written as a long whole number (a pasted id, a key held down) is a problem at
    ``pools[0].members[0].weight``, like ``weight: .inf``. ``math.isfinite`` raised OverflowError on a
    400-digit int, so ``import_config`` printed a traceback."""
    document = doc()
    document["pools"][0]["members"][0]["weight"] = 10**400
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(document)
    [error] = caught.value.errors
    assert error.startswith("pools[0].members[0].weight: expected a finite number, got 1000")


def test_a_json_config_saved_as_yaml_with_an_escaped_emoji_imports():
    """docs/config.md: "YAML is a superset of JSON anyway". A JSON file written by ``json.dumps`` (or
    JavaScript) escapes an emoji as the surrogate pair ``\\ud83d\\ude00``; saved as ``baton.yaml`` it imports
    the name "Ana 😀", as the same text named ``baton.json`` does. PyYAML kept the two lone surrogates, the
    checker passed them and the import crashed with ``UnicodeEncodeError: surrogates not allowed``."""
    document = doc()
    document["reps"][0]["name"] = "Ana 😀"
    text = json.dumps(document)  # ensure_ascii: "Ana \ud83d\ude00"
    assert "\\ud83d\\ude00" in text
    assert load_document(text, filename="baton.yaml") == load_document(text, filename="baton.json")
    import_text(text, "baton.yaml")
    assert Rep.objects.get(email="ana@x.example").name == "Ana 😀"


@pytest.mark.parametrize("filename", ["baton.yaml", "baton.json"])
def test_a_lone_surrogate_is_refused_with_its_path(filename):
    """Half an emoji (a lone surrogate, ``\\ud83d``: text cut to a length in JavaScript) is no character:
    it has no UTF-8, so the import crashed writing it. It is refused with its path before anything is read,
    as NUL is, in a value and in a key, and the message itself prints."""
    document = doc()
    document["reps"][0]["name"] = "Ana \ud83d"
    document["reps"][0]["working_hours"]["monday\udc00"] = []
    with pytest.raises(ConfigInvalid) as caught:
        import_text(json.dumps(document), filename)
    assert caught.value.errors == [
        "reps[0].name: contains \\ud83d, half of a UTF-16 surrogate pair: not a character",
        'reps[0].working_hours["monday\\udc00"]: contains \\udc00, half of a UTF-16 surrogate pair: not a '
        "character",
    ]
    assert not Rep.objects.exists()


def test_a_date_override_with_an_empty_hours_key_is_refused_not_made_a_day_off():
    """A date override whose ``hours:`` is left empty for now (YAML reads it as null)::

        date_overrides:
          - date: "2026-12-31"
            hours:

    is refused at ``reps[0].date_overrides[0].hours``: a day off is said with ``[]``, and as ``rules: null``
    is an error "so a half-written key never deletes rules", a half-written ``hours:`` takes no day away.
    Null passed as ``[]`` and silently made 31 December a day off."""
    text = """
reps:
  - name: Ana
    email: ana@x.example
    timezone: Europe/Berlin
    working_hours: {thursday: ["09:00-17:00"]}
    date_overrides:
      - date: "2026-12-31"
        hours:
"""
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(load_document(text))
    assert caught.value.errors == [
        "reps[0].date_overrides[0].hours: expected a list of ranges ([] for a day off)"
    ]


# --- export → import must be lossless: the file and the admin accept the same values ------------------------


def test_time_off_is_in_the_file_s_years_as_the_utc_instant_an_export_writes():
    """The years 2000-2999 hold for the instant as stored and exported, in UTC: an end of
    ``2999-12-31T20:00:00-08:00`` is ``3000-01-01T04:00:00Z``, refused with its path. The checker tested the
    local year only, so the file imported and its export (in UTC) was refused. An instant in 2999 UTC,
    written in any offset, round-trips."""
    document = doc()
    document["reps"][0]["time_off"] = [
        {"start": "2000-01-01T00:30:00+01:00", "end": "2999-12-31T20:00:00-08:00", "reason": "Left"}
    ]
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(copy.deepcopy(document))
    assert caught.value.errors == [
        f"reps[0].time_off[0].start: {OUT_OF_RANGE}",
        f"reps[0].time_off[0].end: {OUT_OF_RANGE}",
    ]
    document["reps"][0]["time_off"][0] |= {
        "start": "2026-06-01T00:00:00Z",
        "end": "2999-12-31T15:00:00-08:00",
    }
    apply(document)
    assert export_reimported() == []


def test_the_admin_refuses_a_date_override_or_time_off_outside_the_file_s_years(admin_client):
    """docs/config.md: "the file accepts exactly what the admin accepts, and the admin no more than the
    file". A day off mistyped as 3026-12-24, or time off ending in the year 3000 (UTC), is refused on its
    admin page as the file refuses it. The admin saved them, and from then on ``export_config`` wrote a file
    that ``import_config`` refused."""
    apply(doc())
    rep = Rep.objects.get(email="ana@x.example")
    day_off = {"rep": rep.pk, "date": "3026-12-24", "start": "", "end": ""}
    response = admin_client.post(reverse("admin:calendars_dateoverride_add"), day_off)
    assert response.status_code == 200 and OUT_OF_RANGE in response.content.decode()
    time_off = {"rep": rep.pk, "start_0": "2026-08-03", "start_1": "00:00:00", "end_0": "3000-01-01",
                "end_1": "00:00:00", "reason": ""}  # fmt: skip
    response = admin_client.post(reverse("admin:calendars_timeoff_add"), time_off)
    assert response.status_code == 200 and OUT_OF_RANGE in response.content.decode()
    assert not DateOverride.objects.exists() and not TimeOff.objects.exists()
    # the model's validator tests the UTC instant, as the file does, whatever the admin's time zone
    pacific = ZoneInfo("America/Los_Angeles")
    late = TimeOff(
        rep=rep,
        start=dt.datetime(2026, 6, 1, tzinfo=pacific),
        end=dt.datetime(2999, 12, 31, 20, tzinfo=pacific),
    )
    with pytest.raises(ValidationError) as caught:
        late.full_clean()
    assert caught.value.message_dict == {"end": [OUT_OF_RANGE]}
    assert export_reimported() == []


def test_a_disqualify_message_longer_than_the_admin_allows_is_refused_by_the_file():
    """A rule's ``disqualify_message`` holds at most 2,000 characters in the file as in the admin's form.
    ``full_clean`` does not check a TextField's max_length, so the file took 2,001, and afterwards the
    meeting type's admin page could not be saved (its rule inline said "Ensure this value has at most 2000
    characters") until someone trimmed the text."""
    message = "x" * 2001
    document = doc()
    document["meeting_types"][0]["rules"] = [
        {"name": "Too small", "outcome": "disqualify", "disqualify_message": message}
    ]
    form = RoutingRuleInlineForm(
        data={"order": 0, "name": "Too small", "outcome": "disqualify", "disqualify_message": message,
              "conditions": "{}", "required_skills": "{}", "fallback_after_days": 7, "active": "on"}
    )  # fmt: skip
    assert not form.is_valid() and "disqualify_message" in form.errors
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(document)
    assert caught.value.errors == [
        "meeting_types[0].rules[0].disqualify_message: Ensure this value has at most 2000 characters (it has "
        "2001)."
    ]
    document["meeting_types"][0]["rules"][0]["disqualify_message"] = message[:2000]
    apply(document)


# --- the file is the truth for the lists it names -----------------------------------------------------------


def test_time_off_saved_twice_in_the_admin_is_removed_by_a_file_without_it(admin_client):
    """The same vacation saved twice in the admin (the add page submitted twice; nothing refuses a duplicate
    ``TimeOff``) is removed, both rows, by one import of a file that names the rep without time off, and a
    second import reports no changes. The import keyed the rows by value, so one twin was never seen: it
    said "1 removed", the rep stayed off, and the next import removed the other ("not a no-op")."""
    apply(doc())
    rep = Rep.objects.get(email="ana@x.example")
    url = reverse("admin:calendars_timeoff_add")
    row = {"rep": rep.pk, "start_0": "2026-08-03", "start_1": "00:00:00", "end_0": "2026-08-08",
           "end_1": "00:00:00", "reason": "Summer"}  # fmt: skip
    assert admin_client.post(url, row).status_code == 302
    assert admin_client.post(url, row).status_code == 302
    assert TimeOff.objects.filter(rep=rep).count() == 2
    assert apply(doc()) == ["rep ana@x.example: time off: 0 added, 2 removed"]
    assert not TimeOff.objects.filter(rep=rep).exists()
    assert apply(doc()) == []


def test_time_off_saved_twice_in_the_admin_is_kept_once_by_a_file_naming_it():
    """The same twins, and a file that names the vacation once: one row stays, the copy goes, and a second
    import reports no changes."""
    document = doc()
    document["reps"][0]["time_off"] = [
        {"start": "2026-08-03T00:00:00Z", "end": "2026-08-08T00:00:00Z", "reason": "Summer"}
    ]
    apply(document)
    rep = Rep.objects.get(email="ana@x.example")
    TimeOff.objects.create(
        rep=rep, start=rep.time_off.get().start, end=rep.time_off.get().end, reason="Summer"
    )
    assert apply(document) == ["rep ana@x.example: time off: 0 added, 1 removed"]
    assert rep.time_off.count() == 1
    assert apply(document) == []
