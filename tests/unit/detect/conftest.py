"""Fixtures for detection unit tests."""

from __future__ import annotations

from detect_helpers import engine_from

__all__ = ["engine_from"]
