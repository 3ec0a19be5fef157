"""Exports of a channel's pin set to each platform's own pinning configuration (docs/export.md).

Pure functions of the pin set, its pins' chain roles and the export's settings: no server, no
network, only the core install. ``export(format, channel, settings)`` returns the text and the
warnings to show beside it, or raises ``ExportRefused`` when the platform would enforce pins
where pinwarden does not (an app shipped with it could refuse its own server)::

    channel = channel_from_pinset(verified_pinset, roles={(pattern, pin): "leaf", ...})
    exported = export("android-nsc", channel, ExportSettings(now=datetime.now(timezone.utc)))
"""

from __future__ import annotations

from collections.abc import Callable

from pinwarden._public_names import name_exceptions_after
from pinwarden.export._android import export_android_nsc, export_trustkit_android
from pinwarden.export._apple import IOS_IDENTITIES, export_ios_plist, export_trustkit_ios
from pinwarden.export._json import export_json
from pinwarden.export._model import (
    DEFAULT_LIFETIME,
    ROLES,
    UNSPECIFIED_ROLE,
    ExportChannel,
    Exported,
    ExportPin,
    ExportRefused,
    ExportRule,
    ExportSettings,
    chain_role,
    channel_from_pinset,
)
from pinwarden.export._okhttp import export_okhttp
from pinwarden.export._react_native import export_react_native

__all__ = [
    "DEFAULT_LIFETIME",
    "FORMATS",
    "IOS_IDENTITIES",
    "ROLES",
    "UNSPECIFIED_ROLE",
    "ExportChannel",
    "ExportPin",
    "ExportRefused",
    "ExportRule",
    "ExportSettings",
    "Exported",
    "chain_role",
    "channel_from_pinset",
    "export",
]

Exporter = Callable[[ExportChannel, ExportSettings], Exported]

# Format name -> exporter, in the order `pinwarden export --help` lists them.
FORMATS: dict[str, Exporter] = {
    "android-nsc": export_android_nsc,
    "ios-plist": export_ios_plist,
    "trustkit-ios": export_trustkit_ios,
    "trustkit-android": export_trustkit_android,
    "okhttp": export_okhttp,
    "react-native": export_react_native,
    "json": export_json,
}


def export(format_name: str, channel: ExportChannel, settings: ExportSettings) -> Exported:
    """``channel`` in the format ``format_name`` (a key of ``FORMATS``)."""
    return FORMATS[format_name](channel, settings)


name_exceptions_after(__name__, globals(), __all__)
