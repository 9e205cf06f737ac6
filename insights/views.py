"""Staff pages: the routing simulator and the KPI dashboard (thin: forms, services, selectors, templates)."""

from __future__ import annotations

import csv
from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from insights import forms as insights_forms
from insights import kpis
from insights.charts import bars, funnel, line
from insights.forms import DashboardForm, SimulatorForm
from insights.services import Synthetic, simulation_run
from routing.configfile import ConfigInvalid
from routing.models import Pool


def _share_chart(result: dict) -> dict:
    runs = result["results"]
    names: dict[int, str] = {}
    for run in runs:
        names.update({r["rep_id"]: r["name"] for r in run["reps"]})
    rows = []
    for rid, name in sorted(names.items(), key=lambda kv: kv[1]):
        values = []
        for run in runs:
            rep = next((r for r in run["reps"] if r["rep_id"] == rid), None)
            values.append(rep["share"] if rep else 0.0)
        values.append(next((r["target_share"] for r in runs[0]["reps"] if r["rep_id"] == rid), 0.0))
        rows.append((name, values))
    return bars(rows, series=[*(r["label"] for r in runs), "target (current weights)"])


# staff who may view bookings: the pages show prospects' names, every rep's bookings and revenue (staff
# status alone, which every rep once needed to sign in, is not enough)
VIEW_BOOKINGS = permission_required("booking.view_booking", raise_exception=True)


# never_cache: like the admin's pages, never stored by the browser (Back after signing out on a shared
# computer shows them) or a proxy; outermost, so the redirect to sign in is not stored either
@never_cache
@staff_member_required
@VIEW_BOOKINGS
def simulator(request):
    result, status = None, 200
    if request.method == "POST":
        form = SimulatorForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            upload = data.get("candidate")
            text = upload.read().decode("utf-8", errors="replace") if upload else None
            synthetic = None
            if data["mode"] == "synthetic":
                seed = data.get("seed")  # 0 is a seed like any other (``simulate_routing --seed 0``)
                synthetic = Synthetic(data["rate"], data["hours"], 1 if seed is None else seed)
            try:
                result = simulation_run(
                    pool=data["pool"],
                    start=data["start"],
                    end=data.get("end"),
                    candidate_text=text,
                    candidate_filename=upload.name if upload else "candidate.yaml",
                    synthetic=synthetic,
                    max_leads=insights_forms.MAX_SYNTHETIC_LEADS,  # replays too: the page answers in time
                )
            except ConfigInvalid as exc:
                for problem in exc.errors:
                    form.add_error("candidate", problem)
            except ValueError as exc:
                form.add_error(None, str(exc))
        if form.errors:
            status = 400
    else:
        form = SimulatorForm()
    context = {"form": form, "result": result, "chart": _share_chart(result) if result else None}
    return render(request, "insights/simulator.html", context, status=status)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """A text cell that a spreadsheet would run as a formula (a prospect named ``=HYPERLINK(…)``, CSV
    injection) gets a leading apostrophe, which shows the text as typed; numbers stay numbers."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _csv(name: str, header: list[str], rows: list[list]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return response


REP_COLUMNS = [
    "name", "bookings", "share", "target_share", "gap", "lead_time_hours", "speed_to_lead_minutes",
    "speed_to_lead_p90_minutes", "speed_to_lead_bookings", "outcomes", "no_show_rate", "conversion",
    "revenue", "revenue_per_meeting", "cap_hits", "fallbacks", "free_slots", "adjusted_fairness", "departed",
]  # fmt: skip


def _tables(pool, start, end, now) -> dict:
    reps = kpis.rep_rows(pool, start, end)
    board = kpis.today_board(now=now)
    return {
        "funnel": kpis.funnel(pool, start, end),
        "reps": reps,
        "daily": kpis.daily_bookings(pool, start, end),
        "board": board,
    }


def _export(table: str, data: dict, pool) -> HttpResponse:
    if table == "funnel":
        f = data["funnel"]
        return _csv(f"{pool.slug}-funnel", list(f), [list(f.values())])
    if table == "reps":
        rows = [[r[c] for c in REP_COLUMNS] for r in data["reps"]["rows"]]
        return _csv(f"{pool.slug}-reps", REP_COLUMNS, rows)
    if table == "daily":
        return _csv(f"{pool.slug}-daily", ["date", "bookings"], [list(r) for r in data["daily"]])
    if table == "meetings":
        rows = [
            [m["rep"], m["start"].isoformat(), m["meeting_type"], m["prospect"]]
            for m in data["board"]["meetings"]
        ]
        return _csv("today-meetings", ["rep", "start", "meeting_type", "prospect"], rows)
    rows = [[u["rep"], "; ".join(u["reasons"])] for u in data["board"]["unavailable"]]
    return _csv("unavailable-now", ["rep", "reasons"], rows)


@never_cache
@staff_member_required
@VIEW_BOOKINGS
def dashboard(request):
    now = timezone.now()
    params = request.GET.copy()
    if not params:
        first = Pool.objects.order_by("name").first()
        if first is None:
            return render(request, "insights/dashboard.html", {"form": DashboardForm()})
        params["pool"] = first.slug if first else ""
        params["start"] = (now - timedelta(days=30)).strftime("%Y-%m-%d 00:00")
        # up to now: the period excludes its end, so the minute shown is the next one (this minute's
        # bookings are in)
        next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        params["end"] = next_minute.strftime("%Y-%m-%d %H:%M")
    form = DashboardForm(params)
    if not form.is_valid():
        return render(request, "insights/dashboard.html", {"form": form}, status=400)
    pool, start, end = (form.cleaned_data[k] for k in ("pool", "start", "end"))
    data = _tables(pool, start, end, now)
    if form.cleaned_data.get("table"):
        return _export(form.cleaned_data["table"], data, pool)
    rows = data["reps"]["rows"]
    context = {
        "form": form,
        "pool": pool,
        "data": data,
        "share_chart": bars(
            [(r["name"], [r["share"] or 0.0, r["target_share"]]) for r in rows], series=["share", "target"]
        ),
        "funnel_chart": funnel(
            [(k, data["funnel"][k] or 0) for k in ("visits", "visitors", "qualified", "booked")]
        ),
        "line_chart": line(data["daily"]),
        "query": request.GET.urlencode() or params.urlencode(),
    }
    return render(request, "insights/dashboard.html", context)
