"""Fixtures of the export tests: the pin server's (``tests.server.server_harness``)."""

from tests.server.server_harness import (  # noqa: F401 - fixtures are found by name
    database_url,
    live_server,
    live_server_factory,
    postgres_database,
    postgres_url,
    template_key_dir,
    tls_host,
    tls_host_factory,
    trust_ca,
)
