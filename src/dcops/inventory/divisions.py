"""Vietnam's official administrative divisions since 1 July 2025: 34 provinces, their communes.

A thin wrapper over the kept `vietnam-provinces` library (its data carries the official codes of
the two-tier system: province -> xã / phường / đặc khu), so nothing here is typed by hand.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from functools import cache

from vietnam_provinces import Province as _Province
from vietnam_provinces import VietNamDivisionType
from vietnam_provinces import Ward as _Ward

from dcops.errors import DcopsError

#: Commune-level unit types (đơn vị hành chính cấp xã) and their English labels.
COMMUNE_TYPES = {VietNamDivisionType.XA.value: "Commune",
                 VietNamDivisionType.PHUONG.value: "Ward",
                 VietNamDivisionType.DAC_KHU.value: "Special Zone"}
_PREFIXES = ("thanh pho ", "tinh ")


class UnknownDivisionError(DcopsError):
    """A province or commune named or coded that is not in the official list."""


@dataclass(frozen=True, slots=True)
class Province:
    """A province-level unit (tỉnh or thành phố trực thuộc trung ương)."""

    code: int
    name: str  # official Vietnamese name, e.g. "Đồng Nai", "Thành phố Hồ Chí Minh"
    slug: str  # ascii codename, e.g. "dong_nai", "ho_chi_minh"


@dataclass(frozen=True, slots=True)
class Commune:
    """A commune-level unit: xã, phường or đặc khu, with its official code."""

    code: int
    name: str  # official Vietnamese name with its type, e.g. "Phường Biên Hòa"
    type: str  # "xã", "phường" or "đặc khu"
    slug: str  # ascii codename, e.g. "phuong_bien_hoa"
    province_code: int

    @property
    def short_name(self) -> str:
        """The name without its type ("Biên Hòa" for "Phường Biên Hòa")."""
        prefix = self.type + " "
        return self.name[len(prefix):] if self.name.lower().startswith(prefix) else self.name

    @property
    def type_en(self) -> str:
        """English label of the type (Commune, Ward, Special Zone)."""
        return COMMUNE_TYPES.get(self.type, self.type)


def fold(text: str) -> str:
    """Lower case without diacritics or punctuation: "Đồng Nai" -> "dong nai"."""
    text = text.replace("Đ", "D").replace("đ", "d")
    plain = "".join(c for c in unicodedata.normalize("NFD", text)
                    if unicodedata.category(c) != "Mn")
    return " ".join("".join(c if c.isalnum() else " " for c in plain.lower()).split())


def _short(folded: str) -> str:
    for prefix in _PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix):]
    return folded


@cache
def provinces() -> tuple[Province, ...]:
    """The 34 provinces, by official code."""
    return tuple(sorted((Province(int(p.code), p.name, p.codename) for p in _Province.iter_all()),
                        key=lambda p: p.code))


@cache
def _communes() -> dict[int, Commune]:
    return {int(w.code): Commune(int(w.code), w.name, w.division_type.value, w.codename,
                                 int(w.province_code)) for w in _Ward.iter_all()}


def _keys(province: Province) -> set[str]:
    folded = fold(province.name)
    return {folded, _short(folded), fold(province.slug), str(province.code),
            f"{province.code:02d}"}


def province(name_or_code: str | int) -> Province:
    """The province named ("Đồng Nai", "Dong Nai", "dong_nai", "TP Hồ Chí Minh") or coded (75).

    Raises UnknownDivisionError naming close matches when there is none.
    """
    wanted = fold(str(name_or_code))
    wanted = _short(wanted.removeprefix("tp "))
    for p in provinces():
        if wanted in _keys(p):
            return p
    names = {_short(fold(p.name)): p.name for p in provinces()}
    close = difflib.get_close_matches(wanted, list(names), n=3, cutoff=0.6)
    hint = (f"; did you mean {', '.join(names[c] for c in close)}?" if close
            else f"; the 34: {', '.join(p.name for p in provinces())}")
    raise UnknownDivisionError(f"unknown province {str(name_or_code)!r}: not one of Vietnam's 34 "
                               f"provinces (since 1 July 2025){hint}")


def communes(province_: Province) -> list[Commune]:
    """Commune-level units of a province, by official code."""
    return sorted((c for c in _communes().values() if c.province_code == province_.code),
                  key=lambda c: c.code)


def commune(code: str | int) -> Commune | None:
    """The commune-level unit with this official code (None: no such code)."""
    try:
        return _communes().get(int(str(code).strip()))
    except ValueError:
        return None
