"""``json``: the rules as they are, with each pin's chain role, for any other tool."""

from __future__ import annotations

import json

from pinwarden.export._model import ExportChannel, Exported, ExportSettings

__all__ = ["export_json"]

FORMAT_NAME = "pinwarden.export.rules"


def export_json(channel: ExportChannel, settings: ExportSettings) -> Exported:
    document = {
        "type": FORMAT_NAME,
        "channel": channel.name,
        "version": channel.version,
        "report_uri": channel.report_uri,
        "rules": [
            {
                "pattern": str(rule.pattern),
                "mode": rule.mode,
                "pins": [{"pin": pin.pin, "role": pin.role} for pin in rule.pins],
                "expires": None if rule.expires is None else f"{rule.expires:%Y-%m-%dT%H:%M:%SZ}",
            }
            for rule in channel.rules
        ],
    }
    return Exported(json.dumps(document, indent=2) + "\n", ())
