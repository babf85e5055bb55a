"""Run the Pulumi program offline under mocks and return what it would create, as a Plan."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from dcops.errors import DcopsError
from dcops.model.site import SiteModel

from .layout import IacInputError, check_model, stack_site
from .stackconfig import StackConfig
from .tags import UNTAGGABLE_TYPES, short_type, tags_of

_PROGRAM_MODULE = "dcops_pulumi_components"
_LOCK = threading.Lock()
MOCK_PSK = "mock-psk-not-a-secret"
_INHERITED = ("system", "zone", "level", "site", "dc")


class ProgramNotFoundError(DcopsError):
    """The pulumi/ project directory could not be located."""


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program would create."""

    type: str
    name: str
    id: str
    properties: Mapping[str, Any]
    tags: Mapping[str, str]
    stack: str

    @property
    def props(self) -> Mapping[str, Any]:
        """Alias used by policies (same name as CrossGuard's `props`)."""
        return self.properties

    @property
    def kind(self) -> str:
        """Short type, e.g. "networking.SecGroup"."""
        return short_type(self.type)

    @property
    def system(self) -> str:
        """The `system` tag ("" if missing)."""
        return self.tags.get("system", "")

    @property
    def zone(self) -> str:
        """The `zone` tag ("" if missing)."""
        return self.tags.get("zone", "")


@dataclass(frozen=True)
class Plan:
    """Resources of one stack (primary or backup DC), in creation order."""

    stack: str
    site: str
    resources: tuple[PlannedResource, ...]

    def of_type(self, kind: str) -> list[PlannedResource]:
        """Resources of one short type ("compute.Instance") or full token."""
        return [r for r in self.resources if kind in (r.kind, r.type)]

    def named(self, name: str) -> PlannedResource:
        """The resource with this logical name (KeyError if absent)."""
        for res in self.resources:
            if res.name == name:
                return res
        raise KeyError(name)

    def grouped(self) -> dict[str, dict[str, list[PlannedResource]]]:
        """Resources by system tag then zone tag."""
        out: dict[str, dict[str, list[PlannedResource]]] = {}
        for res in self.resources:
            out.setdefault(res.system or "-", {}).setdefault(res.zone or "-", []).append(res)
        return out

    def without(self, *names: str) -> Plan:
        """A copy without the named resources (for mutation tests and what-ifs)."""
        return replace(self, resources=tuple(r for r in self.resources if r.name not in names))

    def with_props(self, name: str, **props: Any) -> Plan:
        """A copy where one resource's properties are changed (None removes a property)."""
        out = []
        for res in self.resources:
            if res.name != name:
                out.append(res)
                continue
            merged = {k: v for k, v in {**res.properties, **props}.items() if v is not None}
            tags = res.tags if res.type in UNTAGGABLE_TYPES else tags_of(res.type, merged)
            out.append(replace(res, properties=merged, tags=tags))
        return replace(self, resources=tuple(out))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"stack": self.stack, "site": self.site, "resources": [
            {"type": r.type, "name": r.name, "id": r.id, "tags": dict(r.tags),
             "properties": dict(r.properties)} for r in self.resources]}


def find_program_dir(start: Path | None = None) -> Path:
    """The pulumi/ project: the nearest pulumi/Pulumi.yaml upwards of `start` (default the working
    directory), else of this installed module (the CLI's `--program-dir`/$DCOPS_PULUMI_DIR is passed
    to plan() as program_dir instead)."""
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        for parent in (base, *base.parents):
            if (parent / "pulumi" / "Pulumi.yaml").is_file():
                return parent / "pulumi"
    raise ProgramNotFoundError("cannot find pulumi/Pulumi.yaml; run from the dcops checkout or "
                               "give --program-dir (or $DCOPS_PULUMI_DIR)")


def load_components(program_dir: Path | None = None) -> ModuleType:
    """Import pulumi/components as a private package (no top-level names taken)."""
    if _PROGRAM_MODULE in sys.modules:
        return sys.modules[_PROGRAM_MODULE]
    root = (program_dir or find_program_dir()) / "components"
    spec = importlib.util.spec_from_file_location(
        _PROGRAM_MODULE, root / "__init__.py", submodule_search_locations=[str(root)])
    if spec is None or spec.loader is None:
        raise ProgramNotFoundError(f"cannot import {root}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PROGRAM_MODULE] = module
    try:
        with warnings.catch_warnings():  # pulumi_openstack announces its deprecated aliases
            warnings.simplefilter("ignore", DeprecationWarning)
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_PROGRAM_MODULE]
        raise
    return module


