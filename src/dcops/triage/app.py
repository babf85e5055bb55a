"""The web console and the Alertmanager webhook: one Starlette application over the alert store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from dcops.errors import DcopsError
from dcops.triage import forms, noc, pages
from dcops.triage.auth import login, login_page, logout, webhook
from dcops.triage.middleware import (
    MAX_FORM_BODY,
    MAX_WEBHOOK_BODY,
    WEBHOOK_PATH,
    BodyLimit,
    SecurityHeaders,
    ServerSession,
)
from dcops.triage.noc import NocSource
from dcops.triage.render import DEFAULT_TIMEZONE, install_filters, render
from dcops.triage.security import (
    BadRequestError,
    ForbiddenError,
    LoginRequiredError,
    NotFoundError,
)
from dcops.triage.store_contract import ConsoleBackend, EventLookup

TEMPLATES = Path(__file__).parent / "templates"
SESSION_HOURS = 12


async def healthz(request: Request) -> Response:
    """GET /healthz (no authentication, no data)."""
    del request
    return JSONResponse({"status": "ok"})


async def on_login_required(request: Request, exc: Exception) -> Response:
    """Redirect to the login page, remembering where the user was going."""
    del exc
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "login required"}, status_code=401)
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


async def on_forbidden(request: Request, exc: Exception) -> Response:
    """403 page."""
    return render(request, "error.html", status_code=403, title="403 Forbidden / Không có quyền",
                  message=str(exc))


async def on_not_found(request: Request, exc: Exception) -> Response:
    """404 page."""
    return render(request, "error.html", status_code=404, title="404 Not found / Không tìm thấy",
                  message=str(exc))


async def on_bad_request(request: Request, exc: Exception) -> Response:
    """400 page: which parameter, and what was expected."""
    return render(request, "error.html", status_code=400,
                  title="400 Bad request / Yêu cầu không hợp lệ", message=str(exc))


async def on_dcops_error(request: Request, exc: Exception) -> Response:
    """A refused action (e.g. an illegal transition) is a 409 with the reason."""
    return render(request, "error.html", status_code=409, title="Refused / Bị từ chối",
                  message=str(exc))


def create_app(backend: ConsoleBackend, session_secret: str, *, secure_cookies: bool = False,
               webhook_token: str = "", events: EventLookup | None = None,
               trusted_proxies: Sequence[str] = (), max_form_body: int = MAX_FORM_BODY,
               max_webhook_body: int = MAX_WEBHOOK_BODY,
               timezone: str = DEFAULT_TIMEZONE, noc_source: NocSource | None = None
               ) -> Starlette:
    """Build the console over the store backend.

    `secure_cookies` when clients reach it over TLS (its own, or a proxy's). `trusted_proxies`:
    the addresses whose X-Forwarded-For/-Proto are believed (the client address then comes from
    them: login throttling and audit records use it); without a `webhook_token` the webhook only
    answers loopback clients, and never behind a proxy. With `events`, an alert's page shows its
    triggering events' time, host and message. Pages show times in `timezone` (IANA), labelled.
    With `noc_source` (Prometheus, the site model) the NOC pages show device and WAN state.
    """
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    install_filters(env, timezone)
    routes = [
        Route("/", lambda r: RedirectResponse("/alerts", status_code=303)),
        Route("/healthz", healthz),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        *pages.routes(),
        *forms.routes(),
        *noc.routes(),
    ]
    middleware = [
        *([Middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted_proxies))]
          if trusted_proxies else []),
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, default=max_form_body, per_path={WEBHOOK_PATH: max_webhook_body}),
        Middleware(SessionMiddleware, secret_key=session_secret, session_cookie="dcops_session",
                   max_age=SESSION_HOURS * 3600, same_site="strict", https_only=secure_cookies),
        Middleware(ServerSession),
    ]
    handlers = {LoginRequiredError: on_login_required, ForbiddenError: on_forbidden,
                NotFoundError: on_not_found, BadRequestError: on_bad_request,
                DcopsError: on_dcops_error}
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers=handlers)
    app.state.backend = backend
    app.state.jinja = env
    app.state.webhook_token = webhook_token.encode()
    app.state.webhook_open = not webhook_token and not trusted_proxies
    app.state.events = events
    app.state.noc = noc_source
    return app
