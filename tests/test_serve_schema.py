"""Property-based check of the REST API against its own OpenAPI schema (schemathesis).

For every operation, schemathesis generates valid and invalid requests from the schema and
checks that no response is a 5xx, that every status code, content type and body is the one the
schema documents, and that schema-violating requests are rejected. Bounded: a few examples per
operation, derandomised, no shrinking, loopback only.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from serve_helpers import API_KEY, AUTH, start_server, tiny_dcgan_run


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv, _ = start_server({"digits": tiny_dcgan_run()}, keys=[API_KEY], max_n=4, max_wait_ms=1,
                          content_dir=str(tmp_path_factory.mktemp("schema-content")))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_openapi_documents_every_operation_with_examples(api_schema):
    raw = api_schema.raw_schema
    generate = raw["paths"]["/v1/models/{name}/generate"]["post"]
    assert set(generate["responses"]) >= {"200", "401", "404", "413", "422", "503", "504"}
    assert generate["requestBody"]["content"]["application/json"]["examples"]
    request = raw["components"]["schemas"]["GenerateRequest"]
    assert request["properties"]["n"]["maximum"] == 4 and request["examples"]
    assert raw["components"]["schemas"]["GenerateResponse"]["examples"]
    assert raw["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 7
    statuses: set[tuple[str, int]] = set()
    for operation in operations:
        definition = api_schema.raw_schema["paths"][operation.path][operation.method.lower()]
        if mode == GenerationMode.NEGATIVE and not (definition.get("parameters") or definition.get("requestBody")):
            continue  # nothing to make invalid (/healthz, /readyz, /v1/models)

        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case):
            if case.headers and "Authorization" in case.headers:  # a case meant to be authorised
                case.headers["Authorization"] = AUTH["Authorization"]
            response = case.call_and_validate(timeout=30, checks=CHECKS)
            statuses.add((operation.path, response.status_code))

        call()
    if mode == GenerationMode.POSITIVE:  # the generated requests reached the models, not just the door
        assert {("/v1/models/{name}/generate", 200), ("/v1/models/{name}", 200), ("/gallery", 200)} <= statuses
    else:
        assert ("/v1/models/{name}/generate", 422) in statuses and ("/v1/models/{name}", 401) in statuses
