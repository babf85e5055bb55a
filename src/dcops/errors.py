"""The one exception hierarchy of dcops: every error a user sees derives from DcopsError."""

from __future__ import annotations


class DcopsError(Exception):
    """Base of every error dcops raises on purpose."""


class ConfigError(DcopsError):
    """A configuration or input file is wrong; the message names the file, line and key."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (key: {key})" if key else ""
        super().__init__(f"{prefix}{message}{suffix}")


class InventoryError(ConfigError):
    """The site model cannot be loaded or is invalid."""


class LabError(DcopsError):
    """The local lab could not be brought up, inspected or torn down."""


class CollectorError(DcopsError):
    """A collector could not start or lost its source."""


class DetectionError(DcopsError):
    """A detection rule cannot be loaded or run."""


class AlertStoreError(DcopsError):
    """The alert store refused an operation."""


class ComplianceError(DcopsError):
    """An assessment could not be carried out."""


class AccessDeniedError(DcopsError):
    """No acceptable identity, or the identity's role may not do this (CLI and console alike)."""


class HostKeyError(DcopsError):
    """An SSH host key is unknown or changed: the host is not trusted, nothing is collected."""


class ExampleSecretError(InventoryError):
    """An example inventory (or its committed example secrets) would touch real machines."""


class DcopsWarning(UserWarning):
    """A warning dcops gives on purpose; the CLI prints its message alone, on stderr."""
