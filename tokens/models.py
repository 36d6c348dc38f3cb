from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class BillingMode(models.TextChoices):
    USAGE = "usage", _("Pay per usage")
    CALL = "call", _("Pay per call")
    USAGE_FIRST = "usage_first", _("Usage first, else per call")
    CALL_FIRST = "call_first", _("Per call first, else usage")


BILLING_MODE_HELP = {
    BillingMode.USAGE: _("Only models metered by tokens, seconds or images; per-call models refused."),
    BillingMode.CALL: _("Only models with a per-call price; metered models refused."),
    BillingMode.USAGE_FIRST: _("Metered price when the model has one, otherwise its per-call price."),
    BillingMode.CALL_FIRST: _("Per-call price when the model has one, otherwise its metered price."),
}


class Token(models.Model):
    """An sk- API key. Its select group (then fallback groups) decides routing and price."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=16, help_text="Shown to recognise the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    select_group = models.ForeignKey(
        "groups.TokenGroup", on_delete=models.PROTECT, related_name="selected_by_tokens"
    )
    fallback_groups = models.ManyToManyField(
        "groups.TokenGroup", through="TokenFallback", related_name="fallback_of_tokens", blank=True
    )
    billing_mode = models.CharField(
        max_length=16, choices=BillingMode.choices, default=BillingMode.USAGE_FIRST
    )
    quota_micro = models.BigIntegerField(
        null=True, blank=True, help_text="Spend cap in micro-yuan; empty = no cap."
    )
    spent_micro = models.BigIntegerField(default=0)
    held_micro = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    model_allowlist = models.JSONField(default=list, blank=True, help_text="Empty = all models.")
    ip_allowlist = models.JSONField(default=list, blank=True, help_text="IPs or CIDRs; empty = any.")
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quota_micro__isnull=True) | Q(quota_micro__gte=0),
                name="token_quota_nonneg",
            ),
            models.CheckConstraint(condition=Q(spent_micro__gte=0), name="token_spent_nonneg"),
            models.CheckConstraint(condition=Q(held_micro__gte=0), name="token_held_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"


class TokenFallback(models.Model):
    """One fallback group of a token, in order (position 0 is tried first)."""

    token = models.ForeignKey(Token, on_delete=models.CASCADE, related_name="fallbacks")
    group = models.ForeignKey("groups.TokenGroup", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["token", "position"]
        constraints = [
            models.UniqueConstraint(fields=["token", "group"], name="uniq_token_fallback_group"),
            models.UniqueConstraint(fields=["token", "position"], name="uniq_token_fallback_position"),
        ]

    def __str__(self) -> str:
        return f"{self.token_id}#{self.position} {self.group_id}"
