"""House style of the roles: defaults prefixed and documented, main.yml switched on enabled."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "playbooks" / "roles"
NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks" / "main.yml").is_file())


def _yaml(path: Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


@pytest.mark.parametrize("role", NAMES)
def test_defaults_are_prefixed_and_documented(role: str) -> None:
    defaults = _yaml(ROLES / role / "defaults" / "main.yml")
    specs = _yaml(ROLES / role / "meta" / "argument_specs.yml")
    options = specs["argument_specs"]["main"]["options"]  # type: ignore[index]
    assert f"{role}_enabled" in defaults
    assert [k for k in defaults if not k.startswith(f"{role}_")] == []
    assert sorted(defaults) == sorted(options)
    for name, spec in options.items():
        assert spec["description"], f"{role}: {name} has no description"


@pytest.mark.parametrize("role", NAMES)
def test_main_switches_on_enabled_and_imports_tagged_concerns(role: str) -> None:
    main = yaml.safe_load((ROLES / role / "tasks" / "main.yml").read_text(encoding="utf-8"))
    assert len(main) == 1
    assert main[0]["when"] == f"{role}_enabled | bool"
    for item in main[0]["block"]:
        assert "ansible.builtin.import_tasks" in item
        assert item["tags"], f"{role}: {item['name']} is not tagged"
        assert (ROLES / role / "tasks" / item["ansible.builtin.import_tasks"]).is_file()
