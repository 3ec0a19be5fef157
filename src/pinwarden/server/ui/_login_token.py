"""A dashboard login token for ``make run`` (``pinwarden quickstart``): the first admin token is
shown once, at ``init``, so each quickstart start makes a short-lived one to print."""

from __future__ import annotations

from pinwarden.server._database import make_engine, make_session_factory
from pinwarden.server._tokens import create_token

__all__ = ["LOGIN_TOKEN_SECONDS", "login_token"]

LOGIN_TOKEN_SECONDS = 12 * 3600


def login_token(database_url: str) -> str:
    """A new admin token that expires in ``LOGIN_TOKEN_SECONDS`` (audited as ``token.create``)."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            _, token = create_token(
                session,
                "dashboard login (quickstart)",
                ["admin"],
                "quickstart",
                expires_in_seconds=LOGIN_TOKEN_SECONDS,
            )
    finally:
        engine.dispose()
    return token
