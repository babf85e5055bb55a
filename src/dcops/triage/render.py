"""Page rendering with the logged-in user and the CSRF token in every template's context."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from dcops.triage.security import csrf_token, current_user


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """Render a page with the user, CSRF token and request in its context."""
    env: Environment = request.app.state.jinja
    html = env.get_template(template).render(request=request, user=current_user(request),
                                             csrf=csrf_token(request), **ctx)
    return HTMLResponse(html, status_code=status_code)


def details(value: Any) -> Markup:
    """A trail or history detail as a readable key/value list: Vietnamese as text (never
    \\u escapes), nested values as compact JSON, everything escaped."""
    if not value:
        return Markup('<span class="muted">-</span>')
    if not isinstance(value, Mapping):
        return Markup("<code>{}</code>").format(_text(value))
    rows = Markup("").join(
        Markup("<dt>{}</dt><dd>{}</dd>").format(str(k), _text(v)) for k, v in value.items())
    return Markup('<dl class="kv">{}</dl>').format(rows)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def zone(name: str) -> tzinfo:
    """The time zone `name` (IANA); Asia/Ho_Chi_Minh is UTC+07:00 (no DST since 1975) even on
    a machine without tzdata. Raises ValueError for an unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        if name == DEFAULT_TIMEZONE:
            return timezone(timedelta(hours=7), "ICT")
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as "
                         f"{DEFAULT_TIMEZONE}") from exc


def local_time(value: Any, tz: tzinfo) -> str:
    """An ISO 8601 time (UTC when it names no offset) as 'YYYY-MM-DD HH:MM:SS' in `tz`;
    anything else unchanged."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def zone_label(name: str, tz: tzinfo) -> str:
    """'Asia/Ho_Chi_Minh (UTC+07:00)': what every time on the pages is in."""
    offset = datetime.now(tz).strftime("%z")
    return f"{name} (UTC{offset[:3]}:{offset[3:]})"


def install_filters(env: Environment, timezone_name: str = DEFAULT_TIMEZONE) -> None:
    """The console's filters (`details`, `localtime`), the time zone label every page shows,
    and `tojson` without \\u escapes of Vietnamese."""
    tz = zone(timezone_name)
    env.filters["details"] = details
    env.filters["localtime"] = lambda value: local_time(value, tz)
    env.globals["timezone_label"] = zone_label(timezone_name, tz)
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
