import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError

from core.keys import hash_key
from tokens.keys import token_cache_key
from tokens.models import Token
from tokens.services import token_create, token_delete, token_roll_key, token_update


@pytest.fixture
def vip(make_user, user_groups):
    return make_user(user_group=user_groups["vip"])


def messages(exc):
    return " ".join(m for errs in exc.value.message_dict.values() for m in errs)


def test_create_stores_only_the_hash_and_keeps_fallback_order(vip, groups):
    token, raw = token_create(
        user=vip,
        name="ci",
        select_group=groups["ClaudeCode"],
        fallback_groups=[groups["Default"], groups["Sora2Official"]],
    )
    assert raw.startswith("sk-") and len(raw) > 40
    assert token.key_hash == hash_key(raw) and raw not in token.key_hash
    assert token.key_prefix == raw[:10]
    assert not Token.objects.filter(key_hash=raw).exists()
    order = [f.group.name for f in token.fallbacks.order_by("position")]
    assert order == ["Default", "Sora2Official"]


def test_fallback_equal_to_select_group_is_refused(vip, groups):
    with pytest.raises(ValidationError) as exc:
        token_create(user=vip, name="x", select_group=groups["Default"], fallback_groups=[groups["Default"]])
    assert "must be a different group" in messages(exc)


def test_duplicate_fallback_is_refused(vip, groups):
    with pytest.raises(ValidationError) as exc:
        token_create(
            user=vip,
            name="x",
            select_group=groups["ClaudeCode"],
            fallback_groups=[groups["Default"], groups["Default"]],
        )
    assert "listed twice" in messages(exc)


def test_group_the_user_group_may_not_select_is_refused(vip, groups):
    with pytest.raises(ValidationError) as exc:
        token_create(user=vip, name="x", select_group=groups["Claude_Enterprise"])
    assert "may not select the Claude_Enterprise group" in messages(exc)


def test_enterprise_may_attach_fallback_only_group_but_not_select_it(make_user, user_groups, groups):
    ent = make_user(user_group=user_groups["enterprise"])
    token, _ = token_create(
        user=ent, name="e", select_group=groups["ClaudeCode"], fallback_groups=[groups["Claude_Enterprise"]]
    )
    assert token.fallbacks.get().group.name == "Claude_Enterprise"
    vip = make_user(user_group=user_groups["vip"])
    with pytest.raises(ValidationError) as exc:
        token_create(
            user=vip,
            name="v",
            select_group=groups["ClaudeCode"],
            fallback_groups=[groups["Claude_Enterprise"]],
        )
    assert "may not use the Claude_Enterprise group" in messages(exc)


@pytest.mark.parametrize("bad", ["10.0.0.300", "not-an-ip", "1.2.3.4/40"])
def test_malformed_cidr_is_refused(vip, groups, bad):
    with pytest.raises(ValidationError) as exc:
        token_create(user=vip, name="x", select_group=groups["Default"], ip_allowlist=[bad])
    assert bad in messages(exc)


def test_ip_allowlist_is_normalised(vip, groups):
    token, _ = token_create(
        user=vip, name="x", select_group=groups["Default"], ip_allowlist=["10.1.2.3/8", " 192.168.1.5 "]
    )
    assert token.ip_allowlist == ["10.0.0.0/8", "192.168.1.5/32"]


def test_unknown_model_in_allowlist_and_bad_quota_are_refused(vip, groups):
    with pytest.raises(ValidationError) as exc:
        token_create(
            user=vip, name="x", select_group=groups["Default"], model_allowlist=["gpt-9"], quota_micro=-1
        )
    assert "gpt-9" in messages(exc) and "Quota" in messages(exc)


def test_update_changes_fallbacks_and_validates(vip, groups):
    token, _ = token_create(user=vip, name="x", select_group=groups["ClaudeCode"])
    token_update(token=token, fallback_groups=[groups["Default"]])
    assert [f.group.name for f in token.fallbacks.all()] == ["Default"]
    with pytest.raises(ValidationError):
        token_update(token=token, select_group=groups["Default"])  # Default is now a fallback too
    token.refresh_from_db()
    assert token.select_group.name == "ClaudeCode"


def test_roll_key_invalidates_old_key_and_its_cache(vip, groups, django_capture_on_commit_callbacks):
    token, raw = token_create(user=vip, name="x", select_group=groups["Default"])
    cache.set(token_cache_key(hash_key(raw)), {"id": token.pk})
    with django_capture_on_commit_callbacks(execute=True):
        new_raw = token_roll_key(token=token)
    assert new_raw != raw
    assert cache.get(token_cache_key(hash_key(raw))) is None
    assert Token.objects.get(pk=token.pk).key_hash == hash_key(new_raw)
    assert not Token.objects.filter(key_hash=hash_key(raw)).exists()


def test_disable_and_delete_drop_cached_auth_on_commit(vip, groups, django_capture_on_commit_callbacks):
    token, raw = token_create(user=vip, name="x", select_group=groups["Default"])
    key = token_cache_key(hash_key(raw))
    cache.set(key, {"id": token.pk})
    with django_capture_on_commit_callbacks(execute=True):
        token_update(token=token, enabled=False)
        assert cache.get(key) is not None  # not before the commit
    assert cache.get(key) is None
    cache.set(key, {"id": token.pk})
    with django_capture_on_commit_callbacks(execute=True):
        token_delete(token=token)
    assert cache.get(key) is None


@pytest.mark.django_db(transaction=True)
def test_user_changes_drop_the_users_cached_keys_on_commit(vip, groups, make_user, user_groups):
    from django.db import transaction

    from accounts.services import user_operator_update

    token, raw = token_create(user=vip, name="x", select_group=groups["Default"])
    key = token_cache_key(hash_key(raw))
    cache.set(key, {"id": token.pk})
    with transaction.atomic():
        user_operator_update(actor=make_user(is_staff=True), user=vip, is_active=False)
        assert cache.get(key) is not None
    assert cache.get(key) is None
