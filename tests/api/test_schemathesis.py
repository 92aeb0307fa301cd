"""Property-based run of the live OpenAPI schema (schemathesis): no 5xx, no schema violations.

Runs against ``avserve serve`` with the real pipeline (tiny package), over loopback. Bounded:
a few dozen generated requests per operation. Driven through the schemathesis Python API
rather than its pytest plugin (the plugin's fixture mode breaks on pytest 9).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from tests.api.servers import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
EXAMPLES = 25


def test_every_operation_keeps_its_contract(pipeline_server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{pipeline_server.url}/openapi.json")
    failures: dict[str, str] = {}
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"invalid schema: {result}"
        operations.append(result.ok())
    assert len(operations) >= 7

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=pipeline_server.url, checks=CHECKS, timeout=60)

        try:
            run()
        except Exception as e:  # collect every operation's first failure, then report all
            failures[operation.label] = f"{type(e).__name__}: {e}"[:2000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
