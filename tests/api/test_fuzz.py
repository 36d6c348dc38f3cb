"""Schemathesis: property-based requests generated from our own OpenAPI schema, sent to a live
server with an operator's management key. No 5xx anywhere, every response as documented."""

import os

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.services import management_key_create, user_create

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "10"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Revoking the fuzzer's own key would turn the rest of the run into 401s.
SKIP = {("DELETE", "/api/v1/management-keys/{id}/")}


@pytest.fixture
def fuzz_target(live_server, demo, user_groups, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PROBE_TIMEOUT_S = 2  # "probe now" on a generated channel must not stall the run
    operator = user_create(username="fuzzer", user_group=user_groups["enterprise"], is_staff=True)
    _, raw = management_key_create(user=operator, name="fuzz")
    served = requests.get(f"{live_server.url}/api/schema/?format=json", timeout=180)
    assert served.status_code == 200
    schema = schemathesis.openapi.from_dict(served.json())
    return live_server.url, {"Authorization": f"Bearer {raw}"}, schema


def test_every_endpoint_survives_generated_requests(fuzz_target):
    base_url, headers, schema = fuzz_target
    failures, tested = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        tested += 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case):
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert tested >= 60
    assert not failures, "\n\n".join(failures)
