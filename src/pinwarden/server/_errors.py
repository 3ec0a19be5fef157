"""Errors of the server's services, each mapped to one HTTP status by the admin API."""

from __future__ import annotations

from typing import Any

from pinwarden.errors import PinwardenError

__all__ = [
    "AuthError",
    "ConfigError",
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


class ConfigError(ServerError):
    """A server setting out of its allowed range or of the wrong type, found at start (one line,
    naming the setting and what it allows)."""


class NotFoundError(ServerError):
    status = 404


class ConflictError(ServerError):
    status = 409


class AuthError(ServerError):
    """No token, or one that is unknown, wrong, revoked or expired; ``reason`` says which, as
    counted in ``/metrics`` (``missing``, ``invalid``, ``revoked``, ``expired``)."""

    status = 401

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class ScopeError(ServerError):
    """A valid token without the scope the request needs."""

    status = 403
    reason = "scope"  # as counted in ``/metrics``, beside ``AuthError.reason``


class UnsafePublishError(ServerError):
    """Publishing would risk bricking clients (docs/server.md, "Safe publishing"); ``force``
    overrides."""

    status = 409

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems
