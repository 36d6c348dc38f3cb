"""Operator forms for routing configuration; the rules themselves live in groups.services."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from .models import API_FORMATS, Channel, ChannelKind, Model, ModelKind, ModelTier, TokenGroup
from .services import CHANNEL_FIELDS, MODEL_FIELDS

FORMAT_CHOICES = [(f, f) for f in API_FORMATS]


class TokenGroupForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(max_length=500, required=False)
    multiplier = forms.DecimalField(
        min_value=Decimal("0.0001"),
        max_value=Decimal("100"),
        max_digits=8,
        decimal_places=4,
        help_text="1 = official price, 0.95 = 5% off. Users see the resulting RMB price, not this number.",
    )
    api_formats = forms.MultipleChoiceField(choices=FORMAT_CHOICES, widget=forms.CheckboxSelectMultiple)
    fallback_only = forms.BooleanField(required=False, help_text="May only be attached as a fallback group.")
    enabled = forms.BooleanField(required=False, initial=True)
    sort_order = forms.IntegerField(min_value=0, max_value=32767, initial=0)

    FIELDS = ("name", "description", "multiplier", "api_formats", "fallback_only", "enabled", "sort_order")

    @classmethod
    def for_instance(cls, group: TokenGroup | None, data=None):
        initial = {f: getattr(group, f) for f in cls.FIELDS} if group else {"enabled": True, "multiplier": 1}
        return cls(data, initial=initial)


class AccessForm(forms.Form):
    user_group = forms.IntegerField(widget=forms.HiddenInput)
    fallback_only = forms.BooleanField(required=False)
    multiplier_override = forms.DecimalField(
        required=False, min_value=Decimal("0.0001"), max_value=Decimal("100"), max_digits=8, decimal_places=4
    )


class UserGroupForm(forms.Form):
    name = forms.SlugField(max_length=64)
    description = forms.CharField(max_length=255, required=False)
    model_tiers = forms.MultipleChoiceField(
        choices=ModelTier.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    sort_order = forms.IntegerField(min_value=0, max_value=32767, initial=0)

    FIELDS = ("name", "description", "model_tiers", "sort_order")


def _price(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(100000),
        max_digits=14,
        decimal_places=6,
    )


class ModelForm(forms.Form):
    name = forms.CharField(max_length=128)
    kind = forms.ChoiceField(choices=ModelKind.choices)
    tier = forms.ChoiceField(choices=ModelTier.choices)
    description = forms.CharField(max_length=255, required=False)
    enabled = forms.BooleanField(required=False, initial=True)
    max_output_tokens = forms.IntegerField(min_value=1, max_value=10_000_000, initial=8192)
    input_usd_per_mtok = _price("Input USD / 1M tokens")
    output_usd_per_mtok = _price("Output USD / 1M tokens")
    cache_read_usd_per_mtok = _price("Cache read USD / 1M tokens")
    cache_write_usd_per_mtok = _price("Cache write USD / 1M tokens")
    usd_per_call = _price("USD per call")
    usd_per_second = _price("USD per second")
    usd_per_image = _price("USD per image")

    FIELDS = MODEL_FIELDS

    def unsaved(self, base: Model | None) -> Model:
        """A Model carrying the submitted prices, for previews; never saved."""
        model = Model(**{f: getattr(base, f) for f in self.FIELDS}) if base else Model()
        for f in self.FIELDS:
            if f in self.cleaned_data:
                setattr(model, f, self.cleaned_data[f])
        return model


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=64)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    base_url = forms.URLField(max_length=500, assume_scheme="https")
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave empty to keep the stored key.",
    )
    priority = forms.IntegerField(initial=0, help_text="Higher is tried first.")
    weight = forms.IntegerField(min_value=1, max_value=10_000, initial=1)
    max_concurrency = forms.IntegerField(min_value=0, initial=0, help_text="0 = unlimited.")
    enabled = forms.BooleanField(required=False, initial=True)
    auto_reenable = forms.BooleanField(required=False)
    allow_private_network = forms.BooleanField(required=False)
    probe_interval_s = forms.IntegerField(min_value=1, initial=30)
    latency_threshold_ms = forms.IntegerField(min_value=1, initial=20_000)
    token_groups = forms.ModelMultipleChoiceField(
        queryset=TokenGroup.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    models = forms.ModelMultipleChoiceField(
        queryset=Model.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )

    FIELDS = CHANNEL_FIELDS

    @classmethod
    def for_instance(cls, channel: Channel | None, data=None):
        if channel is None:
            return cls(data)
        initial = {f: getattr(channel, f) for f in cls.FIELDS}
        initial["token_groups"] = list(channel.token_groups.all())
        initial["models"] = list(channel.served_models.all())
        return cls(data, initial=initial)
