"""The image cache lives outside the repository and is pruned by recipe name."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.cli.common import configure_lab
from dcops.errors import LabError
from dcops.lab.image import image_dir, is_built, prune
from dcops.lab.paths import cache_root, set_roots, state_root
from dcops.lab.recipe import Recipe


@pytest.fixture(autouse=True)
def _dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path / "state"))
    configure_lab()


def test_paths_follow_the_environment_through_the_cli(tmp_path: Path) -> None:
    assert cache_root() == tmp_path / "cache" / "dcops" / "lab"
    assert state_root() == tmp_path / "state" / "lab"
    assert image_dir() == cache_root() / Recipe().image_name
    assert not is_built()


def test_prune_keeps_only_named_images() -> None:
    for name in ("base-aaa", "base-bbb", "base-ccc.tmp-123"):
        (cache_root() / name / "rootfs").mkdir(parents=True)
        (cache_root() / "repo" / name).mkdir(parents=True)
    removed = prune({"base-aaa"})
    assert sorted(p.name for p in removed) == ["base-bbb", "base-bbb", "base-ccc.tmp-123",
                                               "base-ccc.tmp-123"]
    assert sorted(p.name for p in cache_root().glob("base-*") if p.is_dir()) == ["base-aaa"]
    assert [p.name for p in (cache_root() / "repo").iterdir()] == ["base-aaa"]


def test_the_lab_reads_no_environment_and_has_no_default_of_its_own() -> None:
    set_roots()
    with pytest.raises(LabError, match="configure_lab"):
        state_root()
    with pytest.raises(LabError, match="configure_lab"):
        cache_root()
