"""Token API shapes. Validation rules live in tokens.services; these only parse and present."""

from rest_framework import serializers

from core.api import MoneyField
from groups.api.fields import GroupNameField
from tokens.models import BillingMode, Token


class TokenSerializer(serializers.ModelSerializer):
    select_group = serializers.CharField(source="select_group.name", read_only=True)
    fallback_groups = serializers.SerializerMethodField(
        help_text="Tried in this order after the select group."
    )
    quota_cny = MoneyField(source="quota_micro", allow_null=True, read_only=True)
    spent_cny = MoneyField(source="spent_micro", read_only=True)
    held_cny = MoneyField(source="held_micro", read_only=True)
    model_allowlist = serializers.ListField(child=serializers.CharField(), read_only=True)
    ip_allowlist = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Token
        fields = [
            "id",
            "name",
            "key_prefix",
            "select_group",
            "fallback_groups",
            "billing_mode",
            "quota_cny",
            "spent_cny",
            "held_cny",
            "expires_at",
            "model_allowlist",
            "ip_allowlist",
            "rpm_limit",
            "enabled",
            "created_at",
            "updated_at",
            "last_used_at",
        ]
        read_only_fields = fields

    def get_fallback_groups(self, token) -> list[str]:
        return [f.group.name for f in token.fallbacks.all()]


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.CharField(read_only=True, help_text="The sk- key. Shown only in this response.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class TokenKeySerializer(serializers.Serializer):
    key = serializers.CharField(read_only=True, help_text="The new sk- key. Shown only in this response.")
    key_prefix = serializers.CharField(read_only=True)


class TokenWriteSerializer(serializers.Serializer):
    """Input for create (all but select_group optional) and PATCH (everything optional)."""

    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    select_group = GroupNameField()
    fallback_groups = serializers.ListField(
        child=GroupNameField(), max_length=20, required=False, help_text="Group names, in the order tried."
    )
    billing_mode = serializers.ChoiceField(choices=BillingMode.choices, required=False)
    quota_cny = MoneyField(source="quota_micro", allow_null=True, required=False)
    expires_at = serializers.DateTimeField(allow_null=True, required=False)
    model_allowlist = serializers.ListField(
        child=serializers.CharField(max_length=128), max_length=500, required=False
    )
    ip_allowlist = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=200, required=False
    )
    rpm_limit = serializers.IntegerField(min_value=1, max_value=1_000_000, allow_null=True, required=False)
    enabled = serializers.BooleanField(required=False)
