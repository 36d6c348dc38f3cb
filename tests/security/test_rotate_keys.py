"""`rotate_keys`: every upstream key moves to the newest Fernet key, once, printing no secret."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from groups import crypto
from groups.models import Channel

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
PLAINTEXTS = {"up-a": "sk-upstream-aaaa-1111", "up-b": "sk-ant-upstream-bbbb-2222", "up-c": "upstream-cccc"}


def _use_keys(settings, *keys):
    settings.FERNET_KEYS = list(keys)
    crypto.reset_cache()


@pytest.fixture(autouse=True)
def _fresh_crypto():
    crypto.reset_cache()
    yield
    crypto.reset_cache()


@pytest.fixture
def channels(db, settings):
    _use_keys(settings, OLD)
    for name, key in PLAINTEXTS.items():
        channel = Channel(name=name, kind="openai", base_url=f"https://{name}.example.com/v1")
        channel.api_key = key
        channel.save()
    Channel.objects.create(name="keyless", kind="openai", base_url="https://keyless.example.com/v1")


def _run(*args):
    out, err = StringIO(), StringIO()
    call_command("rotate_keys", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def _assert_no_secret(text):
    for secret in (*PLAINTEXTS.values(), OLD, NEW):
        assert secret not in text


def test_rotation_moves_every_key_to_the_newest_key(channels, settings):
    _use_keys(settings, NEW, OLD)
    before = dict(Channel.objects.values_list("name", "api_key_encrypted"))
    assert {c.name: c.api_key for c in Channel.objects.exclude(api_key_encrypted="")} == PLAINTEXTS

    with pytest.raises(CommandError, match="3 key"):
        _run("--check")
    assert dict(Channel.objects.values_list("name", "api_key_encrypted")) == before

    first = _run()
    assert "rotated: 3, already current: 0, unreadable: 0" in first
    second = _run()
    assert "rotated: 0, already current: 3, unreadable: 0" in second
    assert "to rotate: 0" in _run("--check")
    _assert_no_secret(first + second)

    _use_keys(settings, NEW)
    assert {c.name: c.api_key for c in Channel.objects.exclude(api_key_encrypted="")} == PLAINTEXTS
    assert Channel.objects.get(name="keyless").api_key == ""


def test_without_rotation_dropping_the_old_key_makes_keys_unreadable(channels, settings):
    _use_keys(settings, NEW)
    with pytest.raises(CommandError, match="could not be decrypted"):
        out = StringIO()
        err = StringIO()
        try:
            call_command("rotate_keys", stdout=out, stderr=err)
        finally:
            assert "channel 'up-a'" in err.getvalue()
            _assert_no_secret(out.getvalue() + err.getvalue())
    _use_keys(settings, NEW, OLD)
    assert Channel.objects.get(name="up-a").api_key == PLAINTEXTS["up-a"]
