"""Every config key pulumi/config.py reads is declared in Pulumi.yaml (type, description, default).

Also: the stack files set only declared keys with values of the declared type, docs/iac.md names
every key, the policy pack has a version, and `dcops:peerAddresses` is parsed strictly.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from iac_model import build_model

from dcops.errors import ConfigError
from dcops.iac import find_program_dir
from dcops.iac.stackconfig import parse_peer_addresses

PROGRAM = find_program_dir()
DOCS = PROGRAM.parent / "docs" / "iac.md"
#: pulumi.Config method -> the project-file type its value must have.
METHOD_TYPES = {"get": "string", "require": "string", "get_secret": "string",
                "require_secret": "string", "get_int": "integer", "require_int": "integer",
                "get_bool": "boolean", "require_bool": "boolean", "get_object": "array",
                "require_object": "array"}
PY_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}
#: What the project-file schema allows in a config declaration (pulumi project.json).
DECLARATION_FIELDS = {"type", "items", "description", "secret", "default"}


@dataclass(frozen=True)
class Read:
    """One cfg.<method>("key") call in config.py, with its `or <constant>` fallback if any."""

    key: str
    method: str
    line: int
    fallback: Any = None


def _reads(path: Path) -> list[Read]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    fallbacks: dict[int, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or) \
                and isinstance(node.values[-1], ast.Constant):
            fallbacks[id(node.values[0])] = node.values[-1].value
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "cfg"):
            assert node.func.attr in METHOD_TYPES, f"config.py:{node.lineno}: {node.func.attr}"
            arg = node.args[0]
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), node.lineno
            out.append(Read(f"dcops:{arg.value}", node.func.attr, node.lineno,
                            fallbacks.get(id(node))))
    return out


def _project() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PROGRAM / "Pulumi.yaml").read_text("utf-8"))
    return data


def test_config_py_reads_keys_at_all() -> None:
    keys = {r.key for r in _reads(PROGRAM / "config.py")}
    # the scanner sees every kind of read config.py makes (a broken scanner would pass vacuously)
    assert {"dcops:inventory", "dcops:vpnPsk", "dcops:peerAddresses"} <= keys


def test_every_key_read_is_declared_with_type_description_and_default() -> None:
    declared = _project()["config"]
    reads = _reads(PROGRAM / "config.py")
    for read in reads:
        where = f"config.py:{read.line} reads {read.key}"
        assert read.key in declared, f"{where}, which Pulumi.yaml does not declare"
        decl = declared[read.key]
        assert set(decl) <= DECLARATION_FIELDS, f"{read.key}: {set(decl) - DECLARATION_FIELDS}"
        assert decl.get("type") == METHOD_TYPES[read.method], where
        if decl["type"] == "array":
            assert decl.get("items", {}).get("type") in PY_TYPES, read.key
        assert str(decl.get("description", "")).strip(), f"{read.key} has no description"
        if read.method.startswith("require"):
            assert "default" not in decl, f"{read.key} is required: a default would hide it"
        else:
            assert "default" in decl, f"{read.key} is optional but declares no default"
            assert isinstance(decl["default"], PY_TYPES[decl["type"]]), read.key
            if read.fallback is not None and decl["default"] != "":
                assert decl["default"] == read.fallback, (
                    f"{where}: falls back to {read.fallback!r}, Pulumi.yaml says "
                    f"{decl['default']!r}")
        if "secret" in read.method:
            assert decl.get("secret") is True, f"{read.key} is read as a secret"
    assert set(declared) == {r.key for r in reads}, "Pulumi.yaml declares keys nobody reads"


@pytest.mark.parametrize("stack", ["primary", "backup"])
def test_stack_files_set_only_declared_keys_of_their_type(stack: str) -> None:
    declared = _project()["config"]
    data = yaml.safe_load((PROGRAM / f"Pulumi.{stack}.yaml").read_text("utf-8"))
    for key, value in data["config"].items():
        assert key in declared, f"Pulumi.{stack}.yaml sets undeclared {key}"
        if declared[key].get("secret"):
            assert isinstance(value, dict) and set(value) == {"secure"}, key
        else:
            assert isinstance(value, PY_TYPES[declared[key]["type"]]), key


def test_docs_name_every_key() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for key in _project()["config"]:
        assert f"`{key}`" in text, f"docs/iac.md does not mention {key}"


def test_policy_pack_has_a_semantic_version() -> None:
    pack = yaml.safe_load((PROGRAM / "policy" / "PulumiPolicy.yaml").read_text("utf-8"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(pack.get("version", ""))), pack.get("version")
    assert pack["runtime"]["name"] == "python"


def test_peer_addresses_parse_to_a_mapping() -> None:
    model = build_model()
    assert parse_peer_addresses(None, model) == {}
    assert parse_peer_addresses(["bien-hoa=203.0.113.10", " tan-phu = vpn.tanphu.example.vn"],
                                model) == {"bien-hoa": "203.0.113.10",
                                           "tan-phu": "vpn.tanphu.example.vn"}


@pytest.mark.parametrize(("value", "key", "words"), [
    ({"bien-hoa": "203.0.113.10"}, "dcops:peerAddresses", "list"),
    (["bien-hoa"], "dcops:peerAddresses[0]", "site=address"),
    (["tan-phu=10.0.0.1", "ho-chi-minh=10.0.0.2"], "dcops:peerAddresses[1]", "unknown site"),
    (["bien-hoa=not an address!"], "dcops:peerAddresses[0]", "neither"),
    (["bien-hoa=10.0.0.1", "bien-hoa=10.0.0.2"], "dcops:peerAddresses[1]", "twice"),
])
def test_bad_peer_addresses_name_the_file_and_key(value: object, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_peer_addresses(value, build_model(), "Pulumi.primary.yaml")
    assert err.value.key == key and err.value.file == "Pulumi.primary.yaml"
    assert words in str(err.value)
