"""Alert store, lifecycle, tamper-evident audit trail and the Alertmanager bridge."""

from dcops.alerts.actions import LifecycleError
from dcops.alerts.bridge import IngestResult, WebhookPayloadError, ingest_webhook
from dcops.alerts.chain import AuditRecord, VerifyResult
from dcops.alerts.changes import ChangeWindow, ChangeWindows
from dcops.alerts.config import AlertsConfig, SlaTarget, load_config
from dcops.alerts.db import default_url
from dcops.alerts.models import Alert, AlertFilter, Incident, Note, Silence, Status
from dcops.alerts.silencer import AlertmanagerSilencer, Silencer
from dcops.alerts.sla import SlaRow, sla_report
from dcops.alerts.store import AlertStore
from dcops.alerts.users import ROLES, User, Users

__all__ = [
    "ROLES",
    "Alert",
    "AlertFilter",
    "AlertStore",
    "AlertmanagerSilencer",
    "AlertsConfig",
    "AuditRecord",
    "ChangeWindow",
    "ChangeWindows",
    "Incident",
    "IngestResult",
    "LifecycleError",
    "Note",
    "Silence",
    "Silencer",
    "SlaRow",
    "SlaTarget",
    "Status",
    "User",
    "Users",
    "VerifyResult",
    "WebhookPayloadError",
    "default_url",
    "ingest_webhook",
    "load_config",
    "sla_report",
]
