"""The OpenAPI schema validates without warnings, and documents what the API promises."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def test_schema_is_public_and_documents_auth_errors_and_write_only_key(db):
    out = StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    schema = json.loads(out.getvalue())
    assert schema["components"]["securitySchemes"]["managementKey"]["scheme"] == "bearer"
    tokens = schema["paths"]["/api/v1/tokens/"]["post"]
    assert {"201", "400", "401", "403"} <= set(tokens["responses"])
    channel = schema["components"]["schemas"]["Channel"]["properties"]
    assert "api_key" not in channel and "has_api_key" in channel
    assert "api_key" in schema["components"]["schemas"]["ChannelRequest"]["properties"]
    money = schema["components"]["schemas"]["Token"]["properties"]["quota_cny"]
    assert money["type"] == "string" and money["format"] == "decimal"
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_only_our_own_assets(url):
    response = APIClient().get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "https://" not in html and "//cdn" not in html
    assert "static/drf_spectacular_sidecar" in html
