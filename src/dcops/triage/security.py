"""Roles, permissions, sessions and CSRF for the console."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request

from dcops.model.rbac import PERMISSIONS, ROLES, allowed

__all__ = ["PERMISSIONS", "ForbiddenError", "LoginRequiredError", "NotFoundError", "SessionUser",
           "check_csrf", "csrf_token", "current_user", "require"]


class LoginRequiredError(Exception):
    """No valid session: the handler turns this into a redirect to /login."""


class ForbiddenError(Exception):
    """The session's role may not do this (or the CSRF token is missing or wrong): HTTP 403."""


class NotFoundError(Exception):
    """The alert or incident does not exist: HTTP 404."""


class BadRequestError(Exception):
    """A query parameter the page cannot use (400), named with what was expected."""


@dataclass(frozen=True, slots=True)
class SessionUser:
    """Who is logged in, as kept in the signed session cookie."""

    username: str
    role: str

    def can(self, permission: str) -> bool:
        """Whether the role grants the permission (the one table of dcops.model.rbac)."""
        return allowed(self.role, permission)


def current_user(request: Request) -> SessionUser | None:
    """The logged-in user from the session (checked against the server on this request)."""
    data = request.session.get("user")
    if not isinstance(data, dict) or data.get("role") not in ROLES:
        return None
    return SessionUser(str(data["username"]), str(data["role"]))


def require(request: Request, permission: str = "read") -> SessionUser:
    """The logged-in user holding the permission; else LoginRequiredError or ForbiddenError."""
    user = current_user(request)
    if user is None:
        raise LoginRequiredError
    if not user.can(permission):
        raise ForbiddenError(f"role {user.role} may not {permission}")
    return user


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, form: FormData) -> None:
    """Every form POST carries the session's token; otherwise ForbiddenError."""
    sent = form.get("csrf_token")
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str) or not expected \
            or not hmac.compare_digest(sent, expected):
        raise ForbiddenError("missing or invalid CSRF token")
