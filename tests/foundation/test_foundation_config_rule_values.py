"""Routing rules in the config file (``rules:`` under a meeting type) are checked by the same code as the
admin (``leads.rules_core.validate``): a value the router could not compare is refused with its path, not
imported to crash the router or silently never match."""

from __future__ import annotations

import copy

import pytest
from rest_framework.test import APIClient

from leads.models import RoutingRule
from routing.configfile import ConfigInvalid, config_import, load_document, parse_config
from tests.foundation.config_docs import BASE, apply

pytestmark = pytest.mark.django_db


def import_text(text: str, filename: str = "baton.yaml") -> list[str]:
    """What ``manage.py import_config FILE`` does with the file's text (``import_file`` without the disk)."""
    return config_import(config=parse_config(load_document(text, filename=filename)))


NORDICS = """
reps:
  - {name: Kari, email: kari@x.example, timezone: Europe/Oslo}
pools:
  - {slug: nordics, name: Nordics, strategy: round_robin, members: [{rep: kari@x.example}]}
meeting_types:
  - slug: intro
    title: Intro
    duration_minutes: 30
    pool: nordics
    rules:
      - name: Nordics
        conditions: {field: country, op: in, value: [DK, %s, SE]}
"""


def test_the_norway_country_code_unquoted_in_yaml_is_refused_with_a_quote_it_hint():
    """A rule for the Nordics: ``conditions: {field: country, op: in, value: [DK, NO, SE]}``. YAML 1.1 reads
    the bare ``NO`` as the boolean false; the file imported without a word, the stored rule was ``["DK",
    false, "SE"]``, and leads from Norway never matched it. ``country`` is always text, so the checker
    refuses the value with its path and says to quote it; quoted, the rule imports as written."""
    with pytest.raises(ConfigInvalid) as refused:
        import_text(NORDICS % "NO")
    assert refused.value.errors == [
        "meeting_types[0].rules[0].conditions.value[1]: country is text, not false; quote it (YAML reads a "
        'bare NO, no, off, yes or on as true/false: write "NO")'
    ]
    assert not RoutingRule.objects.exists()
    import_text(NORDICS % '"NO"')
    assert RoutingRule.objects.get().conditions["value"] == ["DK", "NO", "SE"]


def test_a_contains_any_rule_with_a_nested_list_is_refused_not_a_500_at_routing():
    """A rule on a multi-select answer written with one bracket too many: ``{field: answers.products, op:
    contains_any, value: [[api, sso]]}``. The checker only asked for a list, so the file imported, and
    every lead that reached the rule crashed the router (``TypeError: unhashable type: 'list'``): the route
    API answered 500. The checker refuses an item that is not one plain value, with its path."""
    document = copy.deepcopy(BASE)
    meeting_type = document["meeting_types"][0]
    meeting_type["questions"] = [
        {"key": "products", "label": "Products", "type": "multiselect", "options": ["api", "sso", "crm"]}
    ]
    meeting_type["rules"] = [
        {
            "name": "Platform buyers",
            "conditions": {"field": "answers.products", "op": "contains_any", "value": [["api", "sso"]]},
        }
    ]
    with pytest.raises(ConfigInvalid) as refused:
        apply(document)
    assert refused.value.errors == [
        "meeting_types[0].rules[0].conditions.value[0]: expected text, a number or true/false, not a list"
    ]
    meeting_type["rules"][0]["conditions"]["value"] = ["api", "sso"]
    apply(document)
    api = APIClient()
    body = {
        "email": "pat@acme.io",
        "name": "Pat",
        "timezone": "Europe/Berlin",
        "answers": {"products": ["api"]},
    }
    response = api.post("/api/v1/meeting-types/intro/route", body, format="json")
    assert response.status_code == 200 and response.json()["rule"]["name"] == "Platform buyers"
