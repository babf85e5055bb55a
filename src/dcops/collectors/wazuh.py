"""Wazuh: an httpx client for the manager API (JWT, agents, SCA) and alerts.json lines as Events.

TLS verification is on by default; pass the manager's CA file (`verify="/path/ca.pem"`) rather
than turning it off. `verify=False` exists for a lab only and is never the default.
"""

from __future__ import annotations

import json
import ssl
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx

from dcops.collectors.health import DEFAULT_MAX_MESSAGE_BYTES
from dcops.collectors.jsonlines import JsonLineNormaliser
from dcops.collectors.parsers.windows import from_wazuh
from dcops.errors import CollectorError
from dcops.model.event import Event, LogSource

_PAGE = 500


class WazuhError(CollectorError):
    """The Wazuh API refused a request or answered something unexpected."""


class WazuhClient:
    """Minimal, dependable Wazuh manager API client (sync httpx)."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        verify: bool | str = True,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._auth = (user, password)
        self._token: str | None = None
        tls: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._http = httpx.Client(base_url=self.url, verify=tls, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> WazuhClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authenticate(self) -> str:
        """POST /security/user/authenticate with basic auth; keeps and returns the JWT."""
        r = self._send("POST", "/security/user/authenticate", auth=self._auth)
        token = (r.get("data") or {}).get("token")
        if not isinstance(token, str) or not token:
            raise WazuhError(f"{self.url}/security/user/authenticate: no token in the answer")
        self._token = token
        return token

    def _send(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise WazuhError(f"{self.url}{path}: {exc}") from exc
        if resp.status_code >= 400:
            raise WazuhError(f"{method} {self.url}{path}: HTTP {resp.status_code} {_detail(resp)}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise WazuhError(f"{self.url}{path}: expected JSON, got {resp.text[:80]!r}") from exc
        if not isinstance(body, dict) or body.get("error", 0) not in (0, None):
            raise WazuhError(f"{self.url}{path}: API error {body!r:.200}")
        return body

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET with the JWT; re-authenticates once when the token expired."""
        if self._token is None:
            self.authenticate()
        for attempt in (1, 2):
            try:
                return self._send(
                    "GET", path, params=params, headers={"Authorization": f"Bearer {self._token}"}
                )
            except WazuhError as exc:
                if attempt == 1 and "HTTP 401" in str(exc):
                    self.authenticate()
                    continue
                raise
        raise AssertionError("unreachable")

    def items(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every affected item of a listing endpoint, page by page (offset/limit)."""
        offset = 0
        while True:
            data = self.get(path, {**(params or {}), "offset": offset, "limit": _PAGE}).get("data")
            if not isinstance(data, dict) or "affected_items" not in data:
                raise WazuhError(f"{self.url}{path}: no data.affected_items in the answer")
            page = data["affected_items"]
            yield from page
            offset += len(page)
            if not page or offset >= int(data.get("total_affected_items", 0)):
                return

    def agents(self, status: str | None = None) -> list[dict[str, Any]]:
        """GET /agents (optionally by status: active, disconnected, never_connected, pending)."""
        return list(self.items("/agents", {"status": status} if status else None))

    def sca_policies(self, agent_id: str) -> list[dict[str, Any]]:
        """GET /sca/{agent_id}: policy summaries (pass, fail, score)."""
        return list(self.items(f"/sca/{agent_id}"))

    def sca_checks(
        self, agent_id: str, policy_id: str, result: str | None = None
    ) -> list[dict[str, Any]]:
        """GET /sca/{agent_id}/checks/{policy_id}, optionally only passed/failed/not applicable."""
        return list(
            self.items(
                f"/sca/{agent_id}/checks/{policy_id}", {"result": result} if result else None
            )
        )


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return f"{body.get('title', '')}: {body.get('detail', '')}"
    except ValueError:
        return resp.text[:120]


_MAX_DEPTH = 16  # objects nested deeper keep their JSON text under the name they reached
_MAX_FIELDS = 1024  # flattened values per alert; the others stay in `raw` only (counted)
_MAX_NAME = 512  # an object whose dotted name grew longer is kept as JSON text too


def _flatten(doc: dict[str, Any], out: dict[str, Any], stats: Counter[str]) -> None:
    """Nested objects as dotted names (rule.level), depth first, without recursion: at most
    _MAX_FIELDS values, objects and lists nested deeper than _MAX_DEPTH kept as JSON text."""
    stack: list[tuple[str, Any, Any, int]] = [("", k, v, 1) for k, v in reversed(doc.items())]
    while stack:
        prefix, key, value, depth = stack.pop()
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and depth < _MAX_DEPTH and len(name) <= _MAX_NAME:
            stack.extend((name, k, v, depth + 1) for k, v in reversed(value.items()))
        elif len(out) >= _MAX_FIELDS:
            stats["fields_dropped"] += 1
        elif isinstance(value, dict | list) and _deeper(value, _MAX_DEPTH - depth):
            stats["deep_values"] += 1
            out[name] = _json_text(value)
        else:
            out[name] = value


def _deeper(value: Any, limit: int) -> bool:
    """True when containers nest inside `value` more than `limit` levels (iterative)."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        v, d = todo.pop()
        if d > limit:
            return True
        if isinstance(v, dict):
            todo.extend((x, d + 1) for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            todo.extend((x, d + 1) for x in v if isinstance(x, dict | list))
    return False


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):
        return "<nested too deep>"


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class WazuhAlertNormaliser(JsonLineNormaliser):
    """alerts.json lines -> Events (logsource product wazuh, service alerts; flattened fields).

    An alert about a Windows event (`data.win`) is a Sigma Windows event as well: its logsource
    is windows/<service from the channel>/<category from the EventID>, also wazuh/alerts, and
    its fields carry SigmaHQ's names (Image, CommandLine, …; see parsers/windows.py).

    Bounded whatever the line: it is cut at `max_message_chars` characters (marked
    `log.truncated`, `log.original_size`; counted in `stats["truncated"]`, and a cut line is no
    longer JSON), a line that is not a JSON object (broken, cut, nested deeper than the parser's
    recursion limit) becomes a raw event counted in `stats["malformed"]`, and flattening is
    iterative and bounded (see _flatten). Wazuh's `full_log` is carried once, as `message`.
    """

    def __init__(
        self,
        source: str = "wazuh",
        default_host: str = "",
        *,
        max_message_chars: int = DEFAULT_MAX_MESSAGE_BYTES,
        undouble_backslashes: bool = True,
    ) -> None:
        super().__init__(source, default_host, max_message_chars=max_message_chars)
        self.undouble = undouble_backslashes  # Windows values: see parsers.windows.from_wazuh

    def from_doc(
        self,
        doc: dict[str, Any],
        raw: str,
        id_parts: tuple[Any, ...],
        received: datetime,
        peer: str,
    ) -> Event:
        f: dict[str, Any] = {}
        _flatten(doc, f, self.stats)
        agent, rule, data = _obj(doc.get("agent")), _obj(doc.get("rule")), _obj(doc.get("data"))
        name = agent.get("name")
        f["host.name"] = (name if isinstance(name, str) else "") or self.default_host or peer
        f["message"] = doc.get("full_log") or rule.get("description", "")
        if f.get("full_log") is f["message"]:
            del f["full_log"]  # carried once, as `message`
        f["event.severity"] = rule.get("level")
        f["event.action"] = rule.get("description", "")
        for src, dst in (
            ("srcip", "source.ip"),
            ("srcuser", "user.name"),
            ("dstuser", "user.target.name"),
        ):
            if data.get(src):
                f[dst] = data[src]
        ts = _ts(doc.get("timestamp")) or received
        alert_id, agent_id = doc.get("id"), agent.get("id", "")
        if not isinstance(agent_id, str | int):
            agent_id = ""
        eid = (
            Event.make_id(self.source, agent_id, alert_id)
            if alert_id and isinstance(alert_id, str | int)
            else Event.make_id(self.source, raw, *id_parts)
        )
        self.stats["parsed"] += 1
        win = data.get("win")
        if isinstance(win, dict):  # a Windows eventchannel alert: also a Sigma Windows event
            self.stats["windows"] += 1
            return Event(eid, ts, self.source, _windows(win, f, self.undouble), f, raw)
        return Event(eid, ts, self.source, _ALERTS, f, raw)


_ALERTS = LogSource("wazuh", "alerts")


def sample_event(doc: dict[str, Any], ts: datetime, where: str) -> Event:
    """One alert written as a rule sample (`wazuh: {...}` in a samples file) read as alerts.json
    would be: dumped to one JSON line, its timestamp `ts` unless it has its own."""
    line = json.dumps({"timestamp": ts.isoformat(), **doc}, ensure_ascii=False)
    [event] = WazuhAlertNormaliser().line(line, id_parts=(where,), received=ts)
    if not event.parsed:
        raise CollectorError(f"{where}: not a Wazuh alert: {line[:120]}")
    return event


def _windows(win: dict[str, Any], f: dict[str, Any], undouble: bool) -> LogSource:
    """Add the Sigma Windows fields of `data.win` to `f`; the logsource is Windows first, and
    still wazuh/alerts so rules on the Wazuh alert (rule.level) see it too."""
    ls, wf = from_wazuh(win, undouble=undouble)
    host = f["host.name"]
    f.update(wf)
    f["host.name"] = host or wf.get("host.name", "")
    got = _WITH_ALERTS.get(ls)  # one object per logsource (bounded: see logsource_of)
    if got is None:
        got = _WITH_ALERTS.setdefault(
            ls, LogSource(ls.product, ls.service, ls.category, (*ls.also, _ALERTS))
        )
    return got


_WITH_ALERTS: dict[LogSource, LogSource] = {}


def _ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
