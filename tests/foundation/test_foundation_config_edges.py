"""Configuration files, the management commands and the environment settings at their edges: an export
imports unchanged (hours kept to the minute, U+0085 in text), errors name the problem (a member in other
letter case, a byte order mark, rule conditions nested too deep, --rate inf / --hours nan), and settings
README lists fail loudly naming the variable. Each test failed before its fix."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from calendars.forms import WorkingHoursForm
from routing.configfile import ConfigInvalid, config_export, config_import, dump_document, parse_config
from routing.models import Rep
from tests.foundation.config_docs import BASE, apply
from tests.foundation.conftest import run, simulate_synthetic

ROOT = Path(__file__).resolve().parents[2]


# --- export → import must be lossless ------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_hours_are_kept_to_the_minute_so_an_export_imports_unchanged():
    """The rep page took a time with seconds ("23:59:59", a common way to write "until the end of the day"),
    but the exporter writes ``HH:MM`` and the file format cannot express seconds: importing a fresh export
    reported "working hours: 1 added, 1 removed" and moved the rep's end of day. The admin (any model form)
    now refuses seconds, as the file does ("the file accepts exactly what the admin accepts")."""
    apply(BASE)
    ana = Rep.objects.get(email="ana@x.example")
    form = WorkingHoursForm(data={"rep": ana.pk, "weekday": 4, "start": "09:00", "end": "23:59:59"})
    assert not form.is_valid()
    assert "whole minutes" in str(form.errors["end"])
    form = WorkingHoursForm(data={"rep": ana.pk, "weekday": 4, "start": "09:00", "end": "23:59"})
    assert form.is_valid(), form.errors
    form.save()
    exported = dump_document(config_export())
    assert config_import(config=parse_config(yaml.safe_load(exported))) == []


@pytest.mark.django_db
def test_text_with_a_next_line_character_round_trips():
    """A meeting type's description (or a rep's name, a disqualify message) containing U+0085 NEXT LINE —
    what a Windows-1252 "…" becomes when text was decoded as Latin-1 somewhere upstream — is exported by
    the YAML dumper (``dump_document``, allow_unicode) inside a single-quoted scalar as a raw line break;
    YAML reads a line break inside quotes as a space, so import turns 'a\\x85b' into 'a b' and reports a
    change on an unchanged export. The JSON export keeps it; the YAML one (the default) is not lossless."""
    doc = copy.deepcopy(BASE)
    doc["meeting_types"][0]["description"] = "Intro call\x85agenda"
    apply(doc)
    exported = dump_document(config_export())
    assert config_import(config=parse_config(yaml.safe_load(exported))) == []


# --- errors name the problem, never a traceback ----------------------------------------------------------


@pytest.mark.django_db
def test_member_named_in_other_letter_case_is_told_the_spelling():
    """docs/config.md: "A rep's e-mail is one mailbox in any letter case … a file naming an existing rep in
    other letter case is told which spelling to use". That holds for ``reps[i].email`` only
    (``_spelled_otherwise``); a pool member naming the same existing rep as ``Ana@X.example`` got
    "unknown rep Ana@X.example" (``_check_references``, routing/configfile/schema.py, compares exactly), so
    the admin is told the rep does not exist while it is right there, instead of being told to write
    ``ana@x.example``."""
    apply(BASE)
    doc = {
        "pools": [
            {"slug": "solo", "name": "Solo", "strategy": "ranked", "members": [{"rep": "Ana@X.example"}]}
        ]
    }
    with pytest.raises(ConfigInvalid) as info:
        parse_config(doc)
    assert any("a rep exists as 'ana@x.example'" in error for error in info.value.errors), info.value.errors


@pytest.mark.django_db
def test_a_json_config_saved_with_a_byte_order_mark_imports(tmp_path):
    """Windows editors and PowerShell 5 (``Out-File -Encoding utf8``) save UTF-8 with a byte order mark. The
    YAML path and ``import_accounts`` (utf-8-sig) take such a file, but ``import_config baton.json`` refuses
    it: "not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig)" — advice the admin cannot act on —
    because ``import_file`` reads with plain utf-8 and ``load_document`` hands the BOM to ``json.loads``."""
    path = tmp_path / "baton.json"
    path.write_text("\ufeff" + json.dumps(BASE), encoding="utf-8")
    out = run("import_config", str(path))
    assert "rep ana@x.example: created" in out


@pytest.mark.django_db
def test_deeply_nested_json_conditions_are_a_problem_not_a_traceback(tmp_path):
    """``load_document`` turns a RecursionError into "nested too deeply", but only while parsing: a JSON file
    whose rule conditions nest a few hundred groups deep parses fine (the C JSON parser goes deeper) and then
    ``parse_config`` (``nul_paths`` / ``_json_problem`` / ``rules_core.validate``, all recursive) dies with
    an uncaught RecursionError, so ``import_config`` (and the simulator's candidate upload) prints a
    traceback instead of one problem with its path."""
    node: dict = {"field": "score", "op": "gte", "value": 1}
    for _ in range(450):
        node = {"all": [node]}
    doc = copy.deepcopy(BASE)
    doc["meeting_types"][0]["rules"] = [{"name": "deep", "conditions": node}]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CommandError, match="problem"):
        call_command("import_config", str(path), stdout=StringIO(), stderr=StringIO())
    assert not Rep.objects.exists()


def test_simulate_routing_hours_nan_is_a_clear_error(demo):
    """``--hours nan`` passes the "both positive" check (NaN is truthy) and escapes as "ValueError: cannot
    convert float NaN to integer" from ``timedelta`` (insights/management/commands/simulate_routing.py,
    which catches only OverflowError there): a traceback for a typo."""
    with pytest.raises(CommandError):
        simulate_synthetic(rate="5", hours="nan")


class _BoundedRandom(random.Random):
    """A ``random.Random`` that stops a lead generator after 100,000 draws instead of letting it run on."""

    draws = 0

    def expovariate(self, lambd):
        type(self).draws += 1
        if type(self).draws > 100_000:
            raise AssertionError("the synthetic stream never ends: 100,000 arrivals and counting")
        return super().expovariate(lambd)


def test_simulate_routing_rate_inf_is_refused(demo, monkeypatch):
    """``--rate inf`` (argparse's float() takes it) passes every check, and ``synthetic_leads`` then draws
    gaps of ``expovariate(inf) == 0.0`` for ever: the command never ends and appends leads until the machine
    runs out of memory (found by running it; here the generator is stopped after 100,000 arrivals). It should
    say the rate must be a finite positive number."""
    import insights.sim_types

    monkeypatch.setattr(insights.sim_types, "random", SimpleNamespace(Random=_BoundedRandom))
    with pytest.raises(CommandError):
        simulate_synthetic(rate="inf", hours="1")


# --- environment settings -----------------------------------------------------------------------------------


def load_settings(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter (as at start-up) with DEBUG=1 and these variables."""
    unset = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "LOG_LEVEL", "TIME_ZONE", "EMAIL_PORT"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    clean.update(env, DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings")
    code = "import django; django.setup(); print('loaded')"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "name,value",
    [
        ("LOG_LEVEL", "verbose"),
        ("TIME_ZONE", "Europe/Berlln"),
        ("EMAIL_PORT", "70000"),
    ],
)
def test_readme_settings_fail_loudly_naming_the_variable(name, value):
    """README: "Every setting is read from the environment by config/env.py, whose helpers reject bad values
    loudly (ImproperlyConfigured naming the variable)", and its table lists LOG_LEVEL, TIME_ZONE and
    EMAIL_PORT. But ``LOG_LEVEL``/``TIME_ZONE`` were read unchecked: a wrong ``LOG_LEVEL`` died in
    logging.config with "ValueError: Unable to configure root logger" (no variable named), a misspelt
    ``TIME_ZONE`` with Django's "ValueError: Incorrect timezone setting" (and only where
    /usr/share/zoneinfo exists; elsewhere it started and failed later); ``EMAIL_PORT=70000`` had only a
    minimum, so it started and every e-mail failed at send time."""
    result = load_settings(**{name: value})
    assert result.returncode != 0, f"{name}={value} was accepted"
    assert "ImproperlyConfigured" in result.stderr and f"{name}" in result.stderr.splitlines()[-1], (
        result.stderr[-500:]
    )


def test_a_log_level_in_lower_case_is_taken():
    """``LOG_LEVEL=debug``, as ``celery -l`` and gunicorn's ``--log-level`` take it, died in logging.config
    with "Unable to configure root logger"; any letter case is a level name now."""
    result = load_settings(LOG_LEVEL="debug")
    assert result.returncode == 0, result.stderr[-500:]
