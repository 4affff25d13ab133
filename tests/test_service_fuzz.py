"""Schemathesis fuzzes every operation of the OpenAPI schema: no input may get a server error."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from kernel.settings import Settings
from tests.conftest import PackageFactory
from tests.test_service import make_api


@pytest.fixture
def fuzzed(tmp_path: Path, make_pkg: PackageFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    home = Settings(home=tmp_path / "home", audit_common_corpus=[], api_burst=10**6, api_rate_per_minute=10**7)
    k, http, made, _ = make_api(home, make_pkg)
    yield http.app, made
    assert k.ledger_check().ok, k.ledger_check().problems
    k.close()


@pytest.fixture
def api_schema(fuzzed: tuple[Any, dict[str, str]]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed[0])


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.parametrize("who", ["admin", "alice", "none"])
def test_no_input_gets_a_server_error(case: Any, who: str, fuzzed: tuple[Any, dict[str, str]]) -> None:
    headers = {"Authorization": f"Bearer {fuzzed[1][who]}"} if who != "none" else {}
    case.call_and_validate(headers=headers, checks=[not_a_server_error])
