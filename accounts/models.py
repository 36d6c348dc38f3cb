from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A customer or an operator (`is_staff`). The user group sets permission scope only."""

    user_group = models.ForeignKey(
        "groups.UserGroup",
        on_delete=models.PROTECT,
        related_name="users",
        null=True,
        blank=True,
        help_text="Permission scope: selectable token groups and callable model tiers.",
    )
    user_group_pinned = models.BooleanField(
        default=False,
        help_text="Pinned by an operator: recharge upgrade rules leave the user group alone.",
    )
    rpm_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Optional requests per minute for the whole account."
    )
    extra_token_groups = models.ManyToManyField(
        "groups.TokenGroup",
        blank=True,
        related_name="granted_users",
        help_text="Token groups granted to this user alone, besides those of the user group.",
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        help_text=_("Times in the console are shown in this zone; empty = your language's default."),
    )


class AuditLog(models.Model):
    """Append-only record of who changed what, with before and after."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit log entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit log entries are append-only.")


class ManagementKey(models.Model):
    """An mk- key for the automation API. Only the HMAC of the key is stored; it is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="management_keys"
    )
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=16, help_text="Shown to recognise the key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(default=False, help_text="May only read, never change anything.")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"
