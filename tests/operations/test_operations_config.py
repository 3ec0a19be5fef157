"""The operations settings of ServerConfig and their command-line options: one clear line for
every wrong value."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pinwarden.server import ConfigError, ServerConfig
from pinwarden.server.alerts import WebhookEndpoint

WEBHOOK = WebhookEndpoint("hooks", "https://example.test/h", "whsec_" + "A" * 32)


def _config(**settings: object) -> ServerConfig:
    return ServerConfig(database_url="sqlite://", key_dir=Path("keys"), **settings)  # type: ignore[arg-type]


def test_the_defaults_run_the_loop_with_a_unique_replica_name() -> None:
    first, second = _config(), _config()
    assert first.operations and first.webhooks == () and first.monitor_schedule == ()
    assert first.replica_id != second.replica_id


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"operations": "yes"}, "operations must be True or False"),
        ({"freshness_interval": timedelta(0)}, "freshness_interval"),
        ({"freshness_interval": 600}, "freshness_interval"),
        ({"monitor_interval": timedelta(days=30)}, "monitor_interval"),
        ({"monitor_schedule": [("app", timedelta(hours=1))]}, "pairs"),
        ({"monitor_schedule": (("app", timedelta(seconds=1)),)}, "'app'"),
        ({"monitor_schedule": ((5, timedelta(hours=1)),)}, "pairs"),
        ({"monitor_schedule": (("a\x00b", timedelta(hours=1)),)}, "NUL"),
        ({"monitor_schedule": (("\ud800", timedelta(hours=1)),)}, "Unicode"),
        ({"webhooks": [WEBHOOK]}, "tuple of WebhookEndpoint"),
        ({"webhooks": ("https://example.test",)}, "tuple of WebhookEndpoint"),
        ({"webhooks": (WEBHOOK, WEBHOOK)}, "its own name"),
        ({"replica_id": ""}, "replica_id"),
        ({"replica_id": "x" * 201}, "replica_id"),
    ],
)
def test_a_wrong_operations_setting_is_one_line(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _config(**settings)
    assert message in str(raised.value) and "\n" not in str(raised.value)
