"""Per-user extra token groups: an operator grants a group to one user; the token form, the
/v1/models list and the relay's plan honour it, and a revoke refuses it again."""

import json

import pytest
from django.core.exceptions import ValidationError


@pytest.fixture
def private_group(demo):
    """A group no user group has access to, served by the enterprise Claude channel."""
    from groups.models import Channel, TokenGroup

    group = TokenGroup.objects.create(name="Private", multiplier="0.9", api_formats=["openai", "anthropic"])
    Channel.objects.get(name="claude-enterprise").token_groups.add(group)
    return group


def _chat(client, key):
    body = {"model": "claude-opus-4-6", "messages": [{"role": "user", "content": "hi"}]}
    return client.post(
        "/v1/chat/completions",
        json.dumps(body),
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )


def _models(client, key):
    response = client.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    return {m["id"] for m in response.json()["data"]}


def _form_groups(user):
    from tokens.forms import TokenForm

    form = TokenForm(user=user)
    return {g.name for g in form.fields["select_group"].queryset}, {
        name for _, name in form.fields["fallback_groups"].choices
    }


def _plan_group(raw_key):
    from core.keys import hash_key
    from groups.routing import get_snapshot
    from relay.auth import load_token
    from relay.planner import plan_route

    plan = plan_route(
        snapshot=get_snapshot(),
        token=load_token(hash_key(raw_key)),
        model_name="claude-opus-4-6",
        family="chat",
        api_format="openai",
    )
    return plan.steps[0].group.name


def _login(user):
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c


def test_grant_then_revoke(client, operator, customer, groups, private_group):
    from accounts.models import AuditLog
    from billing.models import UsageRecord
    from tokens.models import Token
    from tokens.services import token_create

    # Without access: not offered, not creatable, and a token pointed at it is refused `access`.
    assert "Private" not in _form_groups(customer)[0]
    with pytest.raises(ValidationError):
        token_create(user=customer, name="p", select_group=private_group)
    token, raw = token_create(user=customer, name="p", select_group=groups["ClaudeCode"])
    Token.objects.filter(pk=token.pk).update(select_group=private_group)
    response = _chat(client, raw)
    assert response.status_code == 403
    assert UsageRecord.objects.filter(token=token).latest("id").refusal_reason == "access"
    assert "claude-opus-4-6" not in _models(client, raw)

    # Grant through the operator console (audited).
    ops = _login(operator)
    page = ops.get(f"/ops/users/{customer.pk}/").content.decode()
    assert "Private" in page.split('data-testid="grants"')[1]
    response = ops.post(f"/ops/users/{customer.pk}/", {"action": "grant", "token_group": private_group.pk})
    assert response.status_code == 302
    assert AuditLog.objects.filter(action="user.grant_token_group", object_id=str(customer.pk)).exists()
    selectable, fallbacks = _form_groups(customer)
    assert "Private" in selectable and "Private" in fallbacks
    assert "claude-opus-4-6" in _models(client, raw)  # same key, cached before the grant
    assert _plan_group(raw) == "Private"
    prices = _login(customer).get("/prices/?group=Private&model=claude-opus-4-6").content.decode()
    assert '<option value="Private" selected>' in prices  # the price explainer offers it too
    token_create(user=customer, name="p2", select_group=private_group)

    # Revoke: refused `access` again, with no stale snapshot.
    response = ops.post(f"/ops/users/{customer.pk}/", {"action": "revoke", "token_group": private_group.pk})
    assert response.status_code == 302
    assert AuditLog.objects.filter(action="user.revoke_token_group", object_id=str(customer.pk)).exists()
    assert "Private" not in _form_groups(customer)[0]
    response = _chat(client, raw)
    assert response.status_code == 403
    assert UsageRecord.objects.filter(token=token).latest("id").refusal_reason == "access"


def test_customers_cannot_grant_themselves(customer, private_group):
    response = _login(customer).post(
        f"/ops/users/{customer.pk}/", {"action": "grant", "token_group": private_group.pk}
    )
    assert response.status_code == 403
    assert not customer.extra_token_groups.exists()


def test_grant_is_per_user(customer, outsider, operator, private_group):
    from accounts.services import user_token_group_grant

    user_token_group_grant(actor=operator, user=customer, token_group=private_group)
    assert "Private" in _form_groups(customer)[0]
    assert "Private" not in _form_groups(outsider)[0]
