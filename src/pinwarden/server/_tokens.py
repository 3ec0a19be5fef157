"""API tokens: ``pwt_<id>_<secret>``; the database keeps the id and a SHA-256 of the secret.

The secret is 256 random bits, so a plain SHA-256 is enough (no password hashing needed) and the
comparison is constant-time (``hmac.compare_digest``). The token is shown once, when created.
A token may carry an expiry; from then on it is refused like a revoked one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pinwarden.server._audit import record
from pinwarden.server._errors import AuthError, NotFoundError, ScopeError, ValidationError
from pinwarden.server._models import Token, utc_now

__all__ = [
    "MAX_TOKEN_LIFETIME_SECONDS",
    "SCOPES",
    "Principal",
    "authenticate",
    "create_token",
    "list_tokens",
    "revoke_token",
]

# read: look; write: change channels, rules and pins; publish: sign and publish, roll back;
# admin: everything, including tokens.
SCOPES = ("read", "write", "publish", "admin")
_PREFIX = "pwt_"
_TOKEN_ID_HEX = 16  # secrets.token_hex(8)
MAX_TOKEN_LIFETIME_SECONDS = 10 * 366 * 24 * 3600  # ten years: past it, make no expiry at all


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, name and scopes."""

    token_id: str
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"token:{self.name}({self.token_id})"

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise ScopeError(f"this token lacks the {scope!r} scope")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    unknown = [scope for scope in chosen if scope not in SCOPES]
    if unknown or not chosen:
        raise ValidationError(f"scopes must be a non-empty subset of {list(SCOPES)}; got {chosen}")
    return chosen


def _expiry(expires_in_seconds: int | None) -> timedelta | None:
    if expires_in_seconds is None:
        return None
    if not 0 < expires_in_seconds <= MAX_TOKEN_LIFETIME_SECONDS:
        raise ValidationError(
            f"a token expires 1 to {MAX_TOKEN_LIFETIME_SECONDS} seconds after it is made; "
            f"got {expires_in_seconds}"
        )
    return timedelta(seconds=expires_in_seconds)


def create_token(
    session: Session,
    name: str,
    scopes: Iterable[str],
    actor: str,
    *,
    expires_in_seconds: int | None = None,
) -> tuple[Token, str]:
    """A new token row and the token string (to show once; it is not stored); without
    ``expires_in_seconds`` it lasts until revoked."""
    if not name.strip():
        raise ValidationError("a token needs a name")
    lifetime = _expiry(expires_in_seconds)
    token_id, secret = secrets.token_hex(_TOKEN_ID_HEX // 2), secrets.token_urlsafe(32)
    now = utc_now()
    row = Token(
        token_id=token_id,
        name=name,
        secret_sha256=_digest(secret),
        scopes=_check_scopes(scopes),
        created_at=now,
        created_by=actor,
        expires_at=now + lifetime if lifetime else None,
    )
    session.add(row)
    session.flush()  # fills the id the caller shows
    detail = {
        "name": name,
        "scopes": row.scopes,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }
    record(session, actor, "token.create", f"token:{token_id}", detail)
    return row, f"{_PREFIX}{token_id}_{secret}"


def _is_token_id(text: str) -> bool:
    """Sixteen lowercase hex digits: anything else is no token's id, and is not queried."""
    return len(text) == _TOKEN_ID_HEX and all(c in "0123456789abcdef" for c in text)


def authenticate(session: Session, presented: str | None) -> Principal:
    """The principal of a presented bearer token, or ``AuthError``."""
    if not presented:
        raise AuthError("a bearer token is required", "missing")
    body = presented[len(_PREFIX) :] if presented.startswith(_PREFIX) else ""
    token_id, _, secret = body.partition("_")
    known_form = bool(secret) and _is_token_id(token_id)
    row = session.scalar(select(Token).where(Token.token_id == token_id)) if known_form else None
    # Compare against a dummy digest when the id is unknown, so both paths do the same work.
    expected = row.secret_sha256 if row is not None else _digest("")
    if not hmac.compare_digest(expected, _digest(secret)) or row is None:
        raise AuthError("invalid token")
    if row.revoked_at is not None:
        raise AuthError("this token was revoked", "revoked")
    if row.expires_at is not None and row.expires_at <= utc_now():
        raise AuthError("this token expired; ask an admin for a new one", "expired")
    return Principal(row.token_id, row.name, frozenset(row.scopes))


def list_tokens(session: Session) -> list[Token]:
    return list(session.scalars(select(Token).order_by(Token.id)))


def revoke_token(session: Session, token_id: str, actor: str, reason: str | None) -> Token:
    row = session.scalar(select(Token).where(Token.token_id == token_id))
    if row is None:
        raise NotFoundError(f"no token {token_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utc_now()
        record(session, actor, "token.revoke", f"token:{token_id}", {"name": row.name}, reason)
    return row
