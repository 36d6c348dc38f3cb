import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Console tests create many users; a fast hasher keeps them quick (not a security test)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def customer(demo, user_groups, make_user):
    """A default-group customer with money in the wallet."""
    from billing.services import wallet_recharge

    user = make_user(user_group=user_groups["default"])
    wallet_recharge(user=user, amount_micro=1000 * 1_000_000, payment_ref=f"test-{user.pk}")
    user.refresh_from_db()
    return user


@pytest.fixture
def outsider(demo, user_groups, make_user):
    return make_user(user_group=user_groups["default"])


@pytest.fixture
def operator(demo, user_groups, make_user):
    return make_user(user_group=user_groups["enterprise"], is_staff=True)


@pytest.fixture
def client_for(client):
    """A CSRF-enforcing test client logged in as the given user."""
    from django.test import Client

    def make(user):
        c = Client(enforce_csrf_checks=True)
        c.force_login(user)
        return c

    return make


@pytest.fixture
def make_usage():
    """Settle a usage record through the real wallet service (no relay needed)."""
    import uuid

    from billing.ledger import get_ledger, usage_record_failure

    def make(user, token=None, *, cost_micro=0, failed=False, **fields):
        request_id = fields.pop("request_id", f"req_{uuid.uuid4().hex[:16]}")
        record = {
            "token_id": token.pk if token else None,
            "token_name": token.name if token else "",
            "model_name": "claude-sonnet-4-5",
            "group_name": token.select_group.name if token else "",
            "api_format": "openai",
            "endpoint": "/v1/chat/completions",
            **fields,
        }
        if failed:
            return usage_record_failure(request_id=request_id, user_id=user.pk, record=record)
        record.setdefault("status", "success")
        record.setdefault("http_status", 200)
        return (
            get_ledger()
            .settle(request_id=request_id, user_id=user.pk, cost_micro=cost_micro, record=record)
            .record
        )

    return make


@pytest.fixture
def cc_token(customer, groups):
    """The guide's token: ClaudeCode with a Default fallback."""
    from tokens.services import token_create

    token, _ = token_create(
        user=customer, name="cc", select_group=groups["ClaudeCode"], fallback_groups=[groups["Default"]]
    )
    return token
