"""Sequences of admin calls that follow the OpenAPI links (schemathesis, stateful): create a
channel, then read, change, rule, pin, publish, read its history and signed versions, roll back;
create a token, then revoke it. Never a 5xx, never a false "database down" (issue 13).

The stateless test (``test_schemathesis.py``) sends each operation hostile input on its own; this
one reaches the states only a sequence builds (a rule with pins, a channel with versions). Bounded
like it: ``_SCENARIOS`` scenarios (``PINWARDEN_FUZZ_EXAMPLES``, at least 40) of at most
``_STEPS`` calls.

Publish and rollback are in: every rule's host is dialled at 127.0.0.1 on a closed port (the
connection is refused, so nothing leaves loopback and a publish goes through only when forced).
Only the declared links are followed (schemathesis' guessed ones are off: a guessed
``GET /tokens`` -> revoke revokes the run's own token and leaves a run of 401s). The monitor,
suggestions, audit and the other unlinked operations are the stateless test's.
"""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.stateful.state_machine import StepInput, StepOutput

from pinwarden._pins import pin_from_digest
from pinwarden.client import Mode
from tests.reliability.test_schemathesis import (  # noqa: F401 - the fixture is found by name
    FUZZ_EXAMPLES,
    FuzzedServer,
    fuzzed_server,
)
from tests.support.tls_servers import free_port

_STEPS = 20
# Scenarios: at least 40, fewer do not reach every flow (the pin and publish links sit deep).
_SCENARIOS = max(FUZZ_EXAMPLES, 40)
# Flows of issue 13; the test fails if a run follows no link of one of them (a run that builds
# nothing tests little). The rollbacks, two links deeper, are reached in some runs only.
_FLOWS = {
    "channel": ("ShowChannel", "UpdateChannel"),
    "rule": ("UpdateRule", "RemoveRule"),
    "pin": ("SetPinRole", "RemovePin"),
    "publish": ("History", "SignedNewest", "SignedVersion"),
    "token": ("Revoke",),
}


def _well_formed(method: str, path: str, body: dict[str, Any], closed_port: int) -> dict[str, Any]:
    """The generated body, with the values the schema cannot describe (a channel name's and a
    host pattern's grammar, a pin, the scopes) replaced by fresh well-formed ones, so that
    creations succeed and their links have something to follow. Fresh, never derived from the
    generated value: hypothesis replays examples against the same server, and a name taken the
    first time would be a 409 the second, a different sequence (``FlakyStrategyDefinition``).
    A body that is not an object stays as generated; the hostile values of the replaced fields
    are the stateless test's."""
    steered = dict(body)
    if path == "/channels" and "name" in body:
        steered["name"] = f"stateful/{secrets.token_hex(6)}"
        for timing in ("refresh_seconds", "ttl_seconds", "report_uri"):
            steered.pop(timing, None)  # ranges checked together; PATCH and stateless cover them
    if path == "/tokens" and isinstance(body.get("scopes"), list):
        steered["scopes"] = ["read"]
    if path.endswith("/rules") and "pattern" in body:
        steered["pattern"] = f"h{secrets.token_hex(5)}.stateful.test"
    if path.endswith(("/rules", "/rules/{pattern}")):
        # Signable with no pin yet, so that a publish can follow (an enforced or report-only rule
        # without a pin is a 422 at publish, forced or not; the stateless test sends every mode).
        steered["mode"] = "disabled"
        # Dialled at a closed loopback port: the connection is refused, nothing leaves 127.0.0.1.
        steered.update(probe_host="127.0.0.1", probe_port=closed_port)
    if path.endswith("/pins") and method == "POST" and "pin" in body:
        steered["pin"] = pin_from_digest(secrets.token_bytes(32))
    if path.endswith(("/publish", "/rollback")):
        # Forced, with the reason that needs: the live chains cannot be seen from here, and an
        # unforced publish is refused (tests/server/test_publish.py covers the refusals).
        steered.update(force=True, reason=body.get("reason") or "stateful fuzzing")
    return steered


def _is_mode(value: object) -> bool:
    try:
        Mode.parse(str(value))
    except ValueError:
        return False
    return True


def _linked_operations(document: dict[str, Any]) -> set[str]:
    """The operation ids of every link's source and target."""
    linked: set[str] = set()
    for path_item in document["paths"].values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                targets = {link["operationId"] for link in response.get("links", {}).values()}
                linked |= {operation["operationId"], *targets} if targets else set()
    return linked


def _link_name(transition_id: str) -> str:
    """``POST /channels -> [201] ShowChannel -> GET /channels/{channel}``: ``ShowChannel``."""
    return transition_id.split(" -> ")[1].split("] ", 1)[1]


def test_linked_admin_calls_never_answer_a_5xx(
    fuzzed_server: FuzzedServer,  # noqa: F811 - the imported fixture
) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_server.url}/v1/admin/openapi.json")
    schema.config.update(
        base_url=f"{fuzzed_server.url}/v1/admin",
        headers={"authorization": f"Bearer {fuzzed_server.token}"},
    )
    # The links declared, not guessed ones: a guessed GET /tokens -> revoke revokes the run's own
    # token, and the rest of the run is 401s.
    schema.config.phases.stateful.inference.algorithms = []
    # The operations the links join; the others are the stateless test's.
    schema = schema.include(operation_id=sorted(_linked_operations(schema.raw_schema)))
    closed_port = free_port()
    followed: Counter[str] = Counter()
    calls: Counter[str] = Counter()

    class AdminFlows(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            if case.path.endswith("/publish") and not isinstance(case.body, dict):
                case.body = {}  # a publish that can happen, for the links after it to follow
            if isinstance(case.body, dict):
                case.body = _well_formed(case.method, case.path, case.body, closed_port)

        def step(self, input: StepInput) -> StepOutput:
            if input.transition is not None and input.is_applied:
                followed[_link_name(input.transition.id)] += 1
            output = super().step(input)
            calls[f"{input.case.method} {input.case.path}"] += 1
            assert fuzzed_server.services.database_up, (input.case.path, output.response.text)
            return output

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(response, checks=[not_a_server_error])

        def teardown(self) -> None:
            health = httpx.get(f"{fuzzed_server.url}/healthz", timeout=10).json()
            assert health["database"] == "ok"

    AdminFlows.run(
        settings=settings(
            max_examples=_SCENARIOS,
            stateful_step_count=_STEPS,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(f"\n{sum(calls.values())} calls {dict(calls)}\nlinks followed {dict(followed)}")
    missed = [flow for flow, links in _FLOWS.items() if not any(followed[n] for n in links)]
    assert not missed, (missed, followed)
    fuzzed_server.assert_database_up()
