"""Operator forms for routing configuration; the rules themselves live in groups.services."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import API_FORMATS, Channel, ChannelKind, Model, ModelKind, ModelTier, TokenGroup
from .services import CHANNEL_FIELDS, MODEL_FIELDS

FORMAT_CHOICES = [(f, f) for f in API_FORMATS]


class TokenGroupForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=64)
    description = forms.CharField(label=_("Description"), max_length=500, required=False)
    multiplier = forms.DecimalField(
        label=_("Multiplier"),
        min_value=Decimal("0.0001"),
        max_value=Decimal("100"),
        max_digits=8,
        decimal_places=4,
    )
    api_formats = forms.MultipleChoiceField(
        label=_("API formats"), choices=FORMAT_CHOICES, widget=forms.CheckboxSelectMultiple
    )
    fallback_only = forms.BooleanField(
        label=_("Fallback only"), required=False, help_text=_("May only be attached as a fallback group.")
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    sort_order = forms.IntegerField(label=_("Sort order"), min_value=0, max_value=32767, initial=0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The percent sign stays out of the msgid so the catalogue entry is not a python-format one.
        self.fields["multiplier"].help_text = gettext(
            "1 = official price, 0.95 = %(discount)s off. Users see the resulting RMB price, not this number."
        ) % {"discount": "5%"}

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
    name = forms.SlugField(label=_("Name"), max_length=64)
    description = forms.CharField(label=_("Description"), max_length=255, required=False)
    model_tiers = forms.MultipleChoiceField(
        label=_("Model tiers"), choices=ModelTier.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    sort_order = forms.IntegerField(label=_("Sort order"), min_value=0, max_value=32767, initial=0)

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
    name = forms.CharField(label=_("Name"), max_length=128)
    kind = forms.ChoiceField(label=_("Kind"), choices=ModelKind.choices)
    tier = forms.ChoiceField(label=_("Tier"), choices=ModelTier.choices)
    description = forms.CharField(label=_("Description"), max_length=255, required=False)
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    max_output_tokens = forms.IntegerField(
        label=_("Max output tokens"), min_value=1, max_value=10_000_000, initial=8192
    )
    input_usd_per_mtok = _price(_("Input USD / 1M tokens"))
    output_usd_per_mtok = _price(_("Output USD / 1M tokens"))
    cache_read_usd_per_mtok = _price(_("Cache read USD / 1M tokens"))
    cache_write_usd_per_mtok = _price(_("Cache write USD / 1M tokens"))
    usd_per_call = _price(_("USD per call"))
    usd_per_second = _price(_("USD per second"))
    usd_per_image = _price(_("USD per image"))

    FIELDS = MODEL_FIELDS

    def unsaved(self, base: Model | None) -> Model:
        """A Model carrying the submitted prices, for previews; never saved."""
        model = Model(**{f: getattr(base, f) for f in self.FIELDS}) if base else Model()
        for f in self.FIELDS:
            if f in self.cleaned_data:
                setattr(model, f, self.cleaned_data[f])
        return model


class ChannelForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=64)
    kind = forms.ChoiceField(label=_("Kind"), choices=ChannelKind.choices)
    base_url = forms.URLField(label=_("Base URL"), max_length=500, assume_scheme="https")
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only: leave empty to keep the stored key."),
    )
    priority = forms.IntegerField(label=_("Priority"), initial=0, help_text=_("Higher is tried first."))
    weight = forms.IntegerField(label=_("Weight"), min_value=1, max_value=10_000, initial=1)
    max_concurrency = forms.IntegerField(
        label=_("Max concurrency"), min_value=0, initial=0, help_text=_("0 = unlimited.")
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    auto_reenable = forms.BooleanField(label=_("Re-enable after recovery"), required=False)
    allow_private_network = forms.BooleanField(label=_("Allow private network"), required=False)
    probe_interval_s = forms.IntegerField(label=_("Probe interval (s)"), min_value=1, initial=30)
    latency_threshold_ms = forms.IntegerField(label=_("Latency threshold (ms)"), min_value=1, initial=20_000)
    token_groups = forms.ModelMultipleChoiceField(
        label=_("Token groups"),
        queryset=TokenGroup.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    models = forms.ModelMultipleChoiceField(
        label=_("Models served"),
        queryset=Model.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
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
