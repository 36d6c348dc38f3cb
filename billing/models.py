from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

MICRO = 1_000_000


class Wallet(models.Model):
    """A user's RMB balance in micro-yuan; always equals the sum of its ledger."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet")
    balance_micro = models.BigIntegerField(default=0)
    held_micro = models.BigIntegerField(default=0, help_text="Reserved by calls in flight.")
    total_recharged_micro = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance_micro__gte=0), name="wallet_no_overdraft"),
            models.CheckConstraint(condition=Q(held_micro__gte=0), name="wallet_held_nonneg"),
        ]

    def __str__(self) -> str:
        return f"wallet of {self.user}"


class LedgerKind(models.TextChoices):
    HOLD = "hold", _("Hold")
    RELEASE = "release", _("Release")
    CHARGE = "charge", _("Charge")
    REFUND = "refund", _("Refund")
    RECHARGE = "recharge", _("Recharge")
    BONUS = "bonus", _("Recharge bonus")
    ADJUSTMENT = "adjustment", _("Adjustment")


class LedgerEntry(models.Model):
    """Append-only: never updated or deleted. One hold/release/charge/refund per request."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    amount_micro = models.BigIntegerField(help_text="Signed: credits positive, debits negative.")
    balance_after_micro = models.BigIntegerField()
    request_id = models.CharField(max_length=64, null=True, blank=True)
    token = models.ForeignKey(
        "tokens.Token",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Token whose quota a hold reserved, so an abandoned hold can be given back.",
    )
    memo = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["request_id", "kind"],
                condition=Q(request_id__isnull=False),
                name="uniq_ledger_request_kind",
            ),
        ]
        indexes = [models.Index(fields=["wallet", "-id"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_micro} ({self.request_id or self.memo})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Ledger entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Ledger entries are append-only.")


class RechargeBonusTier(models.Model):
    """Recharging at least this much credits an extra percentage as a bonus line."""

    min_amount_micro = models.BigIntegerField(unique=True, help_text="Micro-yuan (¥1 = 1,000,000).")
    bonus_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )

    class Meta:
        ordering = ["min_amount_micro"]
        constraints = [
            models.CheckConstraint(condition=Q(min_amount_micro__gt=0), name="bonus_tier_min_positive"),
            models.CheckConstraint(
                condition=Q(bonus_percent__gte=0) & Q(bonus_percent__lte=100),
                name="bonus_tier_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"≥ ¥{Decimal(self.min_amount_micro) / MICRO} +{self.bonus_percent}%"


class Recharge(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="recharges")
    amount_micro = models.BigIntegerField()
    bonus_micro = models.BigIntegerField(default=0)
    bonus_percent = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    payment_ref = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_micro__gt=0), name="recharge_amount_positive"),
            models.CheckConstraint(condition=Q(bonus_micro__gte=0), name="recharge_bonus_nonneg"),
        ]

    def __str__(self) -> str:
        return f"recharge ¥{Decimal(self.amount_micro) / MICRO} by {self.user}"


class Setting(models.Model):
    """Operator settings such as usd_cny_rate, as strings parsed by selectors."""

    key = models.CharField(max_length=64, unique=True)
    value = models.CharField(max_length=255)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.key}={self.value}"

    def clean(self):
        if self.key == "usd_cny_rate":
            from django.core.exceptions import ValidationError

            try:
                rate = Decimal(self.value)
            except ArithmeticError:
                raise ValidationError({"value": "usd_cny_rate must be a number, e.g. 7.2"}) from None
            if not (Decimal("0.01") <= rate <= Decimal("1000")):
                raise ValidationError({"value": "usd_cny_rate must be between 0.01 and 1000"})


class UsageStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCESS = "success", _("Success")
    PARTIAL = "partial", _("Partial (stream cut)")
    ERROR = "error", _("Error")


class UsageRecord(models.Model):
    """One relay call: what was asked, how it was routed, what it cost. One per request id."""

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage")
    token = models.ForeignKey("tokens.Token", on_delete=models.SET_NULL, null=True, related_name="usage")
    token_name = models.CharField(max_length=100, blank=True)
    endpoint = models.CharField(max_length=64, blank=True)
    api_format = models.CharField(max_length=16, blank=True)
    model_name = models.CharField(max_length=128, db_index=True)
    group_name = models.CharField(max_length=64, blank=True, db_index=True, help_text="Group used.")
    channel_name = models.CharField(max_length=64, blank=True)
    fallback_used = models.BooleanField(default=False)
    stream = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=UsageStatus.choices, default=UsageStatus.PENDING)
    http_status = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    refusal_reason = models.CharField(
        max_length=32, blank=True, help_text="groups.policy.Reason code; empty on older rows."
    )
    billing_basis = models.CharField(max_length=16, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    seconds = models.DecimalField(max_digits=10, decimal_places=3, default=Decimal("0"))
    images = models.PositiveIntegerField(default=0)
    usage_estimated = models.BooleanField(default=False)
    multiplier = models.DecimalField(max_digits=8, decimal_places=4, null=True, blank=True)
    hold_micro = models.BigIntegerField(default=0)
    cost_micro = models.BigIntegerField(default=0)
    uncollected_micro = models.BigIntegerField(
        default=0, help_text="Cost above hold that the balance could not cover."
    )
    price_breakdown = models.JSONField(default=dict, blank=True)
    trace = models.JSONField(default=list, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    ttfb_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(cost_micro__gte=0), name="usage_cost_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_name} {self.status}"
