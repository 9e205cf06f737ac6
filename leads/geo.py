"""Country of an IANA time zone, from the tz database's ``zone.tab`` (shipped by the tzdata package), and
for a backward-compatible name (a link, e.g. ``Asia/Calcutta`` → ``Asia/Kolkata``, which browsers still
report and the APIs accept) the country of the zone it names, from the ``L target link`` lines of
``tzdata.zi``."""

from __future__ import annotations

import functools
import importlib.resources


def _read(name: str) -> str:
    try:
        return importlib.resources.files("tzdata").joinpath("zoneinfo", name).read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return ""


# Old names that tzdata now links across a border (zones merged since 2022: Pacific/Truk → Port Moresby, in
# Papua New Guinea): the zone they were renamed to in their own country (tzdata's ``backward`` file).
RENAMED = {
    "Pacific/Truk": "Pacific/Chuuk",
    "Pacific/Yap": "Pacific/Chuuk",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "America/Coral_Harbour": "America/Atikokan",
    "America/Virgin": "America/St_Thomas",
    "Antarctica/South_Pole": "Antarctica/McMurdo",
    "Atlantic/Jan_Mayen": "Arctic/Longyearbyen",
}


@functools.cache
def _zone_countries() -> dict[str, str]:
    out = {}
    for line in _read("zone.tab").splitlines():
        if line and not line.startswith("#"):
            parts = line.split("\t")
            if len(parts) >= 3:
                out[parts[2]] = parts[0]
    for line in _read("tzdata.zi").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L" and parts[2] not in out and parts[1] in out:
            out[parts[2]] = out[parts[1]]  # a link listed in zone.tab keeps its own country there
    for old, renamed in RENAMED.items():
        if renamed in out:
            out[old] = out[renamed]
    return out


def country_for_timezone(zone: str) -> str:
    """ISO 3166 alpha-2 code of ``zone`` (e.g. Europe/Berlin → DE, Asia/Calcutta → IN), or "" when unknown
    (UTC, Etc/…)."""
    return _zone_countries().get(zone, "")


# what people write for a country that is not its ISO code (or name in iso3166.tab)
ALIASES = {"uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "usa": "US"}


@functools.cache
def _country_names() -> dict[str, str]:
    """Codes and names of the tz database's ``iso3166.tab`` (``de`` and ``germany`` → DE), and ``ALIASES``."""
    out = dict(ALIASES)
    for line in _read("iso3166.tab").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and not line.startswith("#"):
            out[parts[0].strip().casefold()] = parts[0].strip()
            out[parts[1].strip().casefold()] = parts[0].strip()
    return out


def country_code(answer: str) -> str:
    """The ISO alpha-2 code a prospect's ``country`` answer names: a code (``de``), a country's name as the
    tz database spells it (``Germany``) or a common other name (``UK``, ``USA``); "" for anything else, so
    that the time zone's country is used. Cutting the answer to two letters made "Germany" Georgia (GE),
    and taking any two letters made "UK" (no ISO code) hide the time zone's GB."""
    return _country_names().get(answer.strip().casefold(), "")
