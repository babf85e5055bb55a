"""Login (throttled), logout (ends the session on the server) and the Alertmanager webhook."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from dcops.errors import DcopsError
from dcops.triage.render import render
from dcops.triage.security import check_csrf, csrf_token, current_user
from dcops.triage.store_contract import ConsoleBackend


async def login_page(request: Request) -> Response:
    """GET /login."""
    return render(request, "login.html", next=request.query_params.get("next", "/alerts"),
                  error="")


async def login(request: Request) -> Response:
    """POST /login: throttle, argon2 check, a new server session and a fresh CSRF token."""
    form = await request.form()
    check_csrf(request, form)
    backend: ConsoleBackend = request.app.state.backend
    client = request.client.host if request.client else ""
    r = await run_in_threadpool(backend.login, str(form.get("username", "")),
                                str(form.get("password", "")), client)
    if r.retry_after > 0:
        wait = math.ceil(r.retry_after)
        page = render(request, "login.html", status_code=429, next=form.get("next", "/alerts"),
                      error=f"too many failed logins: try again in {wait} s / đăng nhập sai "
                            f"quá nhiều lần: thử lại sau {wait} giây")
        page.headers["Retry-After"] = str(wait)
        return page
    if not r.username:
        return render(request, "login.html", status_code=401, next=form.get("next", "/alerts"),
                      error="invalid user or password / sai tên hoặc mật khẩu")
    request.session.clear()
    request.session["user"] = {"username": r.username, "role": r.role, "sid": r.session}
    csrf_token(request)
    target = str(form.get("next") or "/alerts")
    if not target.startswith("/") or target.startswith("//"):
        target = "/alerts"
    return RedirectResponse(target, status_code=303)


async def logout(request: Request) -> Response:
    """POST /logout: the session ends on the server too (a copied cookie is dead)."""
    form = await request.form()
    check_csrf(request, form)
    user = current_user(request)
    data = request.session.get("user")
    if user is not None and isinstance(data, dict):
        backend: ConsoleBackend = request.app.state.backend
        await run_in_threadpool(backend.logout, user.username, str(data.get("sid", "")))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_ok(header: str, token: bytes) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time (digests: no length leak)."""
    scheme, _, sent = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        hashlib.sha256(sent.strip().encode()).digest(), hashlib.sha256(token).digest())


async def webhook(request: Request) -> Response:
    """POST /api/v1/alertmanager/webhook: Alertmanager v4 payload into the queue.

    With a token configured every request needs it; without one only loopback clients are
    served (``dcops serve`` refuses to listen beyond loopback or behind a proxy without one).
    """
    token: bytes = request.app.state.webhook_token
    if token:
        if not bearer_ok(request.headers.get("authorization", ""), token):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="dcops"'})
    elif not request.app.state.webhook_open or not _loopback(
            request.client.host if request.client else ""):
        return JSONResponse({"error": "this webhook needs a bearer token (dcops serve "
                                      "--webhook-token-file) for clients beyond loopback"},
                            status_code=401, headers={"WWW-Authenticate": 'Bearer realm="dcops"'})
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
