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


# What people (and country dropdowns) write for a country that is neither its ISO code nor its name as the tz
# database's iso3166.tab spells it ("Britain (UK)", "Korea (South)", "Czech Republic", "Côte d’Ivoire" with a
# typographic apostrophe, "&" for "and"): ISO 3166's English short names, their long forms, and the common
# names a form offers. Compared without case (``str.casefold``), like iso3166.tab's own names.
ALIASES = {
    "AE": ("uae",),
    "AG": ("antigua and barbuda",),
    "AS": ("american samoa",),
    "AX": ("aland islands",),
    "BA": ("bosnia and herzegovina", "bosnia"),
    "BL": ("saint barthélemy", "saint barthelemy", "st barthélemy"),
    "BN": ("brunei darussalam",),
    "BO": ("bolivia, plurinational state of", "plurinational state of bolivia"),
    "BQ": ("bonaire, sint eustatius and saba", "caribbean netherlands", "bonaire"),
    "BS": ("the bahamas",),
    "CD": (
        "congo, democratic republic of the", "democratic republic of the congo", "dr congo", "drc",
        "congo-kinshasa",
    ),
    "CF": ("central african republic",),
    "CG": ("congo", "republic of the congo", "congo-brazzaville"),
    "CI": ("côte d'ivoire", "cote d'ivoire", "cote d’ivoire", "ivory coast"),
    "CN": ("people's republic of china",),
    "CV": ("cabo verde",),
    "CW": ("curacao",),
    "CZ": ("czechia",),
    "FK": ("falkland islands (malvinas)", "falklands"),
    "FM": ("micronesia, federated states of", "federated states of micronesia"),
    "GB": (
        "uk", "u.k.", "united kingdom", "united kingdom of great britain and northern ireland", "britain",
        "great britain", "england", "scotland", "wales", "northern ireland",
    ),
    "GM": ("the gambia",),
    "GS": ("south georgia and the south sandwich islands",),
    "HM": ("heard island and mcdonald islands",),
    "IR": ("iran, islamic republic of", "islamic republic of iran"),
    "KG": ("kyrgyz republic",),
    "KN": ("saint kitts and nevis", "st kitts and nevis"),
    "KP": (
        "north korea", "korea, democratic people's republic of", "democratic people's republic of korea",
        "dprk",
    ),
    "KR": ("south korea", "korea, republic of", "republic of korea", "korea"),
    "LA": ("lao people's democratic republic", "lao pdr"),
    "LC": ("saint lucia",),
    "MD": ("moldova, republic of", "republic of moldova"),
    "MF": ("saint martin", "saint martin (french part)", "st martin"),
    "MK": ("macedonia", "republic of north macedonia", "macedonia, the former yugoslav republic of"),
    "MM": ("myanmar", "burma"),
    "MO": ("macao",),
    "NL": ("holland", "the netherlands", "netherlands, kingdom of the"),
    "PM": ("saint pierre and miquelon", "st pierre and miquelon"),
    "PS": ("palestine, state of", "state of palestine", "palestinian territories"),
    "RE": ("reunion",),
    "RU": ("russian federation",),
    "SH": ("saint helena", "saint helena, ascension and tristan da cunha"),
    "SJ": ("svalbard and jan mayen",),
    "SK": ("slovak republic",),
    "ST": ("sao tome and principe", "são tomé and príncipe"),
    "SX": ("sint maarten", "sint maarten (dutch part)"),
    "SY": ("syrian arab republic",),
    "SZ": ("eswatini", "swaziland"),
    "TC": ("turks and caicos islands",),
    "TF": ("french southern territories",),
    "TL": ("timor-leste",),
    "TR": ("türkiye", "turkiye"),
    "TT": ("trinidad and tobago",),
    "TW": ("taiwan, province of china",),
    "TZ": ("tanzania, united republic of", "united republic of tanzania"),
    "UM": ("united states minor outlying islands",),
    "US": ("usa", "u.s.", "u.s.a.", "united states of america"),
    "VA": ("vatican", "holy see", "holy see (vatican city state)", "vatican city state"),
    "VC": ("saint vincent and the grenadines", "st vincent and the grenadines", "saint vincent"),
    "VE": ("venezuela, bolivarian republic of", "bolivarian republic of venezuela"),
    "VG": ("british virgin islands", "virgin islands, british"),
    "VI": ("us virgin islands", "u.s. virgin islands", "virgin islands, u.s."),
    "VN": ("viet nam",),
    "WF": ("wallis and futuna",),
    "WS": ("samoa",),
}  # fmt: skip


@functools.cache
def _country_names() -> dict[str, str]:
    """Codes and names of the tz database's ``iso3166.tab`` (``de`` and ``germany`` → DE), and ``ALIASES``."""
    out = {name.casefold(): code for code, names in ALIASES.items() for name in names}
    for line in _read("iso3166.tab").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and not line.startswith("#"):
            out[parts[0].strip().casefold()] = parts[0].strip()
            out[parts[1].strip().casefold()] = parts[0].strip()
    return out


def country_code(answer: str) -> str:
    """The ISO alpha-2 code a prospect's ``country`` answer names: a code (``de``), a country's name as the
    tz database spells it (``Germany``) or another usual one (``ALIASES``: ``UK``, ``United Kingdom``,
    ``South Korea``, ``Czechia``); "" for anything else, so that the time zone's country is used. Cutting
    the answer to two letters made "Germany" Georgia (GE), and taking any two letters made "UK" (no ISO
    code) hide the time zone's GB; "United Kingdom" was not known (a UK territory rule missed it)."""
    return _country_names().get(answer.strip().casefold(), "")
