"""What an admin types into the admin's forms that the database or the public pages cannot take is a form
error, not a 500 then or on every later request: half a surrogate pair, NaN or Infinity in a JSON box, a
number too long to read or JSON nested too deeply, a notice or a fairness adjustment beyond any calendar.
Each test failed before its fix."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from leads.models import RoutingRule, ScoreModel
from routing.core.results import CHOSEN, candidate
from routing.models import PoolMember
from tests.core.core_oracle import member

pytestmark = pytest.mark.django_db


def form_data(response) -> dict:
    """The POST data of an admin add/change page exactly as it is rendered: the main form and every inline
    (management forms included), so that a test changes only what it means to."""
    context = response.context
    data: dict = {}
    forms_ = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        forms_.extend(formset.forms)
    for form in forms_:
        for name in form.fields:
            value = form[name].value()  # as the page shows it: a JSON box's value is its text
            if value is None:
                continue
            key = form.add_prefix(name)
            if isinstance(value, bool):
                if value:
                    data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = list(value)
            elif isinstance(value, dt.date | dt.time):
                data[key] = value.isoformat()
            else:
                data[key] = value
    return data


def post_form(client, url: str, **changes):
    """Open the admin page at ``url``, change some fields and submit it; the answer, or the exception a 500
    raised (the test client re-raises it)."""
    data = form_data(client.get(url))
    data.update(changes)
    try:
        return client.post(url, data)
    except Exception as exc:  # a 500: the test client re-raises the view's exception
        return exc


def opened(client, url: str, **params):
    """The answer to a GET, or the exception a 500 raised."""
    try:
        return client.get(url, params)
    except Exception as exc:
        return exc


def book_next_slot(meeting_type):
    """A booking request for the first slot the public API offers from 4 March 2026: the answer."""
    api = APIClient()
    api.raise_request_exception = False
    slots = api.get(
        f"/api/v1/meeting-types/{meeting_type.slug}/slots", {"start": "2026-03-04", "timezone": "UTC"}
    ).json()["slots"]
    body = {"start": slots[0]["start"], "name": "Pat", "email": "pat2@example.org", "timezone": "UTC"}
    return api.post(f"/api/v1/meeting-types/{meeting_type.slug}/bookings", body, format="json")


def add_inline_rule(data: dict, conditions: str, required_skills: str = "{}") -> None:
    """``data`` (a meeting type's page) with one more routing rule in its inline, named "Odd value"."""
    n = int(data["routing_rules-TOTAL_FORMS"])
    data.update(
        {
            "routing_rules-TOTAL_FORMS": str(n + 1),
            f"routing_rules-{n}-order": "9",
            f"routing_rules-{n}-name": "Odd value",
            f"routing_rules-{n}-active": "on",
            f"routing_rules-{n}-conditions": conditions,
            f"routing_rules-{n}-outcome": "route_pool",
            f"routing_rules-{n}-required_skills": required_skills,
            f"routing_rules-{n}-fallback_after_days": "7",
        }
    )


# --- text the database cannot store, NaN and Infinity in a JSON box


def test_a_question_label_with_half_a_surrogate_pair_is_refused_and_the_pages_keep_working(
    admin_client, booking
):
    """A question label holding an emoji cut in half (``"\\ud83d"``, as JSON escapes half of 😀) is a form
    error (``validate_questions`` reports ``unstorable_text``, as the config file does). Before, it was
    saved, and from then on the booking page, the meeting-type API and the meeting type's own admin page
    were a 500 (a lone surrogate has no UTF-8): the admin could not even open the page to repair it."""
    meeting_type = booking.meeting_type
    before = meeting_type.questions
    url = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk])
    questions = '[{"key": "size", "label": "Team size \\ud83d", "type": "text"}]'
    response = post_form(admin_client, url, questions=questions)
    assert not isinstance(response, Exception), repr(response)
    meeting_type.refresh_from_db()
    broken = {
        path: type(answer).__name__
        for path in (f"/book/{meeting_type.slug}", f"/api/v1/meeting-types/{meeting_type.slug}", url)
        if isinstance(answer := opened(admin_client, path), Exception)
    }
    assert response.status_code == 200 and meeting_type.questions == before, (
        f"saved {meeting_type.questions!r}; these pages are a 500 now: {broken}"
    )
    errors = response.context["adminform"].form.errors["questions"]
    assert errors == [
        "questions[0].label: contains \\ud83d, half of a UTF-16 surrogate pair: not a character"
    ]
    assert "\\ud83d" in response.content.decode()  # the box shows it again, escaped


