from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from accounts.admin_audit import AuditedModelAdmin

from .models import (
    API_FORMATS,
    Channel,
    ChannelModel,
    GroupAccess,
    Model,
    ModelTier,
    TokenGroup,
    UserGroup,
    UserGroupUpgradeRule,
)
from .urlsafety import channel_base_url_check


class GroupAccessInline(admin.TabularInline):
    model = GroupAccess
    extra = 0


class UserGroupForm(forms.ModelForm):
    model_tiers = forms.MultipleChoiceField(
        choices=ModelTier.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = UserGroup
        fields = "__all__"


@admin.register(UserGroup)
class UserGroupAdmin(AuditedModelAdmin):
    form = UserGroupForm
    list_display = ("name", "description", "model_tiers")
    inlines = [GroupAccessInline]


class TokenGroupForm(forms.ModelForm):
    api_formats = forms.MultipleChoiceField(
        choices=[(f, f) for f in API_FORMATS], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = TokenGroup
        fields = "__all__"


@admin.register(TokenGroup)
class TokenGroupAdmin(AuditedModelAdmin):
    form = TokenGroupForm
    list_display = ("name", "multiplier", "api_formats", "fallback_only", "enabled")
    list_filter = ("fallback_only", "enabled")
    inlines = [GroupAccessInline]


@admin.register(UserGroupUpgradeRule)
class UserGroupUpgradeRuleAdmin(AuditedModelAdmin):
    list_display = ("user_group", "min_total_recharge_micro")


@admin.register(Model)
class ModelAdmin(AuditedModelAdmin):
    list_display = (
        "name",
        "kind",
        "tier",
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "usd_per_call",
        "usd_per_second",
        "usd_per_image",
        "enabled",
    )
    list_filter = ("kind", "tier", "enabled")
    search_fields = ("name",)


class ChannelModelInline(admin.TabularInline):
    model = ChannelModel
    extra = 0
    autocomplete_fields = ("model",)


class ChannelForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the stored key.",
    )

    class Meta:
        model = Channel
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("base_url"):
            try:
                channel_base_url_check(
                    base_url=cleaned["base_url"], allow_private=bool(cleaned.get("allow_private_network"))
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned

    def save(self, commit=True):
        if self.cleaned_data.get("api_key"):
            self.instance.api_key = self.cleaned_data["api_key"]
        return super().save(commit)


@admin.register(Channel)
class ChannelAdmin(AuditedModelAdmin):
    form = ChannelForm
    list_display = (
        "name",
        "kind",
        "base_url",
        "priority",
        "weight",
        "max_concurrency",
        "enabled",
        "auto_disabled",
    )
    list_filter = ("kind", "enabled", "auto_disabled", "token_groups")
    filter_horizontal = ("token_groups",)
    inlines = [ChannelModelInline]
    search_fields = ("name", "base_url")
