"""Ansible's inventory-parse warnings, silenced where dcops reports the same failure itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

#: Ansible's warnings when no inventory plugin could parse a source (one per plugin, ~20 lines).
PARSE_WARNINGS = ("Failed to parse ", "Unable to parse ")


@contextlib.contextmanager
def parse_warnings_silenced(silence: bool) -> Iterator[None]:
    """While `silence`: drop Ansible's "Failed/Unable to parse" inventory warnings.

    Used when dcops has already found the YAML syntax error with its file and line (a
    malformed-yaml problem): Ansible's warnings repeat it as a page of text before the report.
    """
    if not silence:
        yield
        return
    from ansible.utils.display import Display

    display = Display()
    original = display.warning

    def warning(msg: str, formatted: bool = False) -> None:
        if not any(marker in msg for marker in PARSE_WARNINGS):
            original(msg, formatted)

    setattr(display, "warning", warning)  # noqa: B010 - the singleton's method, for this parse
    try:
        yield
    finally:
        delattr(display, "warning")
