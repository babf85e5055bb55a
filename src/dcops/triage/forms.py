"""Form POSTs: lifecycle, assign, notes, bulk actions, silences, incidents, users. CSRF on all."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dcops.errors import DcopsError
from dcops.triage.security import BadRequestError, SessionUser, check_csrf, require
from dcops.triage.store_contract import ConsoleBackend


async def _form(request: Request, permission: str) -> tuple[SessionUser, FormData, ConsoleBackend]:
    """Authorise first (403 for the wrong role), then check the CSRF token (403 without it)."""
    user = require(request, permission)
    form = await request.form()
    check_csrf(request, form)
    for name, value in form.multi_items():
        if isinstance(value, str) and "\x00" in value:
            raise BadRequestError(f"form field {name!r}: a NUL character is not allowed in text / "
                                  "không được chứa ký tự NUL")
    backend: ConsoleBackend = request.app.state.backend
    return user, form, backend


STATUSES = ("acknowledged", "investigating", "resolved", "false_positive")


def _back(request: Request, default: str) -> RedirectResponse:
    ref = request.headers.get("referer", "")
    host = f"{request.url.scheme}://{request.url.netloc}/"
    target = ref if ref.startswith(host) else default
    return RedirectResponse(target, status_code=303)


async def transition(request: Request) -> Response:
    """POST /alerts/{id}/transition: to=acknowledged|investigating|resolved|false_positive."""
    user, form, store = await _form(request, "triage")
    alert_id = int(request.path_params["alert_id"])
    to = str(form.get("to", ""))
    if to not in STATUSES:
        raise DcopsError(f"unknown status {to!r}")
    await run_in_threadpool(store.transition, alert_id, to, user.username,
                            str(form.get("note", "")).strip())
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


async def assign(request: Request) -> Response:
    """POST /alerts/{id}/assign."""
    user, form, store = await _form(request, "triage")
    alert_id = int(request.path_params["alert_id"])
    await run_in_threadpool(store.assign, alert_id, str(form.get("assignee", "")).strip(),
                            user.username)
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


async def note(request: Request) -> Response:
    """POST /alerts/{id}/note."""
    user, form, store = await _form(request, "triage")
    alert_id = int(request.path_params["alert_id"])
    await run_in_threadpool(store.add_note, alert_id, user.username, str(form.get("text", "")))
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


async def silence(request: Request) -> Response:
    """POST /alerts/{id}/silence: push a silence to Alertmanager (analyst, engineer)."""
    user, form, store = await _form(request, "silence")
    alert_id = int(request.path_params["alert_id"])
    await run_in_threadpool(store.silence, alert_id, user.username,
                            str(form.get("comment", "")).strip())
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


async def bulk(request: Request) -> Response:
    """POST /alerts/bulk: acknowledge or assign the checked alerts."""
    user, form, store = await _form(request, "triage")
    ids = [int(str(x)) for x in form.getlist("ids") if str(x).isdigit()]
    action = str(form.get("action", ""))
    if not ids:
        raise DcopsError("no alert selected / chưa chọn cảnh báo")

    def run() -> None:
        for i in ids:
            if action == "ack":
                current = store.get(i)
                if current is not None and current.status == "new":
                    store.transition(i, "acknowledged", user.username)
            elif action == "assign":
                store.assign(i, str(form.get("assignee", "")).strip(), user.username)
            else:
                raise DcopsError(f"unknown bulk action {action!r}")

    await run_in_threadpool(run)
    return _back(request, "/alerts")


async def merge(request: Request) -> Response:
    """POST /incidents/merge: target and sources (comma separated ids)."""
    user, form, store = await _form(request, "triage")
    try:
        target = int(str(form.get("target", "")))
        sources = [int(x) for x in str(form.get("sources", "")).replace(" ", "").split(",") if x]
    except ValueError as exc:
        raise DcopsError("incident ids must be numbers / mã sự cố phải là số") from exc
    await run_in_threadpool(store.merge_incidents, target, sources, user.username)
    return RedirectResponse(f"/incidents/{target}", status_code=303)


async def split(request: Request) -> Response:
    """POST /incidents/split: the checked alerts into a new incident."""
    user, form, store = await _form(request, "triage")
    ids = [int(str(x)) for x in form.getlist("ids") if str(x).isdigit()]
    new = await run_in_threadpool(store.split_incident, ids, user.username)
    return RedirectResponse(f"/incidents/{new}", status_code=303)


async def add_user(request: Request) -> Response:
    """POST /users (admin): create or reset a user."""
    user, form, store = await _form(request, "users")
    await run_in_threadpool(store.add_user, str(form.get("username", "")).strip(),
                            str(form.get("password", "")), str(form.get("role", "")),
                            user.username)
    return RedirectResponse("/users", status_code=303)


async def disable_user(request: Request) -> Response:
    """POST /users/{name}/disable (admin)."""
    user, form, store = await _form(request, "users")
    enable = form.get("enable") == "1"
    await run_in_threadpool(store.set_user_disabled, request.path_params["name"],
                            not enable, user.username)
    return RedirectResponse("/users", status_code=303)


async def set_role(request: Request) -> Response:
    """POST /users/{name}/role (admin): change the role, keeping the password."""
    user, form, store = await _form(request, "users")
    await run_in_threadpool(store.set_user_role, request.path_params["name"],
                            str(form.get("role", "")), user.username)
    return RedirectResponse("/users", status_code=303)


async def unlock(request: Request) -> Response:
    """POST /users/unlock (admin): end a login lock; `key` is user:NAME or addr:IP."""
    user, form, store = await _form(request, "users")
    key = str(form.get("key", ""))
    if not key.startswith(("user:", "addr:")):
        raise DcopsError(f"unlock: expected user:NAME or addr:ADDRESS, got {key!r}")
    if not await run_in_threadpool(store.unlock, key, user.username):
        raise DcopsError(f"{key} is not locked / không bị khóa")
    return RedirectResponse("/users", status_code=303)


def routes() -> list[Route]:
    """The POST routes of the console."""
    return [
        Route("/alerts/bulk", bulk, methods=["POST"]),
        Route("/alerts/{alert_id:int}/transition", transition, methods=["POST"]),
        Route("/alerts/{alert_id:int}/assign", assign, methods=["POST"]),
        Route("/alerts/{alert_id:int}/note", note, methods=["POST"]),
        Route("/alerts/{alert_id:int}/silence", silence, methods=["POST"]),
        Route("/incidents/merge", merge, methods=["POST"]),
        Route("/incidents/split", split, methods=["POST"]),
        Route("/users", add_user, methods=["POST"]),
        Route("/users/unlock", unlock, methods=["POST"]),
        Route("/users/{name}/disable", disable_user, methods=["POST"]),
        Route("/users/{name}/role", set_role, methods=["POST"]),
    ]
