"""Alertmanager webhook (payload v4) into the queue: firing creates or updates, resolved closes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from dcops.alerts import bulk, chain, schema
from dcops.alerts.models import OPEN_STATUSES, Status, storable
from dcops.alerts.store import AlertStore
from dcops.alerts.timeutil import iso, now, parse
from dcops.errors import AlertStoreError

ACTOR = bulk.ACTOR
HOST_LABELS = bulk.HOST_LABELS


class WebhookPayloadError(AlertStoreError):
    """The webhook body is not an Alertmanager v4 payload; the message names the field."""


@dataclass(slots=True)
class IngestResult:
    """What one webhook call changed."""

    created: int = 0
    updated: int = 0
    resolved: int = 0
    unchanged: int = 0


def _text_map(value: Any) -> dict[str, str]:
    return {storable(str(k)): storable(str(v)) for k, v in (value or {}).items()}


def _validate(payload: Any) -> list[dict[str, Any]]:
    """The body's alerts, each checked (the error names the first bad field) and its text made
    storable (`storable`: a NUL label sent by a hostile or broken client is kept as U+FFFD, so it
    cannot fail the body's transaction on PostgreSQL and hold its good alerts back)."""
    if not isinstance(payload, dict):
        raise WebhookPayloadError("expected a JSON object (Alertmanager webhook payload)")
    if str(payload.get("version")) != "4":
        got = payload.get("version")
        raise WebhookPayloadError(f"field 'version': expected \"4\", got {got!r}")
    items = payload.get("alerts")
    if not isinstance(items, list):
        raise WebhookPayloadError("field 'alerts': expected a list")
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("labels"), dict):
            raise WebhookPayloadError(f"field 'alerts[{n}].labels': expected a mapping")
        if item.get("status") not in ("firing", "resolved"):
            raise WebhookPayloadError(f"field 'alerts[{n}].status': expected firing or resolved")
        if not item.get("fingerprint"):
            raise WebhookPayloadError(f"field 'alerts[{n}].fingerprint': missing")
        if not item.get("startsAt"):
            raise WebhookPayloadError(f"field 'alerts[{n}].startsAt': missing")
        try:
            parse(str(item["startsAt"]))
        except ValueError as exc:
            raise WebhookPayloadError(f"field 'alerts[{n}].startsAt': expected an RFC 3339 time, "
                                      f"got {item['startsAt']!r}") from exc
        if item.get("annotations") is not None and not isinstance(item["annotations"], dict):
            raise WebhookPayloadError(f"field 'alerts[{n}].annotations': expected a mapping")
    return [{**item, "labels": _text_map(item["labels"]),
             "annotations": _text_map(item.get("annotations")),
             "fingerprint": storable(str(item["fingerprint"])),
             "endsAt": storable(str(item.get("endsAt", "")))} for item in items]


def ingest_webhook(store: AlertStore, payload: Any) -> IngestResult:
    """Take one webhook body in one transaction (a failure stores none of it, and Alertmanager
    retries the whole body); repeated notifications of the same firing alert change nothing."""
    items = _validate(payload)
    result = IngestResult()
    with chain.writing(store.engine) as conn:
        resolved = bulk.ingest_items(store, conn, items, result, _ingest_one)
    for alert_id in resolved:  # Alertmanager calls, after the commit
        store.expire_silences(alert_id, ACTOR)
    return result


def ingest_webhook_per_alert(store: AlertStore, payload: Any) -> IngestResult:
    """The per-alert path (a few statements per alert): the reference the bulk path
    (`dcops.alerts.bulk`) is tested against, item for item."""
    items = _validate(payload)
    result = IngestResult()
    resolved: list[int] = []
    with chain.writing(store.engine) as conn:
        for item in items:
            alert_id = _ingest_one(store, conn, item, result)
            if alert_id is not None:
                resolved.append(alert_id)
    for alert_id in resolved:
        store.expire_silences(alert_id, ACTOR)
    return result


def _ingest_one(store: AlertStore, conn: Connection, item: dict[str, Any],
                result: IngestResult) -> int | None:
    """One webhook alert inside the body's transaction; the id of an alert it resolved."""
    it = bulk.parse_item(store, item)
    open_row = conn.execute(
        select(schema.alerts.c.id).where(
            schema.alerts.c.fingerprint == it.fingerprint,
            schema.alerts.c.source == "alertmanager",
            schema.alerts.c.status.in_([s.value for s in OPEN_STATUSES]))
        .order_by(schema.alerts.c.id.desc()).limit(1)).first()
    if it.status == "resolved":
        if open_row is None:
            result.unchanged += 1
            return None
        store.transition_in(conn, int(open_row.id), Status.RESOLVED, ACTOR,
                            f"resolved in Alertmanager at {it.ends}")
        result.resolved += 1
        return int(open_row.id)
    seen = conn.execute(select(schema.detections.c.alert_id)
                        .where(schema.detections.c.detection_id == it.did)).first()
    if seen is not None:
        result.unchanged += 1
        return None
    alert_id = store.upsert(
        conn, source="alertmanager", actor=ACTOR, rule_id=it.rule_id, rule_title=it.title,
        severity=it.severity, key=it.fingerprint, seen=it.seen, site=it.site, system=it.system,
        host=it.host, source_ip="", tags=[], labels=it.label_map, description=it.description,
        fingerprint=it.fingerprint, event_ids=[])
    conn.execute(schema.detections.insert().values(
        detection_id=it.did, alert_id=alert_id, received_at=iso(now())))
    if open_row is not None and int(open_row.id) == alert_id:
        result.updated += 1
    else:
        result.created += 1
    return None