def plan(model: SiteModel, stack: str = "primary", *, config: StackConfig | None = None,
         program_dir: Path | None = None) -> Plan:
    """Run the program for `stack` under Pulumi mocks; no CLI, plugin, cloud or network."""
    check_model(model)
    site = stack_site(model, stack)
    cfg = config or StackConfig(stack=stack, model=model, external_network_id="ext-net-id",
                                vpn_psk=MOCK_PSK)
    components = load_components(program_dir)
    with _LOCK:
        return _run(components, cfg, site.name)


def _run(components: ModuleType, cfg: StackConfig, site: str) -> Plan:
    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    class Recorder(_Recorder, pulumi.runtime.Mocks):
        """The recorder as the SDK's Mocks type."""

    recorder = Recorder()
    exports: dict[str, Any] = {}

    def program() -> None:
        exports["objects"] = components.build(cfg)

    with _event_loop():
        pulumi.runtime.set_mocks(recorder, project="dcops", stack=cfg.stack, preview=True)
        try:
            _sync_await(run_pulumi_func(program))
        except IacInputError:
            raise
        except Exception as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, IacInputError):
                raise cause from None
            raise
    return Plan(cfg.stack, site, _resolve(recorder.seen, cfg.stack))


@contextlib.contextmanager
def _event_loop() -> Iterator[None]:
    """A current event loop for the Pulumi SDK (it calls asyncio.get_event_loop()), whatever the
    thread: after any asyncio.run() the main thread has none, and the plan failed with "There
    is no current event loop" (an audit run after a test that used asyncio)."""
    try:
        previous: asyncio.AbstractEventLoop | None = (
            asyncio.get_event_loop_policy().get_event_loop())
    except RuntimeError:
        previous = None
    if previous is not None and previous.is_running():
        yield  # called from async code: the SDK uses the running loop
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(previous)
        loop.close()


class _Recorder:
    """Pulumi Mocks that record every custom resource and echo its inputs as outputs."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, dict[str, Any]]] = []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        rid = f"{short_type(args.typ)}/{args.name}"
        if args.custom and not args.typ.startswith("pulumi:providers:"):
            self.seen.append((args.typ, args.name, rid, dict(args.inputs)))
        return rid, dict(args.inputs)

    def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Data sources answer with stand-ins (the cloud is never asked)."""
        name = str(args.args.get("name") or "")
        answers = {
            "openstack:identity/getAuthScope:getAuthScope": {
                "userId": "mock-operator", "name": name, "projectId": "mock-admin-project"},
            "openstack:identity/getRole:getRole": {"id": f"mock-role-{name}", "name": name},
            "openstack:networking/getNetwork:getNetwork": {"id": "ext-net-id", "name": name},
        }
        return answers.get(args.token, {}), []


def _resolve(seen: Iterable[tuple[str, str, str, dict[str, Any]]],
             stack: str) -> tuple[PlannedResource, ...]:
    """Build PlannedResources; untaggable types inherit the tags of what they reference."""
    items = list(seen)
    by_id = {rid: tags_of(typ, props) for typ, _, rid, props in items}
    inherit: dict[str, dict[str, str]] = {}
    for _, _, rid, props in items:
        for hint in props.get("schedulerHints") or []:
            if isinstance(hint, Mapping) and hint.get("group"):
                inherit[str(hint["group"])] = {
                    k: v for k, v in by_id[rid].items() if k in _INHERITED}
    out = []
    for typ, name, rid, props in items:
        tags = by_id[rid]
        if typ in UNTAGGABLE_TYPES or not tags:
            ref = (props.get("portId") or props.get("subnetId") or props.get("instanceId")
                   or props.get("securityGroupId") or props.get("projectId"))
            tags = {**{k: v for k, v in by_id.get(str(ref), {}).items() if k in _INHERITED},
                    **inherit.get(rid, {}), **tags}
        out.append(PlannedResource(typ, name, rid, props, tags, stack))
    return tuple(sorted(out, key=lambda r: r.name))

