"""Group, model and channel API shapes. Rules live in groups.services; these parse and present."""

from rest_framework import serializers

from core.api import NameField
from groups.models import (
    API_FORMATS,
    PRICE_FIELDS,
    Channel,
    ChannelHealth,
    GroupAccess,
    Model,
    ModelTier,
    TokenGroup,
    UserGroup,
)
from groups.services import CHANNEL_FIELDS, MODEL_FIELDS, TOKEN_GROUP_FIELDS, USER_GROUP_FIELDS

from .fields import GroupNameField

# ---- explanations shared by the user catalog and price quotes ----------------------------------


class UnitPriceSerializer(serializers.Serializer):
    unit = serializers.CharField(help_text="input, output, cache_read, cache_write, call, second or image")
    label = serializers.CharField()  # type: ignore[assignment]  # DRF moves declared fields off the class
    official_usd = serializers.CharField(help_text="Official list price in USD per unit.")
    final_cny = serializers.CharField(help_text="What you pay in RMB per unit in this group.")
    final_usd_equivalent = serializers.CharField(help_text="The same price expressed in USD.")


class PriceExplanationSerializer(serializers.Serializer):
    model = serializers.CharField()
    group = serializers.CharField()
    multiplier = serializers.CharField(help_text="Group multiplier for your user group (1 = official).")
    usd_cny_rate = serializers.CharField()
    bonus_percent = serializers.CharField(help_text="Best recharge bonus on offer, in percent.")
    ratio_to_official = serializers.CharField(help_text="multiplier ÷ (1 + bonus): real cost vs official.")
    sentence = serializers.CharField()
    units = UnitPriceSerializer(many=True)


# ---- user resources ---------------------------------------------------------------------------


class GroupModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    tier = serializers.CharField()
    available = serializers.BooleanField(help_text="Your user group may call this model's tier.")
    price = PriceExplanationSerializer()


class TokenGroupCatalogSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    api_formats = serializers.ListField(child=serializers.CharField())
    multiplier = serializers.CharField(help_text="Your multiplier in this group (1 = official price).")
    ratio_to_official = serializers.CharField()
    sentence = serializers.CharField()
    selectable = serializers.BooleanField(help_text="May be a token's select group (else fallback only).")
    models = GroupModelSerializer(many=True)


class OfficialPricesSerializer(serializers.ModelSerializer):
    class Meta:
        model = Model
        fields = list(PRICE_FIELDS)
        read_only_fields = fields


class CatalogModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    tier = serializers.CharField()
    description = serializers.CharField()
    available = serializers.BooleanField(help_text="Your user group may call this model's tier.")
    official = OfficialPricesSerializer(help_text="Official USD list prices; null where not applicable.")
    prices = PriceExplanationSerializer(many=True, help_text="Final prices in each group you may use.")


# ---- operator resources -----------------------------------------------------------------------


class GroupAccessSerializer(serializers.ModelSerializer):
    user_group = NameField(queryset=UserGroup.objects.all())
    token_group = GroupNameField()

    class Meta:
        model = GroupAccess
        fields = ["id", "user_group", "token_group", "fallback_only", "multiplier_override"]
        validators: list = []


class UserGroupSerializer(serializers.ModelSerializer):
    model_tiers = serializers.ListField(
        child=serializers.ChoiceField(choices=ModelTier.values), max_length=10
    )
    access = serializers.SerializerMethodField()

    class Meta:
        model = UserGroup
        fields = ["id", *USER_GROUP_FIELDS, "access"]

    def get_access(self, obj) -> list[dict]:
        return [
            {
                "token_group": a.token_group.name,
                "fallback_only": a.fallback_only,
                "multiplier_override": None if a.multiplier_override is None else str(a.multiplier_override),
            }
            for a in obj.accesses.all()
        ]


class TokenGroupSerializer(serializers.ModelSerializer):
    api_formats = serializers.ListField(child=serializers.ChoiceField(choices=API_FORMATS), min_length=1)
    # many=True makes a ManyRelatedField; the stubs type the call as the child field
    channels: "serializers.ManyRelatedField" = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="name", many=True, read_only=True
    )

    class Meta:
        model = TokenGroup
        fields = ["id", *TOKEN_GROUP_FIELDS, "channels"]


class OperatorModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Model
        fields = ["id", *MODEL_FIELDS]


class ChannelModelSerializer(serializers.Serializer):
    model = NameField(queryset=Model.objects.all())
    upstream_name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")


class ChannelSerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        max_length=4000,
        help_text="Upstream key; write-only, never returned.",
    )
    has_api_key = serializers.SerializerMethodField()
    token_groups = NameField(many=True, queryset=TokenGroup.objects.all(), required=False)
    models = serializers.SerializerMethodField()
    # many=True builds a ListSerializer, which takes max_length; the stubs type the child's __init__
    served_models = ChannelModelSerializer(many=True, write_only=True, required=False, max_length=1000)  # type: ignore[call-arg]

    class Meta:
        model = Channel
        fields = [
            "id",
            *CHANNEL_FIELDS,
            "api_key",
            "has_api_key",
            "token_groups",
            "models",
            "served_models",
            "auto_disabled",
            "auto_disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["auto_disabled", "auto_disabled_reason", "created_at", "updated_at"]

    def get_has_api_key(self, obj) -> bool:
        return bool(obj.api_key_encrypted)

    def get_models(self, obj) -> list[dict]:
        return [
            {"model": cm.model.name, "upstream_name": cm.upstream_name}
            for cm in obj.channel_models.select_related("model").order_by("model__name")
        ]


class ChannelEnableSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class ChannelHealthSerializer(serializers.ModelSerializer):
    channel: "serializers.SlugRelatedField[Channel]" = serializers.SlugRelatedField(
        slug_field="name", read_only=True
    )
    channel_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = ChannelHealth
        fields = [
            "id",
            "channel_id",
            "channel",
            "at",
            "verdict",
            "routing_verdict",
            "status_code",
            "latency_ms",
            "retry_after_s",
            "error",
        ]
        read_only_fields = fields


class ChannelStateSerializer(serializers.Serializer):
    channel_id = serializers.IntegerField()
    channel = serializers.CharField()
    kind = serializers.CharField()
    enabled = serializers.BooleanField()
    auto_disabled = serializers.BooleanField()
    auto_disabled_reason = serializers.CharField()
    max_concurrency = serializers.IntegerField()
    inflight = serializers.IntegerField()
    cooldown_remaining_s = serializers.FloatField()
    verdict = serializers.CharField(allow_null=True)
    verdict_at = serializers.DateTimeField(allow_null=True)
    saturated = serializers.BooleanField()
    last_probe = ChannelHealthSerializer(allow_null=True, help_text="Latest recorded probe, if any.")


class ProbeOutcomeSerializer(serializers.Serializer):
    channel = serializers.CharField(source="channel.name")
    verdict = serializers.CharField(source="result.verdict", help_text="What this probe saw.")
    routing = serializers.CharField(help_text="The verdict routing uses now.")
    previous = serializers.CharField(help_text="The routing verdict before this probe.")
    status_code = serializers.IntegerField(source="result.status_code", allow_null=True)
    latency_ms = serializers.IntegerField(source="result.latency_ms", allow_null=True)
    retry_after_s = serializers.FloatField(source="result.retry_after_s", allow_null=True)
    error = serializers.CharField(source="result.error")
