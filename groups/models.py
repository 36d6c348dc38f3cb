from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .crypto import decrypt_secret, encrypt_secret

API_FORMATS = ("openai", "anthropic")


class ModelTier(models.TextChoices):
    STANDARD = "standard", _("Standard")
    PREMIUM = "premium", _("Premium")
    ENTERPRISE = "enterprise", _("Enterprise")


class UserGroup(models.Model):
    """Account-level permission scope; never decides routing or price by itself."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True)
    model_tiers = models.JSONField(
        default=list, blank=True, help_text='Model tiers its users may call, e.g. ["standard"].'
    )
    token_groups: "models.ManyToManyField[TokenGroup, GroupAccess]" = models.ManyToManyField(
        "TokenGroup", through="GroupAccess", related_name="user_groups", blank=True
    )
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name


class TokenGroup(models.Model):
    """The call channel selected on a token: models, multiplier, formats, upstream channels."""

    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=500, blank=True)
    multiplier = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))],
        help_text="1.0 = official price; 0.95 = 5% off.",
    )
    api_formats = models.JSONField(default=list, help_text='Client formats, e.g. ["openai"].')
    fallback_only = models.BooleanField(
        default=False, help_text="May only be attached as a fallback group, never selected."
    )
    enabled = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(multiplier__gt=0) & Q(multiplier__lte=100),
                name="tokengroup_multiplier_range",
            )
        ]

    def __str__(self) -> str:
        return self.name


class GroupAccess(models.Model):
    """May users of a user group use a token group, and at which multiplier."""

    user_group = models.ForeignKey(UserGroup, on_delete=models.CASCADE, related_name="accesses")
    token_group = models.ForeignKey(TokenGroup, on_delete=models.CASCADE, related_name="accesses")
    fallback_only = models.BooleanField(
        default=False, help_text="This user group may attach it only as a fallback group."
    )
    multiplier_override = models.DecimalField(
        max_digits=8,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("100"))],
        help_text="Replaces the token group's multiplier for this user group.",
    )

    class Meta:
        verbose_name_plural = "group access"
        constraints = [
            models.UniqueConstraint(fields=["user_group", "token_group"], name="uniq_group_access"),
            models.CheckConstraint(
                condition=Q(multiplier_override__isnull=True)
                | (Q(multiplier_override__gt=0) & Q(multiplier_override__lte=100)),
                name="groupaccess_override_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_group} → {self.token_group}"


class UserGroupUpgradeRule(models.Model):
    """Cumulative recharge at or above a threshold moves a user into a user group."""

    user_group = models.OneToOneField(UserGroup, on_delete=models.CASCADE, related_name="upgrade_rule")
    min_total_recharge_micro = models.BigIntegerField(help_text="Micro-yuan (¥1 = 1,000,000).")

    class Meta:
        ordering = ["min_total_recharge_micro"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_total_recharge_micro__gte=0), name="upgrade_rule_threshold_nonneg"
            )
        ]

    def __str__(self) -> str:
        return f"≥ ¥{Decimal(self.min_total_recharge_micro) / 1_000_000} → {self.user_group}"


class ModelKind(models.TextChoices):
    TEXT = "text", _("Text")
    IMAGE = "image", _("Image")
    VIDEO = "video", _("Video")


PRICE_FIELDS = (
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cache_read_usd_per_mtok",
    "cache_write_usd_per_mtok",
    "usd_per_call",
    "usd_per_second",
    "usd_per_image",
)


def _price_field(label: str) -> models.DecimalField:
    return models.DecimalField(
        label,
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100000"))],
    )


class Model(models.Model):
    """Catalog entry with official USD list prices (whichever apply)."""

    name = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=16, choices=ModelKind.choices, default=ModelKind.TEXT)
    tier = models.CharField(max_length=16, choices=ModelTier.choices, default=ModelTier.STANDARD)
    description = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)
    input_usd_per_mtok = _price_field("input USD / 1M tokens")
    output_usd_per_mtok = _price_field("output USD / 1M tokens")
    cache_read_usd_per_mtok = _price_field("cache read USD / 1M tokens")
    cache_write_usd_per_mtok = _price_field("cache write USD / 1M tokens")
    usd_per_call = _price_field("USD per call")
    usd_per_second = _price_field("USD per second")
    usd_per_image = _price_field("USD per image")
    max_output_tokens = models.PositiveIntegerField(
        default=8192, help_text="Cap used for the hold when a request sets no max_tokens."
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(**{f"{f}__isnull": True}) | Q(**{f"{f}__gte": 0}),
                name=f"model_{f}_nonneg",
            )
            for f in PRICE_FIELDS
        ]

    def __str__(self) -> str:
        return self.name


class ChannelKind(models.TextChoices):
    OPENAI = "openai", _("OpenAI-compatible")
    ANTHROPIC = "anthropic", "Anthropic"
    GEMINI = "gemini", _("Google Gemini API")
    VIDEO = "video", _("Video jobs (OpenAI-style)")


class Channel(models.Model):
    """One upstream endpoint serving some models for some token groups."""

    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    base_url = models.URLField(max_length=500, help_text="e.g. https://api.example.com/v1")
    api_key_encrypted = models.TextField(blank=True, editable=False)
    served_models = models.ManyToManyField(Model, through="ChannelModel", related_name="channels")
    token_groups = models.ManyToManyField(TokenGroup, related_name="channels", blank=True)
    priority = models.IntegerField(default=0, help_text="Higher is tried first.")
    weight = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    max_concurrency = models.PositiveIntegerField(default=0, help_text="0 = unlimited.")
    enabled = models.BooleanField(default=True)
    auto_disabled = models.BooleanField(default=False)
    auto_disabled_reason = models.CharField(max_length=255, blank=True)
    auto_reenable = models.BooleanField(
        default=False, help_text="Let the probe re-enable this channel after it recovers."
    )
    allow_private_network = models.BooleanField(
        default=False, help_text="Allow loopback/private addresses (e.g. the demo simulator)."
    )
    probe_interval_s = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    latency_threshold_ms = models.PositiveIntegerField(
        default=20_000, help_text="A probe slower than this counts as saturated."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(weight__gte=1), name="channel_weight_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key(self) -> str:
        return decrypt_secret(self.api_key_encrypted) if self.api_key_encrypted else ""

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = encrypt_secret(value) if value else ""

    @property
    def is_active(self) -> bool:
        return self.enabled and not self.auto_disabled


class ChannelModel(models.Model):
    """A model served by a channel, optionally under another upstream name."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="channel_models")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="channel_models")
    upstream_name = models.CharField(
        max_length=128, blank=True, help_text="Name sent upstream; empty = same as the model."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "model"], name="uniq_channel_model")]

    def __str__(self) -> str:
        return f"{self.channel} · {self.model}"


class ChannelHealth(models.Model):
    """One probe of a channel: what it saw and the verdict routing used afterwards.

    `verdict` is this probe's own observation; `routing_verdict` is what the shared state
    said after it (a recovering channel stays out of rotation until enough successes).
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="health")
    at = models.DateTimeField(db_index=True)
    verdict = models.CharField(max_length=16)
    routing_verdict = models.CharField(max_length=16)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    retry_after_s = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["channel", "-at"], name="channelhealth_channel_at")]
        verbose_name_plural = "channel health"

    def __str__(self) -> str:
        return f"{self.channel_id} {self.verdict} @ {self.at:%Y-%m-%d %H:%M:%S}"
