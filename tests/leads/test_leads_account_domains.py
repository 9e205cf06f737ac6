"""E-mail and account domains compare in one form (``leads.rules_core.normalize_domain``): NFKC, lower case,
and an internationalised domain in its IDNA ASCII form, as DNS and CRMs store it. Before, a lead at
``bücher.de`` never found its account ``xn--bcher-kva.de``, and a full-width ``ｇｍａｉｌ.com`` was a
company."""

from __future__ import annotations

import datetime as dt
import hashlib
from io import StringIO

import pytest

from booking.models import Booking, BookingHost
from leads.accounts import AccountImportError, accounts_import, accounts_learn_owners
from leads.models import Account, Lead, RoutingRule
from leads.owners import AccountOwnerBackend
from leads.rules_core import LeadFacts, email_domain, is_free_mail, matches, unicode_domain
from tests.leads.conftest import lead_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
ROUTE = "/api/v1/meeting-types/demo/route"


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("pat@Bücher.de", "xn--bcher-kva.de"),
        ("pat@bücher。de", "xn--bcher-kva.de"),  # an ideographic full stop separates labels too
        ("pat@xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("pat@ｇｍａｉｌ.com", "gmail.com"),  # full-width letters (NFKC)
        ("pat@straße.de", "xn--strae-oqa.de"),  # IDNA 2008: ß is a letter of its own, not "ss"
        ("pat@пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("Pat@ACME.io ", "acme.io"),
        # no valid IDN: kept as normalised so far, so it still compares with itself
        ("pat@my_host.com", "my_host.com"),
        ("pat@bü..de", "bü..de"),
        ("pat@bü\udc80.de", "bü\udc80.de"),
        ("pat", "pat"),
    ],
)
def test_an_email_domain_is_normalised_to_its_ascii_form(email, domain):
    assert email_domain(email) == domain


def test_a_full_width_free_mail_domain_is_free_mail_and_the_unicode_form_reads_back():
    assert is_free_mail("ｇｍａｉｌ.com") and is_free_mail(email_domain("pat@ＧＭＡＩＬ.COM"))
    assert matches({"field": "free_mail", "op": "equals", "value": True}, LeadFacts(email="p@ｇｍａｉｌ.com"))
    assert unicode_domain("xn--bcher-kva.de") == "bücher.de" and unicode_domain("acme.io") == "acme.io"
    assert unicode_domain("xn--zz-9999.de") == "xn--zz-9999.de"  # no valid A-label: as it is


@pytest.fixture
def owner_rule(demo):
    return RoutingRule.objects.create(meeting_type=demo, order=0, name="Owner", outcome="account_owner")


def owner_of_the_lead(api, email: str) -> dict:
    response = api.post(ROUTE, lead_body(email=email), format="json")
    assert response.status_code == 200, response.json()
    return Lead.objects.get().decision["owner"]


def test_a_lead_at_an_internationalised_domain_finds_its_imported_account(api, reps, owner_rule):
    """A German prospect books as ``pat@Bücher.de``; sales ops imported the account from their CRM, which
    (like DNS) stores the domain as ``xn--bcher-kva.de``. The lead's domain was kept as ``bücher.de``, so
    the account was never found and the lead went to whoever was next instead of its owner Cara."""
    accounts_import(StringIO(f"domain,owner_email\nxn--bcher-kva.de,{reps['cara'].email}\n"))
    owner = owner_of_the_lead(api, "pat@Bücher.de")
    assert (owner.get("rep_id"), owner["used"], owner["source"]) == (reps["cara"].pk, True, "account")
    assert Lead.objects.get().domain == "xn--bcher-kva.de"


