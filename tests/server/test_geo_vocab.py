"""Countries, ITU regions and languages."""

from __future__ import annotations

import pycountry
import pytest

from server import geo


def test_every_country_but_antarctica_has_an_itu_region() -> None:
    """All ISO 3166-1 countries map to one of the six ITU regions (Antarctica to none)."""
    unmapped = [c.alpha_2 for c in pycountry.countries if geo.region_for(c.alpha_2) is None]
    assert unmapped == ["AQ"]


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("CH", geo.Region.EUROPE),
        ("EG", geo.Region.ARAB_STATES),
        ("SN", geo.Region.AFRICA),
        ("KZ", geo.Region.CIS),
        ("BR", geo.Region.AMERICAS),
        ("JP", geo.Region.ASIA_PACIFIC),
        ("jo", geo.Region.ARAB_STATES),
    ],
)
def test_known_regions(country: str, region: geo.Region) -> None:
    """Spot checks against the ITU's regional groupings."""
    assert geo.region_for(country) is region


def test_normalize_country_refuses_unknown_codes() -> None:
    """Unknown or malformed codes raise a ValueError that says what was expected."""
    assert geo.normalize_country(" ch ") == "CH"
    for bad in ("XX", "CHE", "", "1"):
        with pytest.raises(ValueError, match="ISO 3166-1"):
            geo.normalize_country(bad)


def test_languages_are_iso_639_1() -> None:
    """The six UN languages are accepted; unknown codes are refused."""
    for code in ("ar", "zh", "EN", "fr", "ru", "es"):
        assert geo.normalize_language(code) == code.lower()
    with pytest.raises(ValueError, match="ISO 639-1"):
        geo.normalize_language("xx")