@pytest.mark.parametrize(
    "value, what",
    [
        ("NaN", "NaN"),
        ("[Infinity]", "Infinity"),
        ('"\\udc00"', "half a surrogate pair"),
    ],
)
def test_a_rule_condition_the_database_cannot_hold_is_a_form_error(admin_client, booking, value, what):
    """A routing rule written on the meeting type's page (the inline) whose condition value is ``NaN`` or
    ``Infinity`` (Python's JSON reader, behind the JSON box, takes both) or text with half a surrogate pair
    is a form error on its conditions: ``validate_conditions`` runs the config file's checks
    (``json_problems``). Before, NaN and Infinity reached the INSERT (a 500: SQLite's ``JSON_VALID``,
    PostgreSQL's jsonb), and the half surrogate was saved and made the meeting type's admin page a 500."""
    meeting_type = booking.meeting_type
    op = "in" if value.startswith("[") else "equals"
    url = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk])
    data = form_data(admin_client.get(url))
    add_inline_rule(data, f'{{"field": "answers.company_size", "op": "{op}", "value": {value}}}')
    try:
        response = admin_client.post(url, data)
    except Exception as exc:
        pytest.fail(f"{what} in a rule's condition: saving the meeting type is a 500 ({exc!r})")
    saved = RoutingRule.objects.filter(name="Odd value").exists()
    page = opened(admin_client, url)
    answer = type(page).__name__ if isinstance(page, Exception) else page.status_code
    assert not saved and response.status_code == 200, (
        f"{what} in a rule's condition was saved; the meeting type's admin page now answers {answer}"
    )
    rule_form = response.context["inline_admin_formsets"][0].formset.forms[-1]
    assert rule_form.errors.keys() == {"conditions"}


@pytest.mark.parametrize(
    "box, value",
    [
        ("required_skills", '{"\\udc00": 3}'),
        ("points", '[{"when": {"field": "answers.size", "op": "equals", "value": NaN}, "points": 1}]'),
    ],
)
def test_skills_and_score_points_the_database_cannot_hold_are_form_errors(admin_client, booking, box, value):
    """A rule's required skills and a score model's points are checked as the conditions are: a skill named
    with half a surrogate pair and a NaN are errors under their box. Before, the skill was saved and the
    rule's page was a 500 from then on, and the NaN reached the INSERT (a 500)."""
    if box == "points":
        model = ScoreModel.objects.create(meeting_type=booking.meeting_type)
        url = reverse("admin:leads_scoremodel_change", args=[model.pk])
    else:
        rule = RoutingRule.objects.create(meeting_type=booking.meeting_type, name="Skilled")
        url = reverse("admin:leads_routingrule_change", args=[rule.pk])
    response = post_form(admin_client, url, **{box: value})
    assert not isinstance(response, Exception), repr(response)
    assert response.status_code == 200 and response.context["adminform"].form.errors.keys() == {box}


# --- JSON the reader refuses with something else than a JSONDecodeError

DEEP_GROUPS = 400  # within what the reader takes, beyond what the models' checks could walk
UNREADABLE = {
    "a number of 5,000 digits": lambda node: node.replace("1}", "9" * 5000 + "}"),
    "nesting beyond the reader": lambda node: '{"all": [' * 100_000 + node + "]}" * 100_000,
    f"nesting {DEEP_GROUPS} groups deep": lambda node: '{"all": [' * DEEP_GROUPS + node + "]}" * DEEP_GROUPS,
}


@pytest.mark.parametrize("text", UNREADABLE)
@pytest.mark.parametrize("box", ["questions", "rule conditions", "rule inline", "score points"])
def test_json_too_long_or_too_deep_to_read_is_a_form_error_in_every_json_box(
    admin_client, booking, box, text
):
    """A JSON box holding a 5,000-digit number (a pasted spreadsheet cell, a key held down) or nesting too
    deep is an error under the box (``routing.admin_parts.JSONBox``). Django's JSON field catches only
    ``JSONDecodeError``: Python refuses an integer of more than 4,300 digits with a plain ValueError and
    JSON nested beyond its reader with a RecursionError, and JSON the reader takes, nested a few hundred
    deep, ran the models' recursive checks out of stack: all were a 500."""
    meeting_type = booking.meeting_type
    node = UNREADABLE[text]('{"field": "score", "op": "gte", "value": 1}')
    if box == "questions":
        url, field = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk]), "questions"
        changes = {field: f'[{{"key": "seats", "label": "Seats", "type": "number", "help": {node}}}]'}
    elif box == "rule conditions":
        rule = RoutingRule.objects.create(meeting_type=meeting_type, name="Deep")
        url, field = reverse("admin:leads_routingrule_change", args=[rule.pk]), "conditions"
        changes = {field: node}
    elif box == "rule inline":
        url, field = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk]), "conditions"
        changes = form_data(admin_client.get(url))
        add_inline_rule(changes, node)
    else:
        model = ScoreModel.objects.create(meeting_type=meeting_type)
        url, field = reverse("admin:leads_scoremodel_change", args=[model.pk]), "points"
        changes = {field: f'[{{"when": {node}, "points": 1}}]'}
    response = post_form(admin_client, url, **changes)
    assert not isinstance(response, Exception), f"saving the {box} is a 500: {type(response).__name__}"
    assert response.status_code == 200
    if box == "rule inline":
        errors = response.context["inline_admin_formsets"][0].formset.forms[-1].errors
    else:
        errors = response.context["adminform"].form.errors
    assert errors.keys() == {field}, errors


