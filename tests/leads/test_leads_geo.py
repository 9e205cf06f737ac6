"""Countries of a lead's ``country`` answer (``leads.geo.country_code``): the usual English and ISO names a
form's dropdown offers, not only the tz database's own spelling."""

from __future__ import annotations

import pytest

from leads.geo import ALIASES, _read, country_code
from leads.services import lead_facts

WANTED = {
    "United Kingdom": "GB",
    "United States of America": "US",
    "South Korea": "KR",
    "North Korea": "KP",
    "Czechia": "CZ",
    "Holland": "NL",
    "Ivory Coast": "CI",
    "Côte d'Ivoire": "CI",
    "Russia": "RU",
    "Russian Federation": "RU",
    "Vietnam": "VN",
    "Viet Nam": "VN",
    "Iran": "IR",
    "Iran, Islamic Republic of": "IR",
    "Syria": "SY",
    "Syrian Arab Republic": "SY",
    "Laos": "LA",
    "Lao People's Democratic Republic": "LA",
    "Bolivia": "BO",
    "Bolivia, Plurinational State of": "BO",
    "Venezuela": "VE",
    "Venezuela, Bolivarian Republic of": "VE",
    "Tanzania": "TZ",
    "Tanzania, United Republic of": "TZ",
    "Moldova": "MD",
    "Moldova, Republic of": "MD",
    "Taiwan": "TW",
    "Taiwan, Province of China": "TW",
    "Macedonia": "MK",
    "North Macedonia": "MK",
    "Brunei": "BN",
    "Brunei Darussalam": "BN",
    "Micronesia": "FM",
    "Micronesia, Federated States of": "FM",
    "Palestine": "PS",
    "Palestine, State of": "PS",
    "Vatican": "VA",
    "Holy See": "VA",
    "Bosnia and Herzegovina": "BA",
    "Trinidad and Tobago": "TT",
    "Democratic Republic of the Congo": "CD",
    "Congo": "CG",
    "Myanmar": "MM",
    "Türkiye": "TR",
    "Eswatini": "SZ",
    "Timor-Leste": "TL",
    "Cabo Verde": "CV",
}


@pytest.mark.parametrize(("name", "code"), WANTED.items())
def test_usual_country_names_are_recognised(name, code):
    assert country_code(name) == code
    assert country_code(f"  {name.upper()} ") == code


def test_a_country_answer_with_a_usual_name_beats_the_time_zone():
    """A form's country dropdown uses the usual English names; the prospect happens to be travelling (time
    zone America/Sao_Paulo). "United Kingdom", "United States of America", "South Korea" and "Czechia" were
    not recognised (the tz database spells them "Britain (UK)", "United States", "Korea (South)", "Czech
    Republic"), so the lead got the time zone's country (BR) and a UK/US/KR/CZ territory rule missed it."""
    wanted = {"United Kingdom": "GB", "United States of America": "US", "South Korea": "KR", "Czechia": "CZ"}
    got = {
        name: lead_facts(
            email="pat@acme.io", timezone="America/Sao_Paulo", answers={"country": name}, utm={}
        ).country
        for name in wanted
    }
    assert got == wanted


def test_every_alias_names_a_country_of_the_tz_database_and_no_code():
    """The aliases are data: each maps to a code iso3166.tab knows, none is another country's code ("uk" is
    no ISO code), and each is written as it is looked up (case-folded, no surrounding blanks)."""
    codes = {line.split("\t")[0] for line in _read("iso3166.tab").splitlines() if not line.startswith("#")}
    assert set(ALIASES) <= codes
    names = [name for aliases in ALIASES.values() for name in aliases]
    assert all(name == name.casefold() == name.strip() for name in names)
    assert not {name.upper() for name in names} & codes
    assert len(names) == len(set(names))  # no name for two countries
