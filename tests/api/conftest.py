import pytest
from rest_framework.test import APIClient

from accounts.services import management_key_create


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Users here sign in with keys; a cheap hasher keeps per-test user creation fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def key_client(db):
    """A client authenticated with a fresh mk- key of `user`."""

    def make(user, *, read_only: bool = False) -> APIClient:
        _, raw = management_key_create(user=user, name="test", read_only=read_only)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        client.raw_key = raw
        return client

    return make


@pytest.fixture
def alice(make_user, user_groups):
    return make_user(user_group=user_groups["vip"])


@pytest.fixture
def bob(make_user, user_groups):
    return make_user(user_group=user_groups["default"])


@pytest.fixture
def operator(make_user, user_groups):
    return make_user(user_group=user_groups["enterprise"], is_staff=True)


@pytest.fixture
def as_alice(key_client, alice):
    return key_client(alice)


@pytest.fixture
def as_bob(key_client, bob):
    return key_client(bob)


@pytest.fixture
def as_operator(key_client, operator):
    return key_client(operator)
