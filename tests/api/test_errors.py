"""Hostile input gets a 4xx in the one error shape, never a 500 (the fuzz test's findings)."""

import pytest

pytestmark = pytest.mark.django_db


def test_nul_character_in_a_name_is_a_field_error(as_alice):
    response = as_alice.post("/api/v1/tokens/", {"select_group": "Def\x00ault"}, format="json")
    assert response.status_code == 400
    assert "select_group" in response.json()["errors"]


def test_nul_character_in_a_filter_is_a_400(as_operator):
    response = as_operator.get("/api/v1/operator/audit-log/", {"action": "a\x00b"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_form_encoded_body_is_accepted_like_json(as_alice):
    response = as_alice.post("/api/v1/tokens/", {"select_group": "Default", "name": "form"})
    assert response.status_code == 201


def test_unsupported_media_type(as_alice):
    response = as_alice.generic("POST", "/api/v1/tokens/", "select_group=Default", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_method_not_allowed_has_the_error_shape(as_alice):
    response = as_alice.put("/api/v1/tokens/1/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.postgres
def test_impossible_time_zone_offset_is_a_400_on_postgresql(as_operator):
    response = as_operator.get("/api/v1/operator/audit-log/", {"date_to": "5224-04-13T00:15:57+16:08"})
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.postgres
def test_nul_character_in_a_body_string_is_a_400_on_postgresql(as_operator):
    response = as_operator.post(
        "/api/v1/operator/group-access/",
        {"user_group": "de\x00fault", "token_group": "Default"},
        format="json",
    )
    assert response.status_code == 400
