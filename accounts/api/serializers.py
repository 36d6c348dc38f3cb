from rest_framework import serializers

from accounts.models import AuditLog, ManagementKey, User
from core.api import MoneyField, NameField


class ManagementKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = ManagementKey
        fields = [
            "id",
            "name",
            "key_prefix",
            "read_only",
            "expires_at",
            "created_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = ["key_prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"name": {"required": False, "allow_blank": True}}


class ManagementKeyCreatedSerializer(ManagementKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The mk- key. Shown only in this response.")

    class Meta(ManagementKeySerializer.Meta):
        fields = [*ManagementKeySerializer.Meta.fields, "key"]


class MeSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="May be empty.")
    user_group = serializers.CharField(source="user_group.name", allow_null=True, read_only=True)
    model_tiers = serializers.SerializerMethodField()
    auth = serializers.SerializerMethodField(help_text="session, management_key or management_key_read_only")

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "user_group", "model_tiers", "auth"]
        read_only_fields = fields

    def get_model_tiers(self, user) -> list[str]:
        return list(user.user_group.model_tiers) if user.user_group else []

    def get_auth(self, user) -> str:
        key = self.context.get("auth")
        if isinstance(key, ManagementKey):
            return "management_key_read_only" if key.read_only else "management_key"
        return "session"


class OperatorUserSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, help_text="May be empty.")
    # The user group model is groups' (a layer above); the foreign key names it.
    user_group = NameField(
        queryset=User.user_group.field.related_model._default_manager.all(), allow_null=True, required=False
    )
    balance_cny = MoneyField(source="wallet.balance_micro", read_only=True, default=0)
    held_cny = MoneyField(source="wallet.held_micro", read_only=True, default=0)
    total_recharged_cny = MoneyField(source="wallet.total_recharged_micro", read_only=True, default=0)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "is_staff",
            "is_active",
            "user_group",
            "user_group_pinned",
            "rpm_limit",
            "date_joined",
            "last_login",
            "balance_cny",
            "held_cny",
            "total_recharged_cny",
        ]
        read_only_fields = ["username", "email", "is_staff", "date_joined", "last_login"]
        extra_kwargs = {"rpm_limit": {"min_value": 1, "max_value": 1_000_000}}


class AuditLogSerializer(serializers.ModelSerializer):
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)

    class Meta:
        model = AuditLog
        fields = [
            "id",
            "created_at",
            "actor_name",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "ip",
        ]
        read_only_fields = fields
