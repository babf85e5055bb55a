"""Triage: the web console (server-rendered pages) and the Alertmanager webhook endpoint."""

from dcops.triage.app import create_app

__all__ = ["create_app"]
