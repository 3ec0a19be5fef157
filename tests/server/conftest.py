"""Fixtures of the pin server's tests; they live in ``server_harness.py``, which other suites
import as ``tests.server.server_harness``."""

from tests.server.server_harness import (  # noqa: F401 - fixtures are found by name
    database_url,
    initialized,
    live_server,
    live_server_factory,
    pin_server,
    pin_server_factory,
    postgres_database,
    postgres_url,
    template_key_dir,
    tls_host,
    tls_host_factory,
    trust_ca,
)