def test_a_rules_own_page_saves_a_cleared_conditions_box_as_no_conditions(admin_client, booking):
    """A cleared conditions box on the rule's own page means "none" (``{}``: a catch-all), as on the meeting
    type's inline (``RoutingRuleForm``); it was SQL NULL there, a 500 (NOT NULL)."""
    rule = RoutingRule.objects.create(
        meeting_type=booking.meeting_type, name="Big", conditions={"field": "score", "op": "gte", "value": 9}
    )
    response = post_form(
        admin_client, reverse("admin:leads_routingrule_change", args=[rule.pk]), conditions=""
    )
    assert not isinstance(response, Exception), repr(response)
    rule.refresh_from_db()
    assert response.status_code == 302 and rule.conditions == {}


@pytest.mark.parametrize("text", ["a number of 5,000 digits", "nesting beyond the reader"])
def test_the_rule_tester_answers_json_it_cannot_read_with_a_form_error(admin_client, booking, text):
    """ "Test this rule set" with answers it cannot read (a 5,000-digit number, nesting beyond the reader)
    says the answers are not valid JSON. ``_json_object`` read ``exc.msg``, which only a JSONDecodeError
    has: the plain ValueError (or RecursionError) made the tester page a 500."""
    answers = UNREADABLE[text]('{"company_size": 1}')
    data = {
        "meeting_type": booking.meeting_type.pk,
        "email": "pat@bigco.example",
        "timezone": "Europe/Berlin",
        "country": "",
        "answers": answers,
        "utm": "{}",
    }
    try:
        response = admin_client.post(reverse("admin:leads_routingrule_tester"), data)
    except Exception as exc:
        pytest.fail(f"the rule tester is a 500: {exc!r}")
    assert response.status_code == 200
    assert response.context["form"].errors["answers"] == ["answers: not valid JSON."]


# --- minutes and fairness numbers beyond what the booking path can compute with


def test_a_minimum_notice_beyond_a_year_is_refused_and_booking_keeps_working(admin_client, booking):
    """A minimum notice of 10,000,000,000 minutes ("never bookable for now", or a slip) is refused: at most a
    year (525,600 minutes, the longest horizon). Before, SQLite took it, the slots API offered nothing, and
    every booking request was a 500 (``reason_at`` added the notice to now, past year 9999)."""
    meeting_type = booking.meeting_type
    url = reverse("admin:booking_meetingtype_change", args=[meeting_type.pk])
    response = post_form(admin_client, url, minimum_notice_minutes=str(10**10))
    assert response.status_code == 200 and response.context["adminform"].form.errors.keys() == {
        "minimum_notice_minutes"
    }
    meeting_type.refresh_from_db()
    booked = book_next_slot(meeting_type)
    assert booked.status_code < 500, (
        f"the admin saved a notice of {meeting_type.minimum_notice_minutes} minutes; "
        f"a booking request is now a {booked.status_code}"
    )
    assert post_form(admin_client, url, minimum_notice_minutes="525600").status_code == 302


def test_a_huge_fairness_adjustment_is_refused_and_booking_the_pool_keeps_working(admin_client, booking):
    """A member with weight 0.01 and a manual adjustment of 1e308 ("never give her anything") is refused:
    the weight is at most 1,000 and the adjustment within ±1,000,000, so the load (count + adjustment) /
    weight stays finite. Before, both were saved, the load was infinite, the routing decision record
    stored it as ``Infinity`` (no JSON) and every booking of the pool was a 500."""
    member_row = (
        PoolMember.objects.filter(pool=booking.pool).exclude(rep__in=booking.hosts.values("rep")).first()
    )
    url = reverse("admin:routing_poolmember_change", args=[member_row.pk])
    response = post_form(admin_client, url, weight="0.01", adjustment="1e308")
    assert response.status_code == 200 and response.context["adminform"].form.errors.keys() == {"adjustment"}
    response = post_form(admin_client, url, weight="1001")
    assert response.status_code == 200 and response.context["adminform"].form.errors.keys() == {"weight"}
    member_row.refresh_from_db()
    booked = book_next_slot(booking.meeting_type)
    assert booked.status_code < 500, (
        f"the admin saved weight {member_row.weight} and adjustment {member_row.adjustment}; "
        f"a booking of the pool is now a {booked.status_code}"
    )


def test_the_decision_record_holds_no_number_json_has_not():
    """A load that is not finite (however it came about) is null in the decision record, which must stay
    JSON: the database refuses ``Infinity``, and the booking was a 500."""
    record = candidate(member(weight=0.01, count=1e308), CHOSEN, None)
    assert (record["count"], record["weight"], record["load"]) == (1e308, 0.01, None)
    json.dumps(record, allow_nan=False)
