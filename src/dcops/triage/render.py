"""Page rendering with the logged-in user and the CSRF token in every template's context."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse

from dcops.triage.security import csrf_token, current_user


def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """Render a page with the user, CSRF token and request in its context."""
    env: Environment = request.app.state.jinja
    html = env.get_template(template).render(request=request, user=current_user(request),
                                             csrf=csrf_token(request), **ctx)
    return HTMLResponse(html, status_code=status_code)
