"""Per-rule probe settings: a connect-to address and a CA bundle, for hosts not yet in DNS or
behind a private CA. Set through the admin API; every change audited."""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pinwarden._hosts import normalize_host
from pinwarden.errors import PinwardenError
from pinwarden.server._audit import record
from pinwarden.server._channels import get_channel, get_rule
from pinwarden.server._errors import ValidationError
from pinwarden.server.monitor._models import ProbeSettings
from pinwarden.server.monitor._service import checked_channel_name

__all__ = ["MAX_CA_BUNDLE_CHARS", "probe_settings_view", "set_probe_settings"]

MAX_CA_BUNDLE_CHARS = 48 * 1024  # within the admin API's 64 KiB body cap


def _connect_to(address: str | None) -> str | None:
    """A hostname or an IP address, normalised; ``ValidationError`` otherwise."""
    if address is None or address == "":
        return None
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    try:
        return normalize_host(address)
    except (PinwardenError, UnicodeError, ValueError):
        raise ValidationError(
            f"connect_to {address[:100]!r} is not a hostname or address"
        ) from None


def _ca_bundle(pem: str | None) -> str | None:
    """PEM text that loads as trust anchors; ``ValidationError`` otherwise."""
    if pem is None or pem == "":
        return None
    if len(pem) > MAX_CA_BUNDLE_CHARS:
        raise ValidationError(f"ca_bundle_pem is over {MAX_CA_BUNDLE_CHARS} characters")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, TypeError, ValueError):
        raise ValidationError("ca_bundle_pem holds no PEM CA certificate that loads") from None
    return pem


def probe_settings_view(row: ProbeSettings) -> dict[str, Any]:
    return {
        "channel": row.channel,
        "pattern": row.pattern,
        "connect_to": row.connect_to,
        "ca_bundle_pem": row.ca_bundle_pem,
    }


def set_probe_settings(
    session: Session,
    channel_name: str,
    pattern: str,
    actor: str,
    *,
    connect_to: str | None,
    ca_bundle_pem: str | None,
) -> ProbeSettings:
    """Set (or clear, with ``None``) how the monitor reaches the rule's host."""
    rule = get_rule(get_channel(session, checked_channel_name(channel_name)), pattern)
    address, bundle = _connect_to(connect_to), _ca_bundle(ca_bundle_pem)
    row = session.scalar(
        select(ProbeSettings).where(
            ProbeSettings.channel == channel_name, ProbeSettings.pattern == rule.pattern
        )
    )
    if row is None:
        row = ProbeSettings(channel=channel_name, pattern=rule.pattern)
        session.add(row)
    row.connect_to, row.ca_bundle_pem = address, bundle
    session.flush()
    record(
        session,
        actor,
        "monitor.probe-settings",
        f"channel:{channel_name}/rule:{rule.pattern}",
        {"connect_to": address, "ca_bundle": bundle is not None},
    )
    return row
