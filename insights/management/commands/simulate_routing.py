"""``manage.py simulate_routing POOL --start … --end …`` (replay) or ``--rate … --hours …`` (synthetic)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from booking.models import MeetingType
from insights.services import Synthetic, simulation_run
from routing.configfile import ConfigInvalid
from routing.models import Pool
from routing.validators import OUT_OF_RANGE, within_years


def _instant(value: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not an ISO-8601 date/time: {value!r}") from None
    if not within_years(dt):
        raise CommandError(f"{value!r}: {OUT_OF_RANGE}")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class StderrBar:
    """A one-line progress bar; ``write`` takes a string (no newline added)."""

    def __init__(self, write, width: int = 40):
        self.write, self.width, self.last = write, width, -1

    def __call__(self, done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct == self.last:
            return
        self.last = pct
        filled = self.width * pct // 100
        self.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {pct:3d}% {done}/{total}")
        if done >= total:
            self.write("\n")


class Command(BaseCommand):
    help = "Replay past bookings or a synthetic lead stream through the routing engine (writes nothing)."

    def add_arguments(self, parser):
        parser.add_argument("pool", help="pool slug")
        parser.add_argument("--start", required=True, help="period start (ISO-8601; naive = UTC)")
        parser.add_argument("--end", help="period end for a replay (ISO-8601)")
        parser.add_argument("--candidate", help="config file (YAML/JSON, import_config format) with the pool")
        parser.add_argument("--rate", type=float, help="synthetic stream: leads per hour")
        parser.add_argument("--hours", type=float, help="synthetic stream: length in hours")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--meeting-type", help="synthetic: meeting type slug")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        pool = Pool.objects.filter(slug=opts["pool"]).first()
        if pool is None:
            raise CommandError(f"unknown pool {opts['pool']!r}")
        synthetic = None
        if opts["rate"] is not None or opts["hours"] is not None:
            if not all(
                isinstance(opts[k], float) and math.isfinite(opts[k]) and opts[k] > 0
                for k in ("rate", "hours")
            ):  # NaN is truthy and "inf" a float: a stream that never ends, a traceback
                raise CommandError("a synthetic stream needs both --rate and --hours (finite, positive)")
            mt = None
            if opts["meeting_type"]:
                mt = MeetingType.objects.filter(slug=opts["meeting_type"], pool=pool).first()
                if mt is None:
                    raise CommandError(f"pool {pool.slug} has no meeting type {opts['meeting_type']!r}")
            start = _instant(opts["start"])
            try:
                end = start + timedelta(hours=opts["hours"])
            except OverflowError:
                end = None
            if end is None or not within_years(end):
                raise CommandError("--hours: the stream would end past the years Baton handles")
            synthetic = Synthetic(opts["rate"], opts["hours"], opts["seed"], mt)
        elif not opts["end"]:
            raise CommandError("give --end for a replay, or --rate and --hours for a synthetic stream")
        text = filename = None
        if opts["candidate"]:
            path = Path(opts["candidate"])
            if not path.is_file():
                raise CommandError(f"no such file: {path}")
            try:
                text, filename = path.read_text(encoding="utf-8"), path.name
            except UnicodeDecodeError:
                raise CommandError(f"{path}: not UTF-8 text (save the file as UTF-8)") from None
        try:
            result = simulation_run(
                pool=pool,
                start=_instant(opts["start"]),
                end=_instant(opts["end"]) if opts["end"] else None,
                candidate_text=text,
                candidate_filename=filename or "candidate.yaml",
                synthetic=synthetic,
                progress=None
                if opts["no_progress"]
                else StderrBar(lambda text: self.stderr.write(text, ending="")),
            )
        except ConfigInvalid as exc:
            raise CommandError("candidate config invalid:\n" + "\n".join(exc.errors)) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps(result, default=str, indent=2))
        else:
            self.stdout.write(render_text(result))


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def render_text(result: dict) -> str:
    res = result["results"]
    lines = [
        f"pool {result['pool']} — {result['mode']}, {result['leads']} leads, "
        f"{result['start']} → {result['end']}"
    ]
    head = f"{'':28}" + "".join(f"{r['label'] + ' (' + r['strategy'] + ')':>30}" for r in res)
    lines.append(head)
    for key in (
        "assigned",
        "gini",
        "cap_hits",
        "no_slot",
        "moved",
        "median_wait_minutes",
        "p90_wait_minutes",
    ):
        lines.append(
            f"{key:28}" + "".join(f"{_fmt(r[key] if key != 'gini' else round(r[key], 3)):>30}" for r in res)
        )
    for key in ("owner_leads", "owner_matches", "fallbacks", "cancellations", "reproduced"):
        lines.append(f"{key:28}" + "".join(f"{_fmt(r[key]):>30}" for r in res))
    names = {}
    for r in res:
        for rep in r["reps"]:
            names[rep["rep_id"]] = rep["name"]
    lines.append("per rep (count, share / target):")
    for rid, name in sorted(names.items(), key=lambda kv: kv[1]):
        cells = []
        for r in res:
            rep = next((x for x in r["reps"] if x["rep_id"] == rid), None)
            cells.append(
                "—" if rep is None else f"{rep['count']} ({rep['share']:.0%} / {rep['target_share']:.0%})"
            )
        lines.append(f"  {name[:26]:26}" + "".join(f"{c:>30}" for c in cells))
    return "\n".join(lines) + "\n"