def test_an_account_saved_in_its_unicode_form_is_found_too(api, reps, owner_rule):
    Account.objects.create(domain="bücher.de", owner=reps["cara"])
    owner = owner_of_the_lead(api, "pat@xn--bcher-kva.de")
    assert (owner.get("rep_id"), owner["source"]) == (reps["cara"].pk, "account")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [(" Bücher.DE ", "xn--bcher-kva.de"), ("пример.рф", "xn--e1afmkfd.xn--p1ai"), ("ＡＣＭＥ.io", "acme.io")],
)
def test_an_account_saved_in_code_is_stored_in_its_ascii_form(typed, stored):
    """An account saved by code (a script, a shell, a future importer) stores its domain as the importer and
    the admin do (``Account.save``: ``normalize_domain``), in the form leads' domains are compared in;
    before, ``save`` only lower-cased it and kept ``bücher.de`` in Unicode."""
    account = Account.objects.create(domain=typed)
    assert account.domain == stored
    assert Account.objects.get(pk=account.pk).domain == stored


def test_an_earlier_meeting_with_the_domain_typed_in_unicode_still_names_the_owner(
    api, demo, reps, owner_rule
):
    """The booking history keeps the address as the prospect typed it (``kim@bücher.de``): the lead's
    normalised domain is looked for in both forms."""
    start = dt.datetime(2026, 2, 1, 10, tzinfo=dt.UTC)
    booking = Booking.objects.create(
        meeting_type=demo, pool=demo.pool, start=start, end=start + dt.timedelta(minutes=30),
        prospect_name="Kim", prospect_email="kim@bücher.de", prospect_timezone="UTC",
        manage_token_hash="t1", status=Booking.Status.COMPLETED,
    )  # fmt: skip
    BookingHost.objects.create(
        booking=booking, rep=reps["cara"], blocked_start=start, blocked_end=booking.end
    )
    owner = owner_of_the_lead(api, "pat@Bücher.de")
    assert (owner.get("rep_id"), owner["source"]) == (reps["cara"].pk, "history_domain")


def test_the_importer_stores_a_domain_in_its_ascii_form(reps):
    """The importer refused ``bücher.de`` as "not a domain"; it stores it as leads' domains are compared,
    takes a top-level domain in its ASCII form (``.xn--p1ai``), and sees both forms as one domain."""
    result = accounts_import(StringIO(f"domain,owner_email\nBücher.de,{reps['cara'].email}\nпример.рф,\n"))
    assert result["created"] == 2
    assert set(Account.objects.values_list("domain", flat=True)) == {
        "xn--bcher-kva.de",
        "xn--e1afmkfd.xn--p1ai",
    }
    with pytest.raises(AccountImportError) as refused:
        accounts_import(StringIO("domain\nbücher.de\nxn--bcher-kva.de\nｇｍａｉｌ.com\n"))
    assert refused.value.errors == [
        "row 3.domain: xn--bcher-kva.de already given in row 2",
        "row 4.domain: gmail.com is a free-mail domain, not a company",
    ]


def test_the_admin_stores_a_domain_as_the_importer_does(client, django_user_model, reps):
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw"))
    form = {"name": "Bücher GmbH", "crm_id": "", "owner": reps["cara"].pk}
    saved = client.post("/admin/leads/account/add/", {**form, "domain": " Bücher.DE "})
    assert saved.status_code == 302, saved.content.decode()[:500]
    assert Account.objects.get().domain == "xn--bcher-kva.de"
    refused = client.post("/admin/leads/account/add/", {**form, "domain": "ｇｍａｉｌ.com"})
    assert refused.status_code == 200 and "gmail.com is a free-mail domain" in refused.content.decode()
    again = client.post("/admin/leads/account/add/", {**form, "domain": "XN--BCHER-KVA.de"})
    assert again.status_code == 200 and Account.objects.count() == 1  # the same account: unique


# --- accounts stored in Unicode before domains were normalised (migration leads.0004 converts them; the code
# paths below find a row it missed too). Each test failed before its fix.


def completed_meeting(demo, rep, email: str) -> None:
    start = dt.datetime(2026, 2, 1, 10, tzinfo=dt.UTC)
    booking = Booking.objects.create(
        meeting_type=demo, pool=demo.pool, start=start, end=start + dt.timedelta(minutes=30),
        prospect_name="Kim", prospect_email=email, prospect_timezone="UTC",
        manage_token_hash=hashlib.sha256(email.encode()).hexdigest(), status=Booking.Status.COMPLETED,
    )  # fmt: skip
    BookingHost.objects.create(booking=booking, rep=rep, blocked_start=start, blocked_end=booking.end)


