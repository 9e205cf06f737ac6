"""The admin rule tester, rule validation, the CSV account import and learning owners from history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from booking.models import Booking, BookingHost
from leads.accounts import accounts_learn_owners
from leads.models import Account, Lead, RoutingRule

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
TESTER = "/admin/leads/routingrule/tester/"


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


def test_tester_shows_rule_and_reps_without_writing(staff, rules, demo):
    form = {
        "meeting_type": demo.pk,
        "email": "pat@acme.io",
        "timezone": "Europe/Berlin",
        "country": "",
        "answers": '{"size": "51+", "seats": 500}',
        "utm": "{}",
    }
    page = staff.post(TESTER, form).content.decode()
    assert "Rule: <strong>Enterprise</strong>" in page
    assert "candidate reps:\n      <strong>Ana</strong>." in page
    small = staff.post(TESTER, {**form, "answers": '{"size": "1-10"}'}).content.decode()
    assert "Disqualified" in small and "self-serve plan" in small
    assert not Lead.objects.exists()


def test_tester_form_errors(staff, demo):
    page = staff.post(TESTER, {"meeting_type": demo.pk, "email": "x", "timezone": "Nope", "answers": "[1"})
    text = page.content.decode()
    assert page.status_code == 200 and "not a known IANA time zone" in text and "not valid JSON" in text


def test_tester_needs_staff(client):
    assert client.get(TESTER).status_code == 302  # to the admin login


def test_rule_validation_uses_the_evaluator(demo):
    rule = RoutingRule(
        meeting_type=demo, name="Bad", conditions={"field": "nope", "op": "equals", "value": 1}
    )
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    assert "conditions.field: unknown field 'nope'" in str(info.value)
    rule = RoutingRule(meeting_type=demo, name="DQ", outcome="disqualify", required_skills={"x": 11})
    with pytest.raises(ValidationError) as info:
        rule.full_clean()
    assert set(info.value.message_dict) == {"required_skills", "disqualify_message"}


def write(tmp_path, text):
    path = tmp_path / "accounts.csv"
    path.write_text(text)
    return str(path)


def test_import_accounts_creates_updates_and_is_idempotent(tmp_path, reps, capsys):
    Account.objects.create(domain="acme.io", name="Old")
    path = write(
        tmp_path,
        f"domain,name,crm_id,owner_email\nACME.io,Acme,001,{reps['ben'].email}\nglobex.com,Globex,,\n",
    )
    call_command("import_accounts", path)
    assert "1 created, 1 updated, 0 unchanged" in capsys.readouterr().out
    acme = Account.objects.get(domain="acme.io")
    assert (acme.name, acme.crm_id, acme.owner) == ("Acme", "001", reps["ben"])
    call_command("import_accounts", path)
    assert "0 created, 0 updated, 2 unchanged" in capsys.readouterr().out


def test_import_accounts_reports_every_row_error_and_writes_nothing(tmp_path, reps):
    path = write(
        tmp_path, "domain,owner_email\nok.com,\nnot a domain,\ngmail.com,\nok.com,ghost@example.com\n"
    )
    with pytest.raises(CommandError) as info:
        call_command("import_accounts", path)
    assert str(info.value).splitlines() == [
        "row 3.domain: 'not a domain' is not a domain",
        "row 4.domain: gmail.com is a free-mail domain, not a company",
        "row 5.domain: ok.com already given in row 2",
        "row 5.owner_email: unknown rep ghost@example.com",
    ]
    assert not Account.objects.exists()
    with pytest.raises(CommandError, match="unknown column"):
        call_command("import_accounts", write(tmp_path, "domain,colour\nx.com,red\n"))


@pytest.mark.parametrize(
    "content,says",
    [  # each was a traceback: a PostgreSQL DataError, a UnicodeDecodeError, a csv.Error
        (b"domain,name\nacme.io,Ac\x00me\n", "row 2.name: contains a NUL character"),
        (b"domain,name\nacme.io,\xff\xfe\n", "not UTF-8 text"),
        (("domain,name\nacme.io," + "x" * 200_000 + "\n").encode(), "the CSV cannot be read: field larger"),
    ],
)
def test_import_accounts_refuses_unreadable_files_with_a_message(tmp_path, reps, content, says):
    path = tmp_path / "accounts.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=says):
        call_command("import_accounts", str(path))
    assert not Account.objects.exists()
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_accounts", str(tmp_path / "missing.csv"))


def test_learn_owners_from_history(demo, reps):
    start = dt.datetime(2026, 2, 1, 10, tzinfo=dt.UTC)
    for i, (email, rep) in enumerate(
        [
            ("a@initech.com", "cara"),
            ("b@initech.com", "cara"),
            ("c@initech.com", "ben"),
            ("d@gmail.com", "ben"),
        ]
    ):
        s = start + dt.timedelta(days=i)
        booking = Booking.objects.create(
            meeting_type=demo,
            pool=demo.pool,
            start=s,
            end=s + dt.timedelta(minutes=30),
            prospect_name="x",
            prospect_email=email,
            prospect_timezone="UTC",
            manage_token_hash=f"t{i}",
            status=Booking.Status.COMPLETED,  # meetings that took place: a booking alone proves nothing
        )
        BookingHost.objects.create(booking=booking, rep=reps[rep], blocked_start=s, blocked_end=booking.end)
    Account.objects.create(domain="owned.com", owner=reps["ana"])
    assert accounts_learn_owners() == 1
    account = Account.objects.get(domain="initech.com")
    assert account.owner == reps["cara"] and account.learned
    assert not Account.objects.filter(domain="gmail.com").exists()


@pytest.mark.parametrize("model", ["routingrule", "lead", "account", "scoremodel", "poolperformance"])
def test_admin_pages_render(staff, rules, api, model):
    api.post("/api/v1/meeting-types/demo/route", {"email": "a@b.io", "name": "A", "timezone": "UTC",
             "answers": {"size": "1-10"}}, format="json")  # fmt: skip
    assert staff.get(f"/admin/leads/{model}/").status_code == 200
    assert staff.get(f"/admin/leads/{model}/add/").status_code in (200, 403)
    if model == "lead":
        lead = Lead.objects.get()
        page = staff.get(f"/admin/leads/lead/{lead.pk}/change/")
        assert page.status_code == 200 and "Too small" in page.content.decode()


def test_a_score_model_saved_with_a_cleared_points_box_has_no_points(staff, demo):
    from leads.models import ScoreModel

    response = staff.post("/admin/leads/scoremodel/add/", {"meeting_type": demo.pk, "points": ""})
    assert response.status_code == 302, response.content[:500]  # an IntegrityError (500) before
    model = ScoreModel.objects.get(meeting_type=demo)
    assert model.points == []
    change = f"/admin/leads/scoremodel/{model.pk}/change/"
    bad = staff.post(change, {"meeting_type": demo.pk, "points": '[{"points": "x"}]'})
    assert bad.status_code == 200 and bad.context["adminform"].form.errors.keys() == {"points"}
