"""Countries (ISO 3166-1 alpha-2, checked against pycountry) and the ITU regions derived from them.

The six regions are those the ITU Telecommunication Development Bureau reports by. Territories that
are not ITU Member States are placed by geography. Antarctica (AQ) belongs to no region.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache

import pycountry


class Region(StrEnum):
    AFRICA = "africa"
    AMERICAS = "americas"
    ARAB_STATES = "arab_states"
    ASIA_PACIFIC = "asia_pacific"
    CIS = "cis"
    EUROPE = "europe"


REGION_LABELS: dict[Region, str] = {
    Region.AFRICA: "Africa",
    Region.AMERICAS: "Americas",
    Region.ARAB_STATES: "Arab States",
    Region.ASIA_PACIFIC: "Asia-Pacific",
    Region.CIS: "CIS",
    Region.EUROPE: "Europe",
}

_REGION_MEMBERS: dict[Region, str] = {
    Region.AFRICA: (
        "AO BJ BW BF BI CM CV CF TD CG CI CD GQ ER SZ ET GA GM GH GN GW KE LS LR MG MW ML MU MZ NA NE NG "
        "RW ST SN SC SL ZA SS TZ TG UG ZM ZW RE YT SH EH TF"
    ),
    Region.ARAB_STATES: "DZ BH KM DJ EG IQ JO KW LB LY MR MA OM PS QA SA SO SD SY TN AE YE",
    Region.AMERICAS: (
        "AG AR BS BB BZ BO BR CA CL CO CR CU DM DO EC SV GD GT GY HT HN JM MX NI PA PY PE KN LC VC SR TT "
        "US UY VE AI AW BM BQ CW FK GF GL GP KY MQ MS PM PR SX TC VG VI BL MF GS"
    ),
    Region.CIS: "AM AZ BY KZ KG RU TJ TM UZ",
    Region.ASIA_PACIFIC: (
        "AF AU BD BT BN KH CN FJ IN ID IR JP KI KP KR LA MY MV MH FM MN MM NR NP NZ PK PG PH WS SG SB LK "
        "TH TL TO TV VU VN PW HK MO TW AS CK NU NC PF GU MP NF PN TK WF CX CC HM IO UM"
    ),
    Region.EUROPE: (
        "AL AD AT BE BA BG HR CY CZ DK EE FI FR DE GR HU IS IE IL IT LV LI LT LU MT MC ME NL MK NO PL PT "
        "MD RO SM RS SK SI ES SE CH TR UA GB VA GE AX FO GI GG IM JE SJ BV"
    ),
}


@cache
def _region_by_country() -> dict[str, Region]:
    table: dict[str, Region] = {}
    for region, members in _REGION_MEMBERS.items():
        for code in members.split():
            table[code] = region
    return table


def normalize_country(code: str) -> str:
    """Return the upper-case ISO 3166-1 alpha-2 code.

    Raises:
        ValueError: the code is not an ISO 3166-1 alpha-2 country code.
    """
    cleaned = code.strip().upper()
    if len(cleaned) != 2 or pycountry.countries.get(alpha_2=cleaned) is None:
        raise ValueError(f"unknown country code {code!r} (expected ISO 3166-1 alpha-2, e.g. CH)")
    return cleaned


def region_for(country: str | None) -> Region | None:
    """The ITU region of a country code, or ``None`` for no country (or Antarctica)."""
    if country is None:
        return None
    return _region_by_country().get(country.upper())


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code.upper())
    if country is None:
        return code
    return getattr(country, "common_name", None) or country.name


@cache
def country_choices() -> list[tuple[str, str]]:
    """(code, name) for every country, sorted by name, for forms."""
    return sorted(((c.alpha_2, country_name(c.alpha_2)) for c in pycountry.countries), key=lambda p: p[1])


def normalize_language(code: str) -> str:
    """Return a lower-case ISO 639-1 language code.

    Raises:
        ValueError: not a two-letter ISO 639-1 code.
    """
    cleaned = code.strip().lower()
    if len(cleaned) != 2 or pycountry.languages.get(alpha_2=cleaned) is None:
        raise ValueError(f"unknown language code {code!r} (expected ISO 639-1, e.g. en, fr, ar)")
    return cleaned


def language_name(code: str) -> str:
    language = pycountry.languages.get(alpha_2=code)
    return language.name if language is not None else code