def test_learn_account_owners_keeps_the_owner_of_an_account_stored_in_unicode(demo, reps):
    """The CRM's account ``bücher.de`` owned by Cara was stored in Unicode before ``Account.save``
    normalised domains. ``learn_account_owners`` fills only *unowned* domains: it must see that
    ``xn--bcher-kva.de`` (the normalised domain of the history's bookings, hosted by Ben) is Cara's
    ``bücher.de``, create no second, learned account for Ben, and leave bücher.de's leads with their owner.
    Before the fix it created that account, which the owner lookup prefers."""
    Account.objects.bulk_create(
        [Account(domain="bücher.de", name="Bücher", owner=reps["cara"])]
    )  # an old row
    completed_meeting(demo, reps["ben"], "kim@bücher.de")

    assert accounts_learn_owners() == 0
    assert list(Account.objects.values_list("domain", "owner", "learned")) == [
        ("bücher.de", reps["cara"].pk, False)
    ]
    match = AccountOwnerBackend().owner_for(email="lee@bücher.de", domain=email_domain("lee@bücher.de"))
    assert match is not None and match.rep_id == reps["cara"].pk


def test_learn_account_owners_fills_an_unowned_account_stored_in_unicode(demo, reps):
    """An unowned account stored in Unicode is the domain's account: learning gives it the owner rather
    than creating a second account beside it."""
    Account.objects.bulk_create([Account(domain="bücher.de", name="Bücher")])  # an old row
    completed_meeting(demo, reps["ben"], "kim@bücher.de")

    assert accounts_learn_owners() == 1
    assert list(Account.objects.values_list("name", "owner", "learned")) == [("Bücher", reps["ben"].pk, True)]


def test_reimporting_the_accounts_csv_finds_an_account_stored_in_unicode(reps):
    """The accounts CSV imported before domains were normalised stored ``bücher.de`` as exported (Unicode).
    Importing the very same file again reports it ``unchanged`` (docs/routing-rules.md) and keeps one
    account; a changed row updates that account (and stores its domain in ASCII). Before the fix the
    importer looked the row up only in its ASCII form, created a second account and reported ``created``."""
    cara = reps["cara"]
    Account.objects.bulk_create([Account(domain="bücher.de", name="Bücher", owner=cara)])  # an old row
    csv = f"domain,name,crm_id,owner_email\nbücher.de,Bücher,,{cara.email}\n"
    assert accounts_import(StringIO(csv)) == {"created": 0, "updated": 0, "unchanged": 1}
    assert Account.objects.count() == 1

    changed = f"domain,name,crm_id,owner_email\nxn--bcher-kva.de,Bücher GmbH,42,{cara.email}\n"
    assert accounts_import(StringIO(changed)) == {"created": 0, "updated": 1, "unchanged": 0}
    assert list(Account.objects.values_list("domain", "name", "crm_id")) == [
        ("xn--bcher-kva.de", "Bücher GmbH", "42")
    ]


def test_learn_account_owners_passes_over_a_stored_address_whose_domain_no_account_can_hold(demo, reps):
    """A booking stored before the booking API refused them has an address whose domain, normalised, is
    longer than DNS allows (``ﬃ`` is ``ffi``: 707 characters from a 247-character address). Learning owners
    passes over it (PostgreSQL refused the account's INSERT, and the whole run rolled back) and still
    learns the other domains."""
    long_domain = ".".join(["ﬃ" * 21] * 11) + ".com"
    assert len(email_domain(f"a@{long_domain}")) > 253
    completed_meeting(demo, reps["ben"], f"a@{long_domain}")
    completed_meeting(demo, reps["ana"], "kim@acme.io")

    assert accounts_learn_owners() == 1
    assert list(Account.objects.values_list("domain", "owner", "learned")) == [
        ("acme.io", reps["ana"].pk, True)
    ]
