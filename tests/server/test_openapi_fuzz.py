"""Fuzz the API with schemathesis against its own ``/openapi.json``: no request — valid or
not, with the admin key — may make the server answer 5xx, and documented 2xx bodies must
match the spec; on SQLite and on PostgreSQL. Bounded and deterministic (few examples per
operation, derandomized)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.server.support import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("server-fuzz")]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server on SQLite or on a fresh PostgreSQL database."""
    args = ["--max-upload-mb", "1"]
    if request.param == "postgresql":
        args += ["--database-url", request.getfixturevalue("pg_database")]
    srv = ServerProcess(tmp_path_factory.mktemp(f"fuzz-{request.param}"), *args).start()
    yield srv
    srv.stop()


SETTINGS = settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def test_api_never_answers_5xx(fuzz_server: ServerProcess) -> None:
    # schemathesis' pytest plugin does not support this pytest; drive hypothesis directly
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_server.key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @SETTINGS
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=fuzz_server.url, headers=headers)
                checks = [not_a_server_error]
                if mode is GenerationMode.POSITIVE:
                    checks.append(response_schema_conformance)
                case.validate_response(response, checks=checks)
                assert response.headers.get("x-request-id")

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (e.g. GET /health)
                assert mode is GenerationMode.NEGATIVE, operation.label
