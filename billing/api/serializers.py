"""Billing API shapes: money as RMB decimal strings (6 places) converted from micro-yuan."""

from decimal import Decimal

from rest_framework import serializers

from billing.models import LedgerEntry, Recharge, RechargeBonusTier, UsageRecord
from core.api import MoneyField, NameField
from groups.api.fields import GroupNameField
from groups.api.serializers import PriceExplanationSerializer
from groups.models import Model
from tokens.models import BillingMode


class UsageRecordSerializer(serializers.ModelSerializer):
    token = serializers.IntegerField(source="token_id", allow_null=True, read_only=True)
    model = serializers.CharField(source="model_name", read_only=True)
    group = serializers.CharField(source="group_name", read_only=True, help_text="Group actually used.")
    channel = serializers.CharField(source="channel_name", read_only=True)
    hold_cny = MoneyField(source="hold_micro", read_only=True)
    cost_cny = MoneyField(source="cost_micro", read_only=True)
    uncollected_cny = MoneyField(source="uncollected_micro", read_only=True)
    price_breakdown = serializers.DictField(read_only=True, help_text="How the cost was computed.")
    trace = serializers.ListField(
        child=serializers.DictField(),
        read_only=True,
        help_text="Each attempt: group, channel, outcome, time.",
    )

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "request_id",
            "created_at",
            "settled_at",
            "token",
            "token_name",
            "endpoint",
            "api_format",
            "model",
            "group",
            "channel",
            "fallback_used",
            "stream",
            "status",
            "http_status",
            "error_code",
            "error_message",
            "billing_basis",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "seconds",
            "images",
            "usage_estimated",
            "multiplier",
            "hold_cny",
            "cost_cny",
            "uncollected_cny",
            "price_breakdown",
            "trace",
            "latency_ms",
            "ttfb_ms",
        ]
        read_only_fields = fields


class OperatorUsageRecordSerializer(UsageRecordSerializer):
    user = serializers.CharField(source="user.username", read_only=True)

    class Meta(UsageRecordSerializer.Meta):
        fields = [*UsageRecordSerializer.Meta.fields, "user"]
        read_only_fields = fields


class LedgerEntrySerializer(serializers.ModelSerializer):
    amount_cny = MoneyField(source="amount_micro", allow_negative=True, read_only=True)
    balance_after_cny = MoneyField(source="balance_after_micro", read_only=True)

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount_cny", "balance_after_cny", "request_id", "memo", "created_at"]
        read_only_fields = fields


class BonusTierSerializer(serializers.ModelSerializer):
    min_amount_cny = MoneyField(source="min_amount_micro", allow_zero=False)
    bonus_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("100")
    )

    class Meta:
        model = RechargeBonusTier
        fields = ["id", "min_amount_cny", "bonus_percent"]


class WalletSerializer(serializers.Serializer):
    balance_cny = MoneyField(source="balance_micro")
    held_cny = MoneyField(source="held_micro", help_text="Reserved by calls in flight.")
    total_recharged_cny = MoneyField(source="total_recharged_micro")
    usd_equivalent = serializers.DecimalField(max_digits=20, decimal_places=2)
    usd_cny_rate = serializers.DecimalField(max_digits=12, decimal_places=4)
    bonus_tiers = BonusTierSerializer(many=True)


class RechargeRequestSerializer(serializers.Serializer):
    amount_cny = MoneyField(allow_zero=False, help_text="RMB paid (simulated payment).")


class RechargeSerializer(serializers.ModelSerializer):
    amount_cny = MoneyField(source="amount_micro", read_only=True)
    bonus_cny = MoneyField(source="bonus_micro", read_only=True)
    balance_cny = MoneyField(read_only=True, source="balance_after_micro")

    class Meta:
        model = Recharge
        fields = [
            "id",
            "amount_cny",
            "bonus_cny",
            "bonus_percent",
            "payment_ref",
            "created_at",
            "balance_cny",
        ]
        read_only_fields = fields


class PriceQuoteRequestSerializer(serializers.Serializer):
    token = serializers.IntegerField(
        required=False, min_value=1, help_text="One of your tokens: its select group and billing mode apply."
    )
    group = GroupNameField(required=False, help_text="Or a token group you may use.")
    model = NameField(queryset=Model.objects.filter(enabled=True))
    billing_mode = serializers.ChoiceField(choices=BillingMode.choices, required=False)
    input_tokens = serializers.IntegerField(min_value=0, max_value=10**9, default=0)
    output_tokens = serializers.IntegerField(min_value=0, max_value=10**9, default=0)
    cache_read_tokens = serializers.IntegerField(min_value=0, max_value=10**9, default=0)
    cache_write_tokens = serializers.IntegerField(min_value=0, max_value=10**9, default=0)
    seconds = serializers.DecimalField(
        max_digits=10, decimal_places=3, min_value=Decimal("0"), default=Decimal("0")
    )
    images = serializers.IntegerField(min_value=0, max_value=10**6, default=0)
    calls = serializers.IntegerField(min_value=1, max_value=10**6, default=1)

    def validate(self, attrs):
        if ("token" in attrs) == ("group" in attrs):
            raise serializers.ValidationError({"group": "Give either a token or a group."})
        return attrs


class PriceLineSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # DRF moves declared fields off the class
    units = serializers.CharField()
    unit = serializers.CharField()
    usd_per_unit = serializers.CharField()
    cny = serializers.CharField()


class ChargeSerializer(serializers.Serializer):
    basis = serializers.CharField(help_text="tokens, seconds, images or call")
    multiplier = serializers.CharField()
    usd_cny_rate = serializers.CharField()
    lines = PriceLineSerializer(many=True)
    cost_cny = serializers.CharField()


class PriceQuoteSerializer(PriceExplanationSerializer):
    billing_mode = serializers.CharField()
    charge = ChargeSerializer()


class SettingsSerializer(serializers.Serializer):
    usd_cny_rate = serializers.DecimalField(
        max_digits=10, decimal_places=4, min_value=Decimal("0.01"), max_value=Decimal("1000")
    )


class AdjustBalanceSerializer(serializers.Serializer):
    amount_cny = MoneyField(
        allow_negative=True, allow_zero=False, help_text="Credit (+) or debit (−) in RMB."
    )
    reason = serializers.CharField(max_length=255)


class AdviceSerializer(serializers.Serializer):
    level = serializers.CharField(help_text="ok, info, warn or bad")
    text = serializers.CharField()


class UsageWhySerializer(serializers.Serializer):
    request_id = serializers.CharField()
    status = serializers.CharField()
    http_status = serializers.IntegerField()
    advice = AdviceSerializer(many=True, help_text="What happened and what to change, in the guide's words.")
