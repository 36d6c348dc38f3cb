import pytest

from tests.relay.conftest import live, relay_server  # noqa: F401 (the live relay fixtures, reused)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """seed_demo hashes two passwords; the default hasher would dominate these tests' time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
