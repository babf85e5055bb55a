"""The catalogue is data: counts, references per regime, parameters, profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.compliance import CatalogueError, Profile, load_catalogue, load_profile
from dcops.compliance.catalogue import resolve_param


def test_catalogue_has_enough_controls_and_automatic_evidence() -> None:
    controls = load_catalogue()
    assert len(controls) >= 40
    assert sum(c.evidence == "auto" for c in controls.values()) >= 30
    manual = [c for c in controls.values() if c.evidence == "manual"]
    assert manual and all(c.document and "max_age_days" in c.params for c in manual)


def test_every_control_maps_both_regimes_and_iso() -> None:
    for control in load_catalogue().values():
        assert {"tt12", "nd331", "iso27001"} <= set(control.refs), control.id
        for cites in control.refs.values():
            assert cites and all(c["status"] in {"verified", "secondary", "inference"}
                                 and c["source"] and c["document"] for c in cites), control.id
        assert control.name_vi and control.name_en and control.remediation


def test_parameters_differ_by_regime_and_level() -> None:
    srv01 = load_catalogue()["SRV-01"]
    assert resolve_param(srv01, "password_min_length", "tt12", 3, Profile())[0] == 8
    assert resolve_param(srv01, "password_min_length", "nd331", 3, Profile())[0] == 14
    srv12 = load_catalogue()["SRV-12"]
    assert resolve_param(srv12, "log_retention_days", "tt12", 4, Profile())[0] == 180


def test_profile_overrides_and_waivers(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    path = tmp_path / "p.yml"
    path.write_text("regime: nd331\nparams:\n  SRV-12:\n    log_retention_days: 120\n"
                    "waivers:\n  - {control: SRV-14, owner: CISO, reason: EDR instead,"
                    " expires: 2027-01-31}\n", encoding="utf-8")
    profile = load_profile(path, catalogue)
    value, source = resolve_param(catalogue["SRV-12"], "log_retention_days", "nd331", 3, profile)
    assert (value, source) == (120, "profile p")
    assert profile.waivers[0].owner == "CISO"


def test_profile_with_unknown_parameter_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("params:\n  SRV-12:\n    retention: 1\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"bad.yml.*SRV-12 has no parameter retention"):
        load_profile(path, load_catalogue())


def test_malformed_catalogue_is_reported(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text("- {id: XX-1, group: SRV}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"x\.yml"):
        load_catalogue(tmp_path)


def test_shipped_profiles_load() -> None:
    from dcops.compliance.catalogue import CATALOGUE_DIR

    catalogue = load_catalogue()
    profiles = sorted((CATALOGUE_DIR.parent / "profiles").glob("*.yml"))
    assert len(profiles) >= 2
    for path in profiles:
        profile = load_profile(path, catalogue)
        assert profile.regime in ("tt12", "nd331")
