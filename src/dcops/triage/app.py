"""The web console and the Alertmanager webhook: one Starlette application over the alert store."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from dcops.errors import DcopsError
from dcops.triage import forms, pages
from dcops.triage.ports import ConsoleBackend, EventLookup
from dcops.triage.render import render
from dcops.triage.security import (
    ForbiddenError,
    LoginRequiredError,
    NotFoundError,
    check_csrf,
    csrf_token,
)

TEMPLATES = Path(__file__).parent / "templates"
SESSION_HOURS = 12


class SecurityHeaders:
    """Headers every console response carries (no framing, no caching of alert data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers on the response start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [
                    (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"), (b"cache-control", b"no-store"),
                    (b"content-security-policy",
                     b"default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'"),
                ]
            await send(message)

        await self.app(scope, receive, wrapped)  # type: ignore[arg-type]


class FreshUser:
    """Look the session's user up on every request: disabled or removed users, and sessions made
    before a password reset, are logged out at once; a changed role applies to the next request
    (the cookie is only a claim)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Correct scope["session"] before any handler reads it."""
        session = scope.get("session") if scope["type"] == "http" else None
        data = session.get("user") if isinstance(session, dict) else None
        if isinstance(session, dict) and isinstance(data, dict):
            backend: ConsoleBackend = scope["app"].state.backend
            check = await run_in_threadpool(backend.session_check,
                                            str(data.get("username", "")))
            if check is None or not hmac.compare_digest(check[1], str(data.get("stamp", ""))):
                session.clear()
            elif check[0] != data.get("role"):
                session["user"] = {**data, "role": check[0]}
        await self.app(scope, receive, send)


async def login_page(request: Request) -> Response:
    """GET /login."""
    return render(request, "login.html", next=request.query_params.get("next", "/alerts"),
                  error="")


async def login(request: Request) -> Response:
    """POST /login: argon2 check, new session with a fresh CSRF token."""
    form = await request.form()
    check_csrf(request, form)
    backend: ConsoleBackend = request.app.state.backend
    client = request.client.host if request.client else ""
    user = await run_in_threadpool(backend.authenticate, str(form.get("username", "")),
                                   str(form.get("password", "")), client)
    if user is None:
        return render(request, "login.html", status_code=401, next=form.get("next", "/alerts"),
                      error="invalid user or password / sai tên hoặc mật khẩu")
    request.session.clear()
    request.session["user"] = {"username": user[0], "role": user[1], "stamp": user[2]}
    csrf_token(request)
    target = str(form.get("next") or "/alerts")
    if not target.startswith("/") or target.startswith("//"):
        target = "/alerts"
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    """POST /logout."""
    form = await request.form()
    check_csrf(request, form)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def webhook(request: Request) -> Response:
    """POST /api/v1/alertmanager/webhook: Alertmanager v4 payload into the queue."""
    token: str = request.app.state.webhook_token
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return JSONResponse({"error": f"invalid JSON: {exc}"}, status_code=400)
    backend: ConsoleBackend = request.app.state.backend
    try:
        result = await run_in_threadpool(backend.ingest_webhook, payload)
    except DcopsError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(result)


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


async def on_dcops_error(request: Request, exc: Exception) -> Response:
    """A refused action (e.g. an illegal transition) is a 409 with the reason."""
    return render(request, "error.html", status_code=409, title="Refused / Bị từ chối",
                  message=str(exc))


def create_app(backend: ConsoleBackend, session_secret: str, *, secure_cookies: bool = False,
               webhook_token: str = "", events: EventLookup | None = None) -> Starlette:
    """Build the console over the store backend; `secure_cookies` when served over TLS.

    With `events`, an alert's page shows its triggering events' time, host and message.
    """
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    routes = [
        Route("/", lambda r: RedirectResponse("/alerts", status_code=303)),
        Route("/healthz", healthz),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/v1/alertmanager/webhook", webhook, methods=["POST"]),
        *pages.routes(),
        *forms.routes(),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=session_secret, session_cookie="dcops_session",
                   max_age=SESSION_HOURS * 3600, same_site="strict", https_only=secure_cookies),
        Middleware(FreshUser),
    ]
    handlers = {LoginRequiredError: on_login_required, ForbiddenError: on_forbidden,
                NotFoundError: on_not_found, DcopsError: on_dcops_error}
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers=handlers)
    app.state.backend = backend
    app.state.jinja = env
    app.state.webhook_token = webhook_token
    app.state.events = events
    return app
