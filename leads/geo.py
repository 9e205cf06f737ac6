"""Country of an IANA time zone, from the tz database's ``zone.tab`` (shipped by the tzdata package)."""

from __future__ import annotations

import functools
import importlib.resources


@functools.cache
def _zone_countries() -> dict[str, str]:
    try:
        text = importlib.resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= 3:
                out[parts[2]] = parts[0]
    return out


def country_for_timezone(zone: str) -> str:
    """ISO 3166 alpha-2 code of ``zone`` (e.g. Europe/Berlin → DE), or "" when unknown (UTC, Etc/…)."""
    return _zone_countries().get(zone, "")
