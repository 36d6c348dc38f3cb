from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from accounts.admin_audit import AuditedModelAdmin
from core.http import client_ip
from groups.models import TokenGroup

from .models import Token
from .services import token_create, token_delete, token_update


def _split(text: str) -> list[str]:
    return [part.strip() for part in (text or "").replace("\n", ",").split(",") if part.strip()]


class TokenAdminForm(forms.ModelForm):
    """Edits go through the token services, so the admin enforces the same rules."""

    fallback_group_names = forms.CharField(
        required=False,
        label="Fallback groups",
        help_text="Group names in order, comma-separated (tried after the select group).",
    )
    model_allowlist_text = forms.CharField(
        required=False, label="Model allowlist", help_text="Comma-separated; empty = all models."
    )
    ip_allowlist_text = forms.CharField(
        required=False, label="IP allowlist", help_text="IPs or CIDRs, comma-separated; empty = any."
    )

    class Meta:
        model = Token
        fields = (
            "user",
            "name",
            "select_group",
            "billing_mode",
            "quota_micro",
            "expires_at",
            "rpm_limit",
            "enabled",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["user"].disabled = True
            self.initial["fallback_group_names"] = ", ".join(
                f.group.name for f in self.instance.fallbacks.select_related("group")
            )
            self.initial["model_allowlist_text"] = ", ".join(self.instance.model_allowlist)
            self.initial["ip_allowlist_text"] = ", ".join(self.instance.ip_allowlist)

    def clean_fallback_group_names(self):
        names = _split(self.cleaned_data["fallback_group_names"])
        groups = {g.name: g for g in TokenGroup.objects.filter(name__in=names)}
        unknown = [n for n in names if n not in groups]
        if unknown:
            raise ValidationError(f"Unknown groups: {', '.join(unknown)}")
        return [groups[n] for n in names]

    def _post_clean(self):
        """Validate with the token services instead of model.full_clean()."""
        if self.errors:
            return
        data = self.cleaned_data
        fields = {
            "name": data["name"],
            "select_group": data["select_group"],
            "fallback_groups": data["fallback_group_names"],
            "billing_mode": data["billing_mode"],
            "quota_micro": data["quota_micro"],
            "model_allowlist": _split(data["model_allowlist_text"]),
            "ip_allowlist": _split(data["ip_allowlist_text"]),
            "rpm_limit": data["rpm_limit"],
        }
        try:
            if self.instance.pk:
                self.saved = token_update(
                    token=self.instance,
                    expires_at=data["expires_at"],
                    enabled=data["enabled"],
                    actor=self.actor,
                    ip=self.ip,
                    **fields,
                )
                self.raw_key = None
            else:
                self.saved, self.raw_key = token_create(
                    user=data["user"], expires_at=data["expires_at"], actor=self.actor, ip=self.ip, **fields
                )
        except ValidationError as exc:
            self._update_errors(_map_errors(exc))


def _map_errors(exc: ValidationError) -> ValidationError:
    names = {
        "fallback_groups": "fallback_group_names",
        "model_allowlist": "model_allowlist_text",
        "ip_allowlist": "ip_allowlist_text",
    }
    if hasattr(exc, "error_dict"):
        return ValidationError({names.get(k, k): v for k, v in exc.error_dict.items()})
    return exc


@admin.register(Token)
class TokenAdmin(AuditedModelAdmin):
    form = TokenAdminForm
    list_display = (
        "name",
        "key_prefix",
        "user",
        "select_group",
        "billing_mode",
        "enabled",
        "expires_at",
        "last_used_at",
    )
    list_filter = ("select_group", "billing_mode", "enabled")
    search_fields = ("name", "key_prefix", "user__username")
    readonly_fields = ("key_prefix", "spent_micro", "held_micro", "last_used_at")

    def get_form(self, request, obj=None, **kwargs):
        """The token services audit the change: they are told the operator did it."""
        form = super().get_form(request, obj, **kwargs)
        form.actor, form.ip = request.user, client_ip(request)
        return form

    def save_model(self, request, obj, form, change):
        form.instance = form.saved
        if form.raw_key:
            messages.warning(request, f"New key (shown once, copy it now): {form.raw_key}")

    def delete_model(self, request, obj):
        token_delete(token=obj, actor=request.user, ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def save_related(self, request, form, formsets, change):
        """Fallbacks were saved by the token service."""
