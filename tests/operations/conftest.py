"""Fixtures of the operations tests: an in-process server on an injected clock, TLS hosts that
rotate their certificates mid-test, and a webhook receiver (tests/operations/operations_harness.py),
over the server harness's databases and keys (tests/server/server_harness.py)."""

from tests.operations.operations_harness import (  # noqa: F401 - fixtures are found by name
    clock,
    operations_server,
    rotating_hosts,
    webhook_receiver,
)
from tests.server.server_harness import (  # noqa: F401 - fixtures are found by name
    database_url,
    postgres_database,
    postgres_url,
    template_key_dir,
    trust_ca,
)
