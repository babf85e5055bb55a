"""Committed example and lab secrets, found by fingerprint wherever an inventory uses them.

Every secret published in this repository (Vault keys, Vault values, the Pulumi example passphrase
and what it sealed) is listed by SHA-256 in `example_secrets.yml`. An inventory is matched by what
it holds, never by file names: the Vault keys it is opened with, every Vault value and every
secret-named variable, and the Pulumi stack files that name it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from dcops.errors import DcopsWarning, ExampleSecretError
from dcops.inventory.ansible_io import RawInventory, clear_text, key_position, position
from dcops.model import SiteModel, SourceRef

DATA = Path(__file__).with_name("example_secrets.yml")
# Variable names whose plain (unvaulted) string values are fingerprinted too.
SECRET_WORDS = ("password", "passphrase", "passwd", "secret", "token", "psk", "community", "key")
NOT_SECRET_SUFFIXES = ("_file", "_path", "_dir", "_protocol", "_type", "_bits", "_size")


class ExampleInventoryWarning(DcopsWarning):
    """The inventory declares itself an example: nothing real may be touched with it."""


@dataclass(frozen=True, slots=True)
class KnownSecret:
    """One committed secret: its fingerprint, scope (lab or example), kind and what it is."""

    fingerprint: str
    scope: str
    kind: str
    what: str


@dataclass(frozen=True, slots=True)
class Found:
    """A committed secret found in an inventory: which one, under which key, where."""

    secret: KnownSecret
    key: str
    source: SourceRef | None

    def label(self) -> str:
        """`key (file:line) = what [sha256:0123abcd…]` for messages."""
        where = f" ({self.source})" if self.source else ""
        return f"{self.key}{where}: {self.secret.what} [{short(self.secret.fingerprint)}]"


def fingerprint(value: str | bytes) -> str:
    """sha256:<hex> of the value with surrounding whitespace stripped (Vault key files too)."""
    data = value if isinstance(value, bytes) else value.encode("utf-8")
    return "sha256:" + hashlib.sha256(data.strip()).hexdigest()


def short(fp: str) -> str:
    """The first 12 hex digits of a fingerprint, enough to tell the committed secrets apart."""
    return fp[:19] + "…"


@cache
def known_secrets() -> dict[str, KnownSecret]:
    """The committed secrets by fingerprint (example_secrets.yml)."""
    doc = yaml.safe_load(DATA.read_text(encoding="utf-8")) or {}
    out = {}
    for entry in doc.get("secrets") or []:
        secret = KnownSecret(str(entry["fingerprint"]), str(entry["scope"]), str(entry["kind"]),
                             str(entry["what"]))
        out[secret.fingerprint] = secret
    return out


def lookup(value: str | bytes) -> KnownSecret | None:
    """The committed secret with this value, if it is one."""
    return known_secrets().get(fingerprint(value))


@cache
def _secret_name(name: str) -> bool:
    name = name.lower()
    return any(w in name for w in SECRET_WORDS) and not name.endswith(NOT_SECRET_SUFFIXES)


class _Scanner:
    """Walks variables once per distinct object; positions are looked up only for a match."""

    def __init__(self, raw: RawInventory) -> None:
        self.raw = raw
        self.base = raw.path if raw.path.is_dir() else raw.path.parent
        self.found: dict[tuple[str, str], Found] = {}
        self.clear: dict[bytes, str | None] = {}  # Vault ciphertext -> clear text (decrypt once)
        self.seen: set[int] = set()  # containers already walked (group vars shared by hosts)

    def add(self, secret: KnownSecret | None, key: str, source: SourceRef | None) -> None:
        if secret is not None:
            self.found.setdefault((key, secret.fingerprint), Found(secret, key, source))

    def value(self, value: object, key: str, name: str, parent: object) -> None:
        cipher = getattr(value, "_ciphertext", None)
        if isinstance(cipher, bytes):
            if cipher not in self.clear:
                self.clear[cipher] = clear_text(value)[1]
            text = self.clear[cipher]
        elif isinstance(value, str) and _secret_name(name):
            text = value
        else:
            return
        secret = lookup(text) if text else None
        if secret is not None:
            self.add(secret, key, position(value, self.base)
                     or key_position(parent, name, self.base))

    def walk(self, value: object, key: str, name: str = "", parent: object = None) -> None:
        if isinstance(value, dict | list | tuple):
            if id(value) in self.seen:
                return
            self.seen.add(id(value))
        if isinstance(value, dict):
            for k, v in value.items():
                self.walk(v, f"{key}.{k}" if key else str(k), str(k), value)
        elif isinstance(value, list | tuple):
            for i, v in enumerate(value):
                self.walk(v, f"{key}[{i}]", name, parent)
        else:
            self.value(value, key, name, parent)


def scan(raw: RawInventory) -> list[Found]:
    """Every committed secret the inventory holds or is opened with."""
    scanner = _Scanner(raw)
    for file in raw.vault_files:
        try:
            secret = lookup(file.read_bytes())
        except OSError:
            continue
        scanner.add(secret, "vault key", SourceRef(_relative(file, scanner.base)))
    for file in _small_files(raw.path, raw.vault_files):  # a renamed key file is still the key
        try:
            secret = lookup(file.read_bytes())
        except OSError:
            continue
        if secret is not None:
            scanner.add(secret, "vault key", SourceRef(_relative(file, scanner.base)))
    scanner.walk(raw.globals, "")
    for hostvars in raw.hostvars.values():
        scanner.walk(hostvars, "")
    for stack in stacks_of(raw.path):
        for found in stack_findings(stack, base=scanner.base):
            scanner.add(found.secret, found.key, found.source)
    return list(scanner.found.values())


MAX_KEY_FILE = 4096  # Vault key files are one line; bigger files are not keys


def _small_files(inventory: Path, known: list[Path]) -> list[Path]:
    """Files of the inventory directory small enough to be a key, minus those already read."""
    base = inventory if inventory.is_dir() else inventory.parent
    seen = {k.resolve() for k in known}
    out = []
    for file in sorted(base.rglob("*")):
        try:
            if file.is_file() and not file.is_symlink() and file.stat().st_size <= MAX_KEY_FILE \
                    and file.resolve() not in seen:
                out.append(file)
        except OSError:
            continue
    return out


def stacks_of(inventory: Path) -> list[Path]:
    """Pulumi stack files of the project holding `inventory` whose dcops:inventory names it."""
    inventory = inventory.resolve()
    program = inventory.parent.parent / "pulumi"
    project = program / "Pulumi.yaml"
    if not project.is_file():
        return []
    try:
        declared = (yaml.safe_load(project.read_text(encoding="utf-8")) or {}).get("config") or {}
        default = str((declared.get("dcops:inventory") or {}).get("default", ""))
    except (OSError, yaml.YAMLError, AttributeError):
        default = ""
    out = []
    for stack in sorted(program.glob("Pulumi.*.yaml")):
        try:
            config = (yaml.safe_load(stack.read_text(encoding="utf-8")) or {}).get("config") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        named = str(config.get("dcops:inventory") or default)
        if named and (program / named).resolve() == inventory:
            out.append(stack)
    return out


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return str(path)
    return os.path.relpath(path.resolve(), base.resolve())


def stack_findings(stack: Path, passphrase: str | None = None, base: Path | None = None
                   ) -> list[Found]:
    """Committed secrets of a Pulumi stack file: its sealed key (encryptionsalt), its secure
    values, and the passphrase it is opened with, when given."""
    text = stack.read_text(encoding="utf-8")
    doc = yaml.safe_load(text) or {}
    lines = text.splitlines()

    def where(needle: str) -> SourceRef:
        line = next((i + 1 for i, t in enumerate(lines) if needle in t), None)
        return SourceRef(_relative(stack, base), line)

    out = []
    salt = doc.get("encryptionsalt")
    if isinstance(salt, str) and (secret := lookup(salt)) is not None:
        out.append(Found(secret, "encryptionsalt", where(salt)))
    for key, value in (doc.get("config") or {}).items():
        secure = value.get("secure") if isinstance(value, dict) else None
        if isinstance(secure, str) and (secret := lookup(secure)) is not None:
            out.append(Found(secret, str(key), where(secure)))
    if passphrase and (secret := lookup(passphrase)) is not None:
        out.append(Found(secret, "PULUMI_CONFIG_PASSPHRASE", None))
    return out


def allowed(raw: RawInventory, found: Found) -> bool:
    """Example inventories may hold anything committed; the lab may hold the lab's secrets."""
    lab = str(raw.globals.get("dcops_environment", "production")) == "lab"
    return raw.example or (found.secret.scope == "lab" and lab)


