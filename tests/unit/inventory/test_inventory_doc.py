"""docs/inventory.md cannot go stale: every field the reader accepts, every problem code the checks
raise, every device class, zone, site kind and SNMP profile is on the page."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dcops.inventory.planchecks import DHCP_VAR
from dcops.inventory.sitechecks import DEVICE_CLASSES, PROFILES
from dcops.model import SiteKind, Zone

REPO = Path(__file__).resolve().parents[3]
INVENTORY = REPO / "src" / "dcops" / "inventory"
DOC = REPO / "docs" / "inventory.md"
PROBLEM = re.compile(r'(?:Problem|self\.problem|problem)\(\s*"([a-z][a-z0-9-]+)"')
#: A key the reader looks up: spec.get("x"), hv["x"], secret("x"), num("x", ...), _flag(.., "x").
FIELD = re.compile(r'(?:\.get\(|\[|secret\(|num\(|_flag\(hv, name, )"([a-z_][a-z0-9_]*)"')


def _documented() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", DOC.read_text(encoding="utf-8")))


def problem_codes() -> set[str]:
    return {code for path in INVENTORY.glob("*.py")
            for code in PROBLEM.findall(path.read_text(encoding="utf-8"))}


def fields() -> set[str]:
    build = (INVENTORY / "build.py").read_text(encoding="utf-8")
    found = set(FIELD.findall(build)) | set(re.findall(r'"(dcops_[a-z0-9_]+)"', build))
    io = (INVENTORY / "ansible_io.py").read_text(encoding="utf-8")
    return found | set(re.findall(r'"(dcops_[a-z0-9_]+)"', io)) | {DHCP_VAR}


def test_every_field_the_reader_accepts_is_documented() -> None:
    known = fields()
    assert {"dcops_zone", "admin_code", "to_system", "auth_key", "dcops_example"} <= known
    assert len(known) > 50  # the patterns still find the reader's keys
    assert sorted(known - _documented()) == []


def test_every_problem_code_is_documented_and_none_is_stale() -> None:
    codes = problem_codes()
    assert {"zone-not-in-system", "duplicate-twin", "unknown-snmp-profile"} <= codes
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("## Every problem code"):]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.MULTILINE))
    assert sorted(codes - listed) == [], "codes the checks raise but the page does not list"
    assert sorted(listed - codes) == [], "codes the page lists but no check raises"


def test_every_class_zone_kind_and_profile_is_documented() -> None:
    profiles = yaml.safe_load((REPO / PROFILES).read_text(encoding="utf-8"))["profiles"]
    expected = (set(DEVICE_CLASSES) | {z.value for z in Zone} | {k.value for k in SiteKind}
                | set(profiles))
    assert sorted(expected - _documented()) == []


def test_the_page_is_linked_from_the_readme_and_the_iac_page() -> None:
    assert "](docs/inventory.md)" in (REPO / "README.md").read_text(encoding="utf-8")
    assert "](inventory.md)" in (REPO / "docs" / "iac.md").read_text(encoding="utf-8")
