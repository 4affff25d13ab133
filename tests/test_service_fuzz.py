"""Schemathesis fuzzes every operation of the OpenAPI schema: no input may get a server error.

The operations are driven by hypothesis directly (schemathesis's pytest plugin does not
load under this pytest), each generated request sent as an operator, as a principal and
with no token."""

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from kernel.settings import Settings
from tests.conftest import PackageFactory
from tests.test_service import make_api

EXAMPLES = 50


def test_no_input_gets_a_server_error(tmp_path: Path, make_pkg: PackageFactory) -> None:
    home = Settings(home=tmp_path / "home", audit_common_corpus=[], api_burst=10**6, api_rate_per_minute=10**7)
    k, http, made, _ = make_api(home, make_pkg)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", http.app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 20
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def fuzz(case: schemathesis.Case) -> None:
                for who in ("admin", "alice", None):
                    headers = {"Authorization": f"Bearer {made[who]}"} if who else {}
                    case.call_and_validate(headers=headers, checks=[not_a_server_error])

            fuzz()
        assert k.ledger_check().ok, k.ledger_check().problems
    finally:
        k.close()
