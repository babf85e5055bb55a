"""Page rendering with the logged-in user and the CSRF token in every template's context."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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


def install_filters(env: Environment) -> None:
    """The console's filters, and `tojson` without \\u escapes of Vietnamese."""
    env.filters["details"] = details
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
