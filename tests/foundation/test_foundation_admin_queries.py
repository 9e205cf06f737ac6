"""Admin pages whose query count does not grow with their rows: the routing rules list joins each rule's
pools, and a pool's page shows each member's rep from the joined row. Each test failed before its fix."""

from __future__ import annotations

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from leads.models import RoutingRule
from routing.models import Pool, PoolMember, Rep

pytestmark = pytest.mark.django_db


def queries(client, url: str) -> int:
    """How many queries opening the admin page at ``url`` runs."""
    with CaptureQueriesContext(db_connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_routing_rule_list_joins_each_rules_pools(admin_client, booking):
    """The routing rules list shows each rule's pool and fallback pool. Both keys are nullable, so Django's
    default ``select_related()`` does not join them: ``list_select_related`` names them. Before, each rule
    cost two queries (100 more for 50 rules)."""
    meeting_type = booking.meeting_type
    pools = list(Pool.objects.order_by("pk"))
    url = reverse("admin:leads_routingrule_changelist")

    def add_rules(first: int, count: int) -> None:
        RoutingRule.objects.bulk_create(
            RoutingRule(
                meeting_type=meeting_type,
                name=f"Rule {n}",
                order=n,
                pool=pools[n % len(pools)],
                fallback_pool=pools[(n + 1) % len(pools)],
            )
            for n in range(first, first + count)
        )

    add_rules(0, 5)
    few = queries(admin_client, url)
    add_rules(5, 45)
    many = queries(admin_client, url)
    assert many <= few + 2, f"5 rules: {few} queries; 50 rules: {many}"


def test_a_pools_page_shows_its_members_reps_without_a_query_each(admin_client, booking):
    """A pool's page lists its members (``PoolMemberInline``, whose queryset joins rep and pool), and each
    row's rep box (an autocomplete) shows the joined rep (``RowAutocompleteSelect``). Before, Django's
    ``AutocompleteSelect`` looked the selected rep up again for every row: 50 more queries for the 50-rep
    pools the benchmarks book."""
    pool = booking.pool
    url = reverse("admin:routing_pool_change", args=[pool.pk])

    def add_members(first: int, count: int) -> None:
        reps = Rep.objects.bulk_create(
            Rep(name=f"Rep {n}", email=f"rep{n}@example.com", timezone="UTC")
            for n in range(first, first + count)
        )
        PoolMember.objects.bulk_create(
            PoolMember(pool=pool, rep=rep, rank=10 + i) for i, rep in enumerate(reps)
        )

    add_members(0, 5 - pool.members.count())
    few = queries(admin_client, url)
    add_members(100, 45)
    many = queries(admin_client, url)
    assert many <= few + 2, f"5 members: {few} queries; 50 members: {many}"
    page = admin_client.get(url).content.decode()
    rep = Rep.objects.get(email="rep120@example.com")
    assert f'<option value="{rep.pk}" selected>{rep}</option>' in page.replace("&lt;", "<").replace(
        "&gt;", ">"
    )
