"""The audit log page: token create/roll/update/delete, recharges, balance adjustments and
channel changes are recorded and read as ¥ amounts and names, not raw micro-yuan dicts."""

from django.test import Client


def _login(user):
    c = Client()
    c.force_login(user)
    return c


def test_customer_and_operator_actions_are_audited_readably(operator, customer, groups):
    from accounts.models import AuditLog
    from billing.services import wallet_adjust, wallet_recharge
    from groups.models import Channel
    from groups.services import channel_set_enabled
    from tokens.services import token_create, token_delete, token_roll_key, token_update

    token, _ = token_create(user=customer, name="audited", select_group=groups["ClaudeCode"])
    token_update(token=token, fallback_groups=[groups["Default"]])
    token_roll_key(token=token)
    token.refresh_from_db()
    token_delete(token=token)
    wallet_recharge(user=customer, amount_micro=700_000_000, payment_ref="sim-audit")
    wallet_adjust(user=customer, amount_micro=-12_345_000, reason="goodwill", actor=operator)
    channel_set_enabled(
        actor=operator, channel=Channel.objects.get(name="wan"), enabled=False, reason="console"
    )

    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {
        "token.create",
        "token.update",
        "token.roll",
        "token.delete",
        "wallet.recharge",
        "wallet.adjust",
    } <= actions
    assert "channel.disable" in actions

    page = _login(operator).get("/ops/audit/").content.decode()
    table = page.split('data-testid="audit-table"')[1]
    assert "_micro" not in table and "700000000" not in table
    assert "¥700.00" in table  # the recharge
    assert "-¥12.35" in table  # the adjustment amount (console rounding)
    assert "goodwill" in table
    assert "ClaudeCode" in table and "Default" in table  # groups by name
    assert "token.delete" in table and "audited" in table


def test_customers_cannot_read_the_audit_log(customer):
    assert _login(customer).get("/ops/audit/").status_code == 403