def banner(inventory: Path | str, found: list[Found], where: SourceRef | None = None) -> str:
    """The loud warning every command prints for an example inventory."""
    declared = f" ({where})" if where else ""
    lines = [
        "",
        "!" * 78,
        f"!! EXAMPLE INVENTORY / INVENTORY MẪU: {inventory} declares dcops_example: true"
        f"{declared}.",
        "!! Its secrets are the ones published in the dcops repository: they protect nothing.",
        "!! dcops refuses to touch real machines with it (playbooks outside the lab, `pulumi up`,",
        "!! SSH evidence). Make a real inventory: README.md, \"Real secrets\".",
    ]
    if found:
        lines.append(f"!! Example secrets found / khóa mẫu ({len(found)}):")
        lines += [f"!!   {f.label()}" for f in sorted(found, key=lambda f: f.key)]
    lines.append("!" * 78)
    return "\n".join(lines)


def refuse_example(model: SiteModel, action: str, inventory: Path | str | None = None) -> None:
    """Raise ExampleSecretError when the inventory declares itself an example."""
    if model.settings.example:
        raise ExampleSecretError(
            f"refusing to {action}: the inventory declares itself an example "
            "(dcops_example: true); its secrets are the committed examples / từ chối: inventory "
            "mẫu. Make a real inventory with your own secrets (README.md, \"Real secrets\")",
            file=str(inventory) if inventory else None, key="dcops_example")


def example_problem_message(found: Found) -> str:
    """Why a committed secret is refused here."""
    if found.secret.scope == "lab":
        why = "lab secrets are accepted only where dcops_environment is lab"
    else:
        why = "example secrets are accepted only where the inventory declares dcops_example: true"
    return (f"{found.secret.what} [{short(found.secret.fingerprint)}]: published in the dcops "
            f"repository; {why}. Replace it (README.md, \"Real secrets\")")


def passphrase_from(environ: Mapping[str, str]) -> str | None:
    """The Pulumi passphrase a process would use ($PULUMI_CONFIG_PASSPHRASE or its _FILE)."""
    if environ.get("PULUMI_CONFIG_PASSPHRASE"):
        return environ["PULUMI_CONFIG_PASSPHRASE"]
    path = environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError:
            return None
    return None


def example_source(raw: RawInventory) -> SourceRef | None:
    """Where `dcops_example` is set."""
    base = raw.path if raw.path.is_dir() else raw.path.parent
    return key_position(raw.globals, "dcops_example", base)


__all__ = ["ExampleInventoryWarning", "Found", "KnownSecret", "allowed", "banner",
           "fingerprint", "known_secrets", "lookup", "refuse_example", "scan", "stack_findings",
           "stacks_of"]
