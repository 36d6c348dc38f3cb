from cryptography.fernet import Fernet

from groups import crypto
from groups.models import Channel


def test_upstream_key_is_encrypted_at_rest(demo):
    channel = Channel.objects.get(name="domestic")
    assert "sim-domestic-key" not in channel.api_key_encrypted
    assert channel.api_key == "sim-domestic-key"


def test_rotation_keeps_old_ciphertexts_readable(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    crypto.reset_cache()
    token = crypto.encrypt_secret("upstream-secret")
    settings.FERNET_KEYS = [new, old]
    crypto.reset_cache()
    assert crypto.decrypt_secret(token) == "upstream-secret"
    rotated = crypto.rotate_secret(token)
    settings.FERNET_KEYS = [new]
    crypto.reset_cache()
    assert crypto.decrypt_secret(rotated) == "upstream-secret"
    crypto.reset_cache()
