"""Dashboard sessions: an admin token exchanged for a short-lived cookie.

The cookie holds 256 random bits; the table keeps their SHA-256 (as ``_tokens`` keeps a token's),
so a leaked database opens no session. Each request looks the token up again: a revoked or expired
token ends its sessions at once. Every form carries the session's CSRF value (OWASP CSRF cheat
sheet, "Synchronizer token pattern"), compared in constant time, on top of ``SameSite=Strict``
(RFC 6265bis §5.4.7). The login form, before any session, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pinwarden.server._audit import record
from pinwarden.server._models import Token, utc_now
from pinwarden.server._tokens import Principal, authenticate
from pinwarden.server.ui._models import UISession

__all__ = [
    "SESSION_LIFETIME",
    "SignedIn",
    "end_session",
    "open_session",
    "same_secret",
    "signed_in",
]

SESSION_LIFETIME = timedelta(hours=1)  # absolute: log in again after it
_MAX_SECRET_CHARS = 100


@dataclass(frozen=True)
class SignedIn:
    """The principal of a live session and the CSRF value its forms must carry."""

    principal: Principal
    csrf: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time equality of two secrets (a missing one is never equal)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def open_session(session: Session, presented: str) -> tuple[str, SignedIn]:
    """Authenticate an admin token (``AuthError`` as in the API) and open a session for it: the
    cookie's secret and who signed in. Audited as ``ui.login``; expired sessions are pruned."""
    principal = authenticate(session, presented)
    now = utc_now()
    row = session.scalar(select(Token).where(Token.token_id == principal.token_id))
    assert row is not None  # ``authenticate`` found it
    expires = now + SESSION_LIFETIME
    if row.expires_at is not None:
        expires = min(expires, row.expires_at)
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.execute(delete(UISession).where(UISession.expires_at <= now))
    session.add(
        UISession(
            secret_sha256=_digest(secret),
            token_id=principal.token_id,
            csrf=csrf,
            created_at=now,
            expires_at=expires,
        )
    )
    record(session, principal.actor, "ui.login", f"token:{principal.token_id}", {})
    return secret, SignedIn(principal, csrf)


def signed_in(session: Session, secret: str | None) -> SignedIn | None:
    """The session of a cookie, while it and its token are valid; else ``None``."""
    if not secret or len(secret) > _MAX_SECRET_CHARS or not secret.isascii():
        return None
    now = utc_now()
    row = session.scalar(select(UISession).where(UISession.secret_sha256 == _digest(secret)))
    if row is None or row.expires_at <= now:
        return None
    token = session.scalar(select(Token).where(Token.token_id == row.token_id))
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    return SignedIn(Principal(token.token_id, token.name, frozenset(token.scopes)), row.csrf)


def end_session(session: Session, secret: str, actor: str) -> None:
    """Log out: the session row goes; audited as ``ui.logout``."""
    session.execute(delete(UISession).where(UISession.secret_sha256 == _digest(secret)))
    record(session, actor, "ui.logout", actor, {})
