"""Every operation in the schema, checked for who may call it: read-only keys never write,
non-operators never reach operator resources, anonymous callers are always asked to sign in."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

READ_ONLY_SAFE_WRITES = {("post", "/api/v1/price-quote/")}


def operations():
    out = StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    paths = json.loads(out.getvalue())["paths"]
    return [
        (method, path)
        for path, methods in paths.items()
        if path.startswith("/api/v1/")
        for method in methods
        if method in {"get", "post", "patch", "put", "delete"}
    ]


def concrete(path: str) -> str:
    return path.replace("{id}", "1").replace("{name}", "Default")


OPERATIONS = operations()


def test_the_matrix_covers_the_whole_api():
    assert len(OPERATIONS) >= 60


def test_read_only_key_never_writes(operator, key_client, demo):
    client = key_client(operator, read_only=True)
    for method, path in OPERATIONS:
        if method == "get" or (method, path) in READ_ONLY_SAFE_WRITES:
            continue
        response = getattr(client, method)(concrete(path), {}, format="json")
        assert response.status_code == 403, (method, path, response.status_code)
        assert response.json()["code"] == "read_only_key"


def test_non_operator_never_reaches_operator_resources(as_alice):
    for method, path in OPERATIONS:
        if "/operator/" not in path:
            continue
        response = getattr(as_alice, method)(concrete(path), {}, format="json")
        assert response.status_code == 403, (method, path, response.status_code)


def test_anonymous_is_asked_to_authenticate_everywhere(demo):
    client = APIClient()
    for method, path in OPERATIONS:
        response = getattr(client, method)(concrete(path), {}, format="json")
        assert response.status_code == 401, (method, path, response.status_code)


def test_browsable_api_pages_render_for_a_signed_in_operator(operator, client):
    client.force_login(operator)
    for method, path in OPERATIONS:
        if method != "get":
            continue
        response = client.get(concrete(path), HTTP_ACCEPT="text/html")
        assert response.status_code in (200, 404), (path, response.status_code)
