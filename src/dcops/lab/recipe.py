"""The recipe of the lab's base root: what goes in it, and the hash that names its cache entry."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

# Bump when the build or customisation steps change in a way that changes the image.
SCRIPT_VERSION = 1

SUITE = "bookworm"

BASE_PACKAGES: tuple[str, ...] = (
    "openssh-server", "python3", "python3-apt", "sudo", "iproute2", "procps",
    "ca-certificates", "systemd", "systemd-sysv", "dbus", "netcat-openbsd", "less",
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """How the base root is made: debootstrap suite, variant, packages and script version."""

    suite: str = SUITE
    variant: str = "minbase"
    packages: tuple[str, ...] = field(default=BASE_PACKAGES)
    script_version: int = SCRIPT_VERSION

    def digest(self) -> str:
        """A short stable hash; any change to the recipe gives a new one (and a rebuild)."""
        doc = {"suite": self.suite, "variant": self.variant,
               "packages": sorted(set(self.packages)), "script_version": self.script_version}
        blob = json.dumps(doc, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def image_name(self) -> str:
        """The cache directory name of the image: base-<hash>."""
        return f"base-{self.digest()}"
