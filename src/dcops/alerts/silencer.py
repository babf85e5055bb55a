"""Silences in Alertmanager via its v2 API (POST /api/v2/silences, DELETE /api/v2/silence/{id})."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import httpx

from dcops.alerts.timeutil import iso
from dcops.errors import AlertStoreError


class Silencer(Protocol):
    """Something that can create and expire silences (Alertmanager, or a test double)."""

    def create(self, matchers: list[dict[str, Any]], starts: datetime, ends: datetime,
               created_by: str, comment: str) -> str:
        """Create a silence; return its id."""
        ...

    def expire(self, silence_id: str) -> None:
        """Expire a silence now."""
        ...


class AlertmanagerSilencer:
    """Talks to one Alertmanager (``http://host:9093``)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def create(self, matchers: list[dict[str, Any]], starts: datetime, ends: datetime,
               created_by: str, comment: str) -> str:
        """POST /api/v2/silences and return the silenceID."""
        body = {"matchers": matchers, "startsAt": iso(starts), "endsAt": iso(ends),
                "createdBy": created_by, "comment": comment or "silenced from dcops triage"}
        try:
            r = httpx.post(f"{self.url}/api/v2/silences", json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise AlertStoreError(f"Alertmanager {self.url} unreachable: {exc}") from exc
        if r.status_code != 200:
            raise AlertStoreError(
                f"Alertmanager {self.url} refused the silence: HTTP {r.status_code} {r.text[:200]}")
        return str(r.json()["silenceID"])

    def expire(self, silence_id: str) -> None:
        """DELETE /api/v2/silence/{id}; an already expired or unknown silence is fine."""
        try:
            r = httpx.delete(f"{self.url}/api/v2/silence/{silence_id}", timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise AlertStoreError(f"Alertmanager {self.url} unreachable: {exc}") from exc
        if r.status_code not in (200, 404) and "already expired" not in r.text:
            raise AlertStoreError(
                f"Alertmanager {self.url} did not expire silence {silence_id}: "
                f"HTTP {r.status_code} {r.text[:200]}")
