"""The official divisions since 1 July 2025, from the kept `vietnam-provinces` library."""

from __future__ import annotations

import pytest

from dcops.inventory import divisions
from dcops.inventory.divisions import UnknownDivisionError


def test_34_provinces_each_with_communes() -> None:
    provinces = divisions.provinces()
    assert len(provinces) == 34
    assert len({p.code for p in provinces}) == 34
    assert all(divisions.communes(p) for p in provinces)


def test_dong_nai_has_95_commune_level_units_after_the_merger() -> None:
    dong_nai = divisions.province("Đồng Nai")
    units = divisions.communes(dong_nai)
    assert dong_nai.code == 75 and len(units) == 95
    assert {u.type for u in units} == {"xã", "phường"}
    bien_hoa = next(u for u in units if u.name == "Phường Biên Hòa")
    assert (bien_hoa.short_name, bien_hoa.type_en) == ("Biên Hòa", "Ward")
    assert divisions.commune(bien_hoa.code) == bien_hoa
    assert divisions.commune("not-a-code") is None


@pytest.mark.parametrize("name", ["Đồng Nai", "Dong Nai", "dong nai", "DONG_NAI", "75", 75])
def test_lookup_with_or_without_diacritics_or_by_code(name: str | int) -> None:
    assert divisions.province(name).code == 75


def test_city_prefix_is_optional() -> None:
    assert divisions.province("Ho Chi Minh").name == "Thành phố Hồ Chí Minh"
    assert divisions.province("TP Hồ Chí Minh").code == 79
    assert divisions.province("Thành phố Huế").code == divisions.province("Hue").code


def test_special_zones_are_a_commune_type() -> None:
    types = {u.type for u in divisions.communes(divisions.province("Quảng Ninh"))}
    assert "đặc khu" in types


def test_unknown_province_names_close_matches() -> None:
    with pytest.raises(UnknownDivisionError, match="did you mean Đồng Nai"):
        divisions.province("Dong Nay")
    with pytest.raises(UnknownDivisionError, match=r"the 34: .*Đồng Nai"):
        divisions.province("Biên Hòa")  # a former city, not a province
