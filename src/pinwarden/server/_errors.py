"""Errors of the server's services, each mapped to one HTTP status by the admin API."""

from __future__ import annotations

from typing import Any

from pinwarden.errors import PinwardenError

__all__ = [
    "AuthError",
    "ConflictError",
    "NotFoundError",
    "ScopeError",
    "ServerError",
    "UnsafePublishError",
    "ValidationError",
]


class ServerError(PinwardenError):
    """Base of the errors the server's services raise; ``status`` is the HTTP status."""

    status = 500


class ValidationError(ServerError):
    status = 422


class NotFoundError(ServerError):
    status = 404


class ConflictError(ServerError):
    status = 409


class AuthError(ServerError):
    """No token, or one that is unknown, wrong or revoked."""

    status = 401


class ScopeError(ServerError):
    """A valid token without the scope the request needs."""

    status = 403


class UnsafePublishError(ServerError):
    """Publishing would risk bricking clients (design brief, "Safe rotation"); force overrides."""

    status = 409

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems
