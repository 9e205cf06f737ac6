"""Route tokens: the signed, expiring result of the route API that the slots and booking APIs accept.

A token (``django.core.signing``, salt ``baton.route``) carries the lead id, the meeting type id, the pool id
and the candidate rep ids (``None``: every member) plus the required skills, for the record. It cannot be
forged or altered without SECRET_KEY and expires after ``BATON_ROUTE_MAX_AGE_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.core import signing
from django.db import connection

from leads import conf
from routing import sqlwrites
from routing.models import Pool

SALT = "baton.route"


class RouteInvalid(ValueError):
    """The token is malformed, tampered with, expired or for another meeting type (message for the user)."""


@dataclass(frozen=True)
class Route:
    pool: Pool
    rep_ids: frozenset[int] | None = None  # None: every member of the pool
    lead_id: int | None = None
    skills: dict[str, int] = field(default_factory=dict)
    factors: dict[int, float] = field(default_factory=dict)  # performance weighting: rep id → factor
    ranks: dict[int, int] = field(default_factory=dict)  # ranked pools: proficiency rank, rep id → rank
    charged: int | None = None  # the ledger entry of the lead's hand-routing, to go with its booking

    def restrict(self, spec):
        """``spec`` (a core PoolSpec) with each member's weight multiplied by its performance factor and every
        member outside ``rep_ids`` made unavailable (and, for proficiency routing, its rank replaced)."""
        if self.ranks:
            members = tuple(replace(m, rank=self.ranks.get(m.rep_id, m.rank)) for m in spec.members)
            spec = replace(spec, members=members)
        if self.factors:
            members = tuple(
                replace(m, weight=m.weight * max(self.factors.get(m.rep_id, 1.0), 0.01)) for m in spec.members
            )
            spec = replace(spec, members=members)
        if self.rep_ids is None:
            return spec
        from booking.services.routing import without

        return without(spec, {m.rep_id for m in spec.members} - self.rep_ids)

    def charge_statement(self, booking) -> tuple[str, list]:
        """The statement that hands the lead's hand-routing charge (``charged``) to ``booking``: linked to
        it, the entry is no longer an assignment without a booking, so the lead counts once."""
        from routing.models import LedgerEntry

        return _link_booking(LedgerEntry, self.charged, booking)

    def attach_statement(self, booking) -> tuple[str, list]:
        """The statement that links the route's lead to ``booking`` (saved, or given its key), for the
        booking's last round trip (``booking.services.create``); the first booking made with the token keeps
        the link. Only for a route with a lead."""
        from leads.models import Lead

        return _link_booking(Lead, self.lead_id, booking)

    @classmethod
    def from_record(cls, pool: Pool, record: dict) -> Route:
        """The route a booking was made under, from its decision's ``record()``: so that a reschedule that
        routes the booking again routes it the same way (the same candidates, factors and ranks)."""
        candidates = record.get("candidates")
        return cls(
            pool=pool,
            rep_ids=None if candidates is None else frozenset(int(r) for r in candidates),
            lead_id=record.get("lead_id"),
            skills=dict(record.get("skills") or {}),
            factors={int(k): float(v) for k, v in (record.get("factors") or {}).items()},
            ranks={int(k): int(v) for k, v in (record.get("ranks") or {}).items()},
        )

    def record(self) -> dict:
        return {
            "lead_id": self.lead_id,
            "pool": self.pool.slug,
            "candidates": None if self.rep_ids is None else sorted(self.rep_ids),
            "skills": dict(self.skills),
            "factors": {str(k): v for k, v in sorted(self.factors.items())},
            "ranks": {str(k): v for k, v in sorted(self.ranks.items())},
        }


def _link_booking(model, pk: int, booking) -> tuple[str, list]:
    """``UPDATE <model> SET booking = <booking> WHERE pk = <pk> AND booking IS NULL`` (a first link only),
    as a statement for ``sqlrows.batch``."""
    opts, quote = model._meta, connection.ops.quote_name
    column, key = quote(opts.get_field("booking").column), quote(opts.pk.column)
    sql = f"UPDATE {quote(opts.db_table)} SET {column} = %s WHERE {key} = %s AND {column} IS NULL"
    return sqlwrites.returning(sql, key), [booking.pk, pk]


def route_sign(route: Route, *, meeting_type_id: int) -> str:
    payload = {
        "l": route.lead_id,
        "m": meeting_type_id,
        "p": route.pool.pk,
        "r": None if route.rep_ids is None else sorted(route.rep_ids),
        "s": route.skills,
        "f": {str(k): v for k, v in route.factors.items()},
        "k": {str(k): v for k, v in route.ranks.items()},
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def route_resolve(token, *, meeting_type, expired_too: bool = False) -> Route:
    """The ``Route`` of ``token`` for ``meeting_type``; ``RouteInvalid`` for anything wrong with it.

    ``expired_too``: a token older than ``BATON_ROUTE_MAX_AGE_SECONDS`` is resolved as well (its signature
    still checked), only to recognise a keyed booking's retry as the request that booked
    (``booking.api.views._as_first_sent``): the key replays for BOOKING_IDEMPOTENCY_TTL_HOURS, longer than a
    token lives. Never to book or to offer slots with."""
    # signed tokens are ASCII (a lone surrogate could not even be checked)
    if not isinstance(token, str) or not token or len(token) > 2000 or not token.isascii():
        raise RouteInvalid("Not a route token.")
    try:
        data = signing.loads(token, salt=SALT, max_age=None if expired_too else conf.route_max_age())
    except signing.SignatureExpired:
        raise RouteInvalid("This route has expired; please answer the questions again.") from None
    except signing.BadSignature:
        raise RouteInvalid("This route token is not valid.") from None
    if not isinstance(data, dict) or data.get("m") != meeting_type.pk:
        raise RouteInvalid("This route belongs to another meeting type.")
    pool = Pool.objects.filter(pk=data.get("p")).first()
    if pool is None:
        raise RouteInvalid("The pool of this route no longer exists.")
    reps = data.get("r")
    route = Route(
        pool=pool,
        rep_ids=None if reps is None else frozenset(int(r) for r in reps),
        lead_id=data.get("l"),
        skills=data.get("s") or {},
        factors={int(k): float(v) for k, v in (data.get("f") or {}).items()},
        ranks={int(k): int(v) for k, v in (data.get("k") or {}).items()},
    )
    return _as_routed_by_hand(route) if route.lead_id is not None else route


def _as_routed_by_hand(route: Route) -> Route:
    """The route of a lead an admin routed by hand since its token was issued (``leads.manual``), while it
    has no booking that moved: the hand-picked rep only, in the pool chosen then, carrying the charge the
    hand-routing wrote (``charged``: a booking takes it over). Before, the old token still offered the whole
    pool: the booking went to another rep, and the lead was charged to both."""
    from leads.models import Lead

    decision = Lead.objects.filter(pk=route.lead_id).values_list("decision", flat=True).first() or {}
    manual = decision.get("manual") if isinstance(decision, dict) else None
    if not manual or manual.get("booking") is not None:
        return route
    from leads.selectors import with_other_roles

    pool = Pool.objects.filter(slug=manual.get("pool")).first() or route.pool
    return replace(
        route,
        pool=pool,
        rep_ids=with_other_roles(pool, {int(manual["rep_id"])}),  # a group's other roles stay open
        factors={},
        ranks={},
        charged=manual.get("ledger_entry"),
    )
