"""ASGI middleware of the console: security headers, request body limits, server-side sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dcops.triage.store_contract import ConsoleBackend

WEBHOOK_PATH = "/api/v1/alertmanager/webhook"
MAX_WEBHOOK_BODY = 1024 * 1024   # Alertmanager sends at most a group of alerts
MAX_FORM_BODY = 64 * 1024        # every console form, the login included


class SecurityHeaders:
    """Headers every console response carries (no framing, no caching of alert data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers on the response start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [
                    (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"), (b"cache-control", b"no-store"),
                    (b"content-security-policy",
                     b"default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'"),
                ]
            await send(message)

        await self.app(scope, receive, wrapped)


class BodyTooLargeError(Exception):
    """The request body went past the limit while it was being read."""


class BodyLimit:
    """413 for a body larger than its path's limit: by Content-Length before anything is read,
    or while reading a body sent without one (chunked)."""

    def __init__(self, app: ASGIApp, default: int = MAX_FORM_BODY,
                 per_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.per_path = dict(per_path or {WEBHOOK_PATH: MAX_WEBHOOK_BODY})

    def _too_large(self, scope: Scope, limit: int) -> Response:
        text = f"request body larger than {limit} bytes / nội dung yêu cầu quá lớn"
        if str(scope.get("path", "")).startswith("/api/"):
            return JSONResponse({"error": text}, status_code=413)
        return PlainTextResponse(text, status_code=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what is actually received."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._too_large(scope, limit)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLargeError:
            if started:
                raise
            await self._too_large(scope, limit)(scope, receive, send)


class ServerSession:
    """Check the session against the server on every request: logged out, password reset,
    disabled, removed or expired sessions are cleared at once; a changed role applies to this
    request (the signed cookie is only a claim)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Correct scope["session"] before any handler reads it."""
        session = scope.get("session") if scope["type"] == "http" else None
        data: Any = session.get("user") if isinstance(session, dict) else None
        if isinstance(session, dict) and isinstance(data, dict):
            backend: ConsoleBackend = scope["app"].state.backend
            role = await run_in_threadpool(backend.session_role, str(data.get("username", "")),
                                           str(data.get("sid", "")))
            if role is None:
                session.clear()
            elif role != data.get("role"):
                session["user"] = {**data, "role": role}
        await self.app(scope, receive, send)
