"""The pure rule evaluator: every operator and field, groups, first match, scoring, validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leads.geo import country_for_timezone
from leads.rules_core import (
    LeadFacts,
    RuleSpec,
    first_match,
    is_free_mail,
    lead_score,
    matches,
    validate,
    validate_points,
)
from leads.services import lead_facts

FACTS = LeadFacts(
    email="Pat@Acme.io",
    timezone="Europe/Berlin",
    country="de",
    answers={"size": "51-200", "products": ["api", "sso"], "seats": 120, "goal": "Replace our Calendly"},
    utm={"utm_source": "google", "utm_campaign": "brand"},
    score=42,
)


def c(field, op, value):
    return {"field": field, "op": op, "value": value}


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (c("answers.size", "equals", "51-200"), True),
        (c("answers.size", "equals", "1-10"), False),
        (c("answers.size", "not_equals", "1-10"), True),
        (c("answers.size", "in", ["11-50", "51-200"]), True),
        (c("answers.size", "not_in", ["11-50", "51-200"]), False),
        (c("answers.products", "contains", "SSO"), True),
        (c("answers.products", "contains", "billing"), False),
        (c("answers.products", "contains_any", ["billing", "api"]), True),
        (c("answers.products", "contains_all", ["api", "billing"]), False),
        (c("answers.products", "contains_all", ["api", "sso"]), True),
        (c("answers.seats", "gte", 120), True),
        (c("answers.seats", "gt", 120), False),
        (c("answers.seats", "lt", "200"), True),
        (c("answers.seats", "lte", 119.5), False),
        (c("answers.seats", "equals", 120), True),
        (c("answers.goal", "contains", "calendly"), True),
        (c("answers.goal", "starts_with", "replace"), True),
        (c("answers.goal", "gt", 3), False),  # text is not a number
        (c("answers.missing", "equals", "x"), False),
        (c("answers.missing", "not_equals", "x"), True),
        (c("answers.missing", "exists", False), True),
        (c("answers.size", "exists", True), True),
        (c("email_domain", "equals", "acme.io"), True),
        (c("email_domain", "ends_with", ".io"), True),
        (c("email", "equals", "pat@acme.io"), True),
        (c("free_mail", "equals", False), True),
        (c("country", "equals", "DE"), True),
        (c("country", "in", ["at", "de", "ch"]), True),
        (c("timezone", "starts_with", "Europe/"), True),
        (c("timezone", "equals", "America/New_York"), False),
        (c("utm.utm_source", "equals", "Google"), True),
        (c("utm.utm_medium", "exists", True), False),
        (c("score", "gte", 40), True),
        (c("score", "lt", 40), False),
    ],
)
def test_each_operator_and_field(cond, expected):
    assert matches(cond, FACTS) is expected


def test_free_mail_domain_is_detected():
    assert is_free_mail("gmail.com") and not is_free_mail("acme.io")
    assert matches(c("free_mail", "equals", True), LeadFacts(email="x@GMAIL.com"))


def test_groups_all_any_nested():
    yes, no = c("country", "equals", "DE"), c("country", "equals", "FR")
    assert matches({"all": [yes, {"any": [no, yes]}]}, FACTS)
    assert not matches({"all": [yes, no]}, FACTS)
    assert matches({"any": [no, yes]}, FACTS)
    assert not matches({"any": [no]}, FACTS)
    assert matches({}, FACTS) and matches(None, FACTS) and matches({"all": []}, FACTS)


def test_first_match_wins_and_catch_all():
    rules = [
        RuleSpec(1, "France", c("country", "equals", "FR")),
        RuleSpec(2, "DACH", c("country", "in", ["DE", "AT", "CH"])),
        RuleSpec(3, "Also Germany", c("country", "equals", "DE")),
        RuleSpec(4, "Everyone", {}),
    ]
    found = first_match(rules, FACTS)
    assert found.rule.key == 2
    assert [t["matched"] for t in found.tried] == [False, True]
    assert first_match(rules, LeadFacts(country="US")).rule.key == 4
    assert first_match(rules[:1], LeadFacts(country="US")).rule is None


def test_lead_score_sums_matching_points():
    model = [
        {"when": c("answers.size", "in", ["51-200", "201+"]), "points": 30},
        {"when": c("free_mail", "equals", True), "points": -20},
        {"when": c("answers.products", "contains", "sso"), "points": 15.5},
    ]
    total, hits = lead_score(model, FACTS)
    assert total == 45.5 and [h["item"] for h in hits] == [0, 2]
    assert lead_score(model, LeadFacts(email="a@gmail.com"))[0] == -20


def test_validate_reports_paths():
    assert validate({"all": [c("country", "equals", "DE")]}) == []
    errors = validate({"all": [c("nope", "equals", 1), {"field": "score", "op": "gt", "value": "x"}]})
    assert errors == [
        "conditions.all[0].field: unknown field 'nope'",
        "conditions.all[1].value: gt expects a number",
    ]
    assert validate({"any": "x"}) == ["conditions.any: expected a list"]
    assert validate(c("country", "in", "DE")) == ["conditions.value: in expects a list"]
    assert validate({"field": "score", "op": "bogus", "value": 1})[0].startswith("conditions.op: unknown")
    for op in (["in"], {"x": 1}, None, 3):  # unhashable or non-string operators: an error, not a TypeError
        assert validate({"field": "score", "op": op, "value": 1})[0].startswith("conditions.op: unknown")
    assert validate_points([{"points": "x"}]) == ["score_points[0]: expected {'when': …, 'points': number}"]
    # "false" (text) was accepted and meant true: exists takes true or false only
    wrong = validate(c("answers.size", "exists", "false"))
    assert wrong == ["conditions.value: exists expects true or false"]


def test_country_for_timezone():
    assert country_for_timezone("Europe/Berlin") == "DE"
    assert country_for_timezone("America/New_York") == "US"
    assert country_for_timezone("UTC") == ""


@pytest.mark.parametrize(
    "zone,country",
    # backward-compatible names the APIs accept and browsers still report (Chrome: Asia/Calcutta for
    # India); before, "" and a territory rule for IN missed; a link zone.tab lists keeps its own country
    [("Asia/Calcutta", "IN"), ("Europe/Kiev", "UA"), ("Asia/Saigon", "VN"), ("US/Eastern", "US"),
     ("GB", "GB"), ("Antarctica/McMurdo", "AQ"), ("Etc/UTC", "")],
)  # fmt: skip
def test_country_for_a_link_is_the_country_of_its_zone(zone, country):
    assert country_for_timezone(zone) == country


@pytest.mark.parametrize(
    "answer,country",
    # "Germany"[:2] was GE (Georgia), "Spain" SP (no country): a name the tz database knows is its code,
    # anything else leaves the time zone's country (Europe/Berlin: DE)
    [("Germany", "DE"), ("united states", "US"), ("es", "ES"), (" FR ", "FR"), ("Spain", "ES"),
     ("Deutschland", "DE"), ("", "DE"), ("Georgia?", "DE")],
)  # fmt: skip
def test_a_country_answer_names_a_country_or_is_left(answer, country):
    facts = lead_facts(
        email="pat@acme.example", timezone="Europe/Berlin", answers={"country": answer}, utm={}
    )
    assert facts.country == country


def test_an_integrators_country_code_stands_and_uk_is_gb():
    """The API's ``country`` (two letters) stands even where iso3166.tab has no such code (XK, Kosovo);
    only names it knows otherwise are translated ("UK" is GB)."""
    facts = lead_facts(email="p@x.example", timezone="Europe/Belgrade", answers={}, utm={}, country="xk")
    assert facts.country == "XK"
    assert lead_facts(email="p@x.example", timezone="UTC", answers={}, utm={}, country="UK").country == "GB"


values = st.one_of(st.text(max_size=8), st.integers(-1000, 1000), st.lists(st.text(max_size=5), max_size=3))


@given(answers=st.dictionaries(st.sampled_from(["a", "b"]), values), value=values)
def test_negations_are_complements(answers, value):
    facts = LeadFacts(answers=answers)
    for pos, neg in (("equals", "not_equals"), ("in", "not_in")):
        v = value if pos == "equals" else [value] if not isinstance(value, list) else value
        assert matches(c("answers.a", pos, v), facts) != matches(c("answers.a", neg, v), facts)


@given(score=st.floats(-1e6, 1e6, allow_nan=False), bound=st.integers(-1000, 1000))
def test_number_comparisons_partition(score, bound):
    facts = LeadFacts(score=score)
    lt, gte = matches(c("score", "lt", bound), facts), matches(c("score", "gte", bound), facts)
    assert lt != gte


@given(st.lists(st.booleans(), max_size=6))
def test_any_all_agree_with_python(flags):
    conds = [c("country", "equals", "DE" if f else "FR") for f in flags]
    facts = LeadFacts(country="DE")
    assert matches({"all": conds}, facts) == all(flags)
    assert matches({"any": conds}, facts) == (any(flags) or not flags)


# --- values a rule cannot compare: refused on save with their path; an odd stored one never crashes


def test_a_list_operators_items_are_plain_values():
    """``contains_any`` written with one bracket too many (``value: [["api", "sso"]]``, an easy YAML or JSON
    slip) passed validation (it is a list), then every lead that reached the rule crashed the router with
    ``TypeError: unhashable type: 'list'``. Each item must be text, a number or true/false."""
    nested = {"all": [c("answers.products", "contains_any", [["api", "sso"]])]}
    assert validate(nested) == [
        "conditions.all[0].value[0]: expected text, a number or true/false, not a list"
    ]
    assert validate(c("answers.size", "in", ["1-10", None, {"a": 1}])) == [
        "conditions.value[1]: expected text, a number or true/false, not null",
        "conditions.value[2]: expected text, a number or true/false, not a mapping",
    ]
    assert validate(c("answers.products", "contains_all", ["api", 3, 2.5, True])) == []


@pytest.mark.parametrize("op", ["contains_any", "contains_all", "in", "not_in", "contains", "equals"])
def test_an_odd_stored_value_does_not_crash_the_evaluator(op):
    """A rule stored before its value was validated, or written to the database directly, does not match
    rather than turning the route API into a 500."""
    facts = LeadFacts(answers={"products": ["api", "sso"], "size": "51+", "odd": [["api"], {"x": 1}]})
    odd = [["api", "sso"], {"x": 1}, None]
    for field in ("answers.products", "answers.size", "answers.odd"):
        matches(c(field, op, odd), facts)
    assert matches(c("answers.products", "contains_any", [["api"], "sso"]), facts)
    assert not matches(c("answers.products", "contains_all", [["api"], "sso"]), facts)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (c("answers.zip", "starts_with", 8), True),  # an unquoted YAML postcode is an int
        (c("answers.zip", "starts_with", 9), False),
        (c("answers.zip", "ends_with", 31), True),
        (c("answers.zip", "contains", 33), True),
        (c("answers.zip", "contains", 2.5), False),
        (c("answers.zip_number", "starts_with", "80"), True),  # a number answer reads as its digits
        (c("answers.zip_number", "starts_with", 8), True),
        (c("answers.zip", "starts_with", True), False),
        (c("answers.products", "contains", 8), True),  # a selected "8" is the number 8 (as ``equals``)
    ],
)
def test_text_operators_compare_a_number_as_its_digits(cond, expected):
    """Territory by postcode: ``{field: answers.zip, op: starts_with, value: 8}`` in the config file (an int
    in YAML) was valid but never matched ``"80331"``: the needle was not text, so every Bavarian lead fell
    through to the next rule. A number is compared as its digits, as ``equals`` compares ``"50"`` and 50."""
    facts = LeadFacts(answers={"zip": "80331", "zip_number": 80331, "products": ["8", "api"]})
    assert matches(cond, facts) is expected


def test_a_one_value_operator_refuses_a_list_and_names_the_operator_to_use():
    """``{field: answers.products, op: contains, value: ["crm"]}`` was accepted but never matched a
    prospect who ticked crm (the list was looked for as one item, and in a text answer its repr)."""
    assert validate(c("answers.products", "contains", ["crm"])) == [
        "conditions.value: contains expects one value, not a list or mapping; "
        "use contains_any (or contains_all) for a list"
    ]
    assert validate(c("answers.size", "equals", ["1-10"]))[0].endswith("use in for any of a list")
    assert validate(c("answers.size", "not_equals", ["1-10"]))[0].endswith("use not_in for none of a list")
    assert validate(c("email_domain", "ends_with", {"a": 1}))[0].startswith(
        "conditions.value: ends_with expects one value, not a list or mapping"
    )


def test_true_or_false_for_a_text_field_is_refused_with_a_quote_it_hint():
    """YAML 1.1 reads the bare ``NO`` (Norway) as false: ``{field: country, op: in, value: [DK, NO, SE]}``
    was stored as ``["DK", false, "SE"]`` and leads from Norway never matched. A text-only field (country,
    email, email_domain, timezone, utm.*) never equals true or false, so the value is refused."""
    assert validate(c("country", "in", ["DK", False, "SE"])) == [
        "conditions.value[1]: country is text, not false; quote it (YAML reads a bare NO, no, off, yes or on "
        'as true/false: write "NO")'
    ]
    for field in ("email", "email_domain", "timezone", "utm.utm_source"):
        assert validate(c(field, "equals", True))[0].startswith(
            f"conditions.value: {field} is text, not true"
        )
    assert validate(c("answers.call", "equals", False)) == []  # a checkbox answer is true or false
    assert validate(c("answers.call", "in", [True])) == []
    assert validate(c("free_mail", "equals", True)) == []
    assert validate(c("country", "exists", True)) == []


def test_a_number_beyond_a_float_is_no_number():
    """``float(10**400)`` raises OverflowError: a 400-digit number (an answer, a rule's value) crashed the
    evaluator and the validation; it is no number (refused in a rule, never matching in an answer)."""
    assert validate(c("score", "gte", 10**400)) == ["conditions.value: gte expects a number"]
    huge = LeadFacts(answers={"seats": 10**400})
    assert not matches(c("answers.seats", "gte", 10), huge)
    assert not matches(c("answers.seats", "equals", 10), huge)
    assert validate_points([{"points": 10**400}]) == [
        "score_points[0]: expected {'when': …, 'points': number}"
    ]


def test_points_beyond_the_limit_are_refused_and_a_stored_model_scores_a_finite_number():
    from leads import rules_core

    """Score items of 1e308 were accepted, and two matching ones added up to Infinity, which the lead's
    decision record (JSON) cannot hold: every matching lead was a 500. Failed before its fix."""
    huge = [{"when": None, "points": 1e308}, {"when": None, "points": 1e308}]
    assert rules_core.validate_points(huge) == [
        "score_points[0].points: at most 1,000,000 either way",
        "score_points[1].points: at most 1,000,000 either way",
    ]
    total, hits = rules_core.lead_score(huge, rules_core.LeadFacts())
    assert total == 2 * rules_core.POINTS_LIMIT and [h["points"] for h in hits] == [1e6, 1e6]


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("equals", "bücher.de", True),
        ("equals", " BÜCHER.de", True),
        ("not_equals", "bücher.de", False),
        ("in", ["acme.io", "bücher.de"], True),
        ("not_in", ["bücher.de"], False),
        ("equals", "xn--bcher-kva.de", True),
        ("contains", "ücher", True),  # a part of the Unicode form
        ("contains", "bcher-kva", True),  # a part of the ASCII form
        ("ends_with", "ücher.de", True),
        ("starts_with", "bü", True),
        ("starts_with", "xn--", True),
        ("equals", "straße.de", True),  # ß stays a letter of its own (not "ss"): the same normalisation
        ("equals", "strasse.de", False),
    ],
)
def test_an_email_domain_rule_saved_in_unicode_still_matches(op, value, expected):
    """A rule saved before domains were normalised (``email_domain equals bücher.de``, ``in [bücher.de]``, a
    text operator) matched kim@bücher.de and still does, now that ``email_domain`` is the IDNA ASCII form:
    the rule's value is compared in the same form (only for ``email_domain``). Before the fix such a rule,
    valid and saveable, silently never matched again."""
    domain = "straße.de" if "stra" in str(value) else "bücher.de"
    facts = LeadFacts(email=f"kim@{domain}", timezone="Europe/Berlin")
    condition = c("email_domain", op, value)
    assert validate(condition) == []
    assert matches(condition, facts) is expected


def test_only_the_email_domain_field_is_normalised():
    assert not matches(
        c("answers.site", "equals", "bücher.de"), LeadFacts(answers={"site": "xn--bcher-kva.de"})
    )
    assert matches(c("email", "ends_with", "@bücher.de"), LeadFacts(email="kim@bücher.de"))


@pytest.mark.parametrize(
    ("answer", "value", "expected"),
    [
        (1, True, False),  # a number answer 1 is not a yes
        (0, False, False),
        (True, 1, False),
        (True, True, True),
        (False, False, True),
        (1, "1", True),  # a number still equals its digits
    ],
)
def test_a_yes_or_no_equals_only_a_yes_or_no(answer, value, expected):
    """A rule "answers.seats equals true" (a YAML ``true`` meant for a checkbox, put on the wrong question)
    matched a prospect who typed 1 seat, and "consent equals 1" matched every ticked box: Python's
    ``1 == True`` leaked into ``equals``/``in``. A yes/no only equals a yes/no."""
    facts = LeadFacts(email="pat@acme.io", timezone="UTC", country="", answers={"a": answer}, utm={}, score=0)
    assert matches({"all": [c("answers.a", "equals", value)]}, facts) is expected
    assert matches({"all": [c("answers.a", "in", [value])]}, facts) is expected


@pytest.mark.parametrize("op", ["equals", "in", "contains", "starts_with", "ends_with"])
def test_text_typed_in_decomposed_form_matches_the_rules_composed_text(op):
    """A prospect's "Zürich" arrives decomposed (``u`` + combining diaeresis: macOS file names, some
    keyboards and pasted text) where the admin's rule says "Zürich" in composed form: the two look the same on
    every screen but did not match, and the lead went to the catch-all rule."""
    decomposed = "Zu\u0308rich"
    composed = "Z\u00fcrich"
    value = [composed] if op == "in" else composed
    facts = LeadFacts(
        email="pat@acme.io", timezone="UTC", country="", answers={"city": decomposed}, utm={}, score=0
    )
    assert matches({"all": [c("answers.city", op, value)]}, facts)
