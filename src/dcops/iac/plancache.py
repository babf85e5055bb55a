"""Plans cached by what they depend on: the site model, the stack and the program's code.

An audit plans both stacks under mocks (seconds at a province's size) although the inventory
rarely changed since the last audit. The key is the SHA-256 of the dcops version, every source
file of the Pulumi program and of `dcops.iac`, the stack name and the model's canonical form, so
a changed host, rule or policy plans again; the cache only skips work, never changes a verdict.
Entries are JSON (no code is loaded from the cache), written atomically, mode 0600, and the
oldest beyond `KEEP` are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from dcops.iac.plan import Plan, PlannedResource, find_program_dir
from dcops.model import SiteModel

KEEP = 32
Planner = Callable[[SiteModel, str], Plan]


def _canonical(value: Any) -> Any:
    """A JSON-ready, order-stable form of the model (dataclasses, enums, paths, sets)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        out: Any = {str(k): _canonical(v) for k, v in value.items()}
    elif isinstance(value, list | tuple):
        out = [_canonical(v) for v in value]
    elif isinstance(value, set | frozenset):
        out = sorted((_canonical(v) for v in value), key=repr)
    elif isinstance(value, Enum):
        out = value.value
    elif isinstance(value, str | int | float | bool) or value is None:
        out = value
    else:
        out = str(value)
    return out


def plan_key(model: SiteModel, stack: str, program_dir: Path | None = None) -> str:
    """SHA-256 over the version, the program and `dcops.iac` sources, the stack and the model."""
    from dcops import __version__

    h = hashlib.sha256(f"dcops {__version__}\0stack {stack}\0".encode())
    roots = [program_dir or find_program_dir(), Path(__file__).parent]
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in {".py", ".yaml", ".yml"} \
                    and "__pycache__" not in path.parts:
                h.update(f"{path.relative_to(root)}\0".encode())
                h.update(path.read_bytes())
    h.update(json.dumps(_canonical(model), sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


def _to_json(plan: Plan) -> dict[str, Any]:
    return {"stack": plan.stack, "site": plan.site, "resources": [
        {"type": r.type, "name": r.name, "id": r.id, "properties": r.properties,
         "tags": dict(r.tags), "stack": r.stack} for r in plan.resources]}


def _from_json(data: dict[str, Any]) -> Plan:
    return Plan(str(data["stack"]), str(data["site"]), tuple(
        PlannedResource(str(r["type"]), str(r["name"]), str(r["id"]), r["properties"],
                        r["tags"], str(r["stack"])) for r in data["resources"]))


def cached_plan(model: SiteModel, stack: str, cache_dir: Path, planner: Planner,
                program_dir: Path | None = None) -> tuple[Plan, str, bool]:
    """(plan, key, from_cache): the cached plan of this model and stack, else `planner`'s,
    stored for the next run. An unreadable entry is planned again and replaced."""
    key = plan_key(model, stack, program_dir)
    path = cache_dir / f"plan-{key}.json"
    try:
        return _from_json(json.loads(path.read_text(encoding="utf-8"))), key, True
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError):
        path.unlink(missing_ok=True)
    plan = planner(model, stack)
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".plan-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_to_json(plan), fh, default=_canonical)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    entries = sorted(cache_dir.glob("plan-*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-KEEP]:
        old.unlink(missing_ok=True)
    return plan, key, False
