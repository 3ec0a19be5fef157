"""The web dashboard under ``/ui/`` (docs/dashboard.md): server-rendered pages over the
server's own services, a session per admin-token login, every change audited as in the API."""

from __future__ import annotations

from pinwarden.server.ui._dashboard import build_dashboard
from pinwarden.server.ui._login_token import LOGIN_TOKEN_SECONDS, login_token
from pinwarden.server.ui._models import UISession

__all__ = ["LOGIN_TOKEN_SECONDS", "UISession", "build_dashboard", "login_token"]
